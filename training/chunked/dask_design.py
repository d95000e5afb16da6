"""Fits on a Dask cluster from a table with text columns and gaps, or a formula.

A factor's levels must come from the whole data, not from one partition: a level that
only occurs in partition 7 still needs its column, and its index must be the same in
every partition's design matrix. So the fit starts with a **levels pass**: each
partition returns, for each column that may be a factor (text, categories, booleans,
integers), its distinct values (at most :data:`MAX_LEVELS`), and for every column a
few values it holds; the client takes the union. Then the design is decided once, on
the client, by the same code as an in-memory fit
(:func:`training.formula.design_table`), applied to a small table that holds every
distinct value of each factor at least once (one row per value, the columns cycling
through theirs). The levels are sorted (a categorical's categories keep their order)
and the reference is the first, or the one ``references`` or ``C(g, Treatment('b'))``
names, exactly as for a DataFrame in memory.

Then each partition drops its rows with a gap in a used column (``missing="drop"``,
counted and summed into ``design.rows_dropped``; ``missing="error"`` stops at the first
and names the partition, row and column) and builds its design matrix with
:meth:`inference.design.Design.matrix`; the fit proceeds on those matrices as for
numbers (:mod:`training.chunked.dask`). The export's verification sample keeps the raw
rows beside their design rows, so the ONNX graph (text in) is checked on them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from training.errors import DataError

__all__ = [
    "MAX_LEVELS",
    "dask_design",
    "design_inputs",
    "design_partition",
    "finish_design",
    "has_factors",
    "levels_of_partition",
    "raw_rows",
    "raw_sample",
    "sampled_rows",
]

#: distinct values kept per column and partition in the levels pass: a column with more
#: (an integer column used as a number) is not a factor
MAX_LEVELS = 10_000
#: values of each column kept per partition for the table the design is decided on
_SAMPLES = 8


def _maybe_factor(series: Any) -> bool:
    import pandas as pd

    from training.formula import is_factor_column

    return bool(is_factor_column(series) or pd.api.types.is_integer_dtype(series.dtype))


def levels_of_partition(frame: Any) -> dict[str, Any]:
    """Runs on a worker: for each column, its distinct values (a column that may be a
    factor, up to :data:`MAX_LEVELS`; None beyond) and a few of its values (gaps left
    out)."""
    out: dict[str, Any] = {}
    for name in frame.columns:
        series = frame[name]
        present = series.dropna()
        distinct = None
        if _maybe_factor(series):
            values = present.unique()
            distinct = set(values.tolist()) if len(values) <= MAX_LEVELS else None
        out[str(name)] = (distinct, present.iloc[:_SAMPLES].tolist())
    return out


def _union(results: Sequence[dict[str, Any]]) -> dict[str, tuple[Any, list[Any]]]:
    merged: dict[str, tuple[Any, list[Any]]] = {}
    for result in results:
        for name, (distinct, samples) in result.items():
            old = merged.get(name)
            if old is None:
                merged[name] = (distinct, list(samples))
                continue
            both = None if old[0] is None or distinct is None else old[0] | distinct
            if both is not None and len(both) > MAX_LEVELS:
                both = None
            merged[name] = (both, (old[1] + list(samples))[: 4 * _SAMPLES])
    return merged


def _skeleton(meta: Any, merged: Mapping[str, tuple[Any, list[Any]]]) -> Any:
    """A small DataFrame with ``meta``'s columns and dtypes in which every distinct value
    of each possible factor occurs (and otherwise values the columns hold)."""
    import pandas as pd

    def ordered(name: str, values: Any) -> list[Any]:
        dtype = meta[name].dtype
        if isinstance(dtype, pd.CategoricalDtype) and dtype.categories is not None:
            known = [c for c in dtype.categories if c in values]
            return known + sorted(set(values) - set(known), key=str)
        return sorted(values, key=lambda v: (str(type(v)), v))

    columns = {}
    for name in meta.columns:
        distinct, samples = merged.get(str(name), (None, []))
        values = ordered(name, distinct) if distinct else list(samples)
        columns[str(name)] = values or [None]  # no value anywhere: a gap (if used, refused)
    rows = max(max(len(v) for v in columns.values()), 3)
    data = {}
    for name, values in columns.items():
        cycled = [values[i % len(values)] for i in range(rows)]
        dtype = meta[name].dtype
        if isinstance(dtype, pd.CategoricalDtype):
            data[name] = pd.Categorical(cycled, categories=values)
        else:
            data[name] = pd.Series(cycled, dtype=dtype)
    return pd.DataFrame(data)


def dask_design(
    client: Any,
    frames: list[Any],
    meta: Any,
    *,
    formula: str | None,
    target: str | None,
    features: Sequence[str] | None,
    missing: str,
    references: Mapping[str, Any] | None,
    source: str,
) -> tuple[Any, str]:
    """The levels pass over every partition (futures of pandas frames ``frames``), then
    the :class:`~inference.design.Design` decided once from what it found, and the
    target's name."""
    from training.formula import design_table

    results = client.gather([client.submit(levels_of_partition, f, pure=False) for f in frames])
    skeleton = _skeleton(meta, _union(results))
    table = design_table(
        skeleton,
        formula,
        target=target,
        features=features,
        missing=missing,
        references=references,
        source=source,
    )
    return table.design, table.target


def design_partition(
    frame: Any, design: Any, target: str, missing: str, index: int, source: str
) -> tuple[np.ndarray, np.ndarray, int, Any, int]:
    """Runs on a worker: ``(Z (m, p), y (m,), index, raw rows, rows dropped)`` of one
    partition, float64, its rows with a gap in a used column dropped (or refused)."""
    from inference.design import Design
    from training.formula.columns import drop_missing, raw_columns, target_values

    assert isinstance(design, Design)
    where = f"{source}, partition {index}"
    used = [*design.input_names, target]
    frame, dropped = drop_missing(frame[used], used, missing, where)
    try:
        Z = design.matrix(raw_columns(frame, design))
    except ValueError as exc:  # InputError: a value the design cannot read
        raise DataError(f"{where}: {exc}") from exc
    bad = np.argwhere(~np.isfinite(Z))
    if bad.size:
        row, col = int(bad[0][0]), int(bad[0][1])
        raise DataError(
            f"{where}: row {row + 1} of the rows used: the design column "
            f"{design.columns[col].name!r} is {Z[row, col]}"
        )
    y = target_values(frame, target, where)
    raw = frame[design.input_names].reset_index(drop=True)
    return Z, y, index, raw, dropped


def sampled_rows(outputs: tuple[Any, ...], take: np.ndarray) -> Any:
    """Runs on a worker: the raw rows ``take`` of a partition's
    :func:`design_partition` output (the verification sample's)."""
    return outputs[3].iloc[take]


def raw_rows(samples: Sequence[Any], keep: np.ndarray | None) -> Any:
    """The raw rows of the verification sample: the partitions' sampled rows in order,
    then the sample's own subsample ``keep`` (None: all), as one DataFrame."""
    import pandas as pd

    frame = pd.concat(list(samples), ignore_index=True)
    if keep is not None:
        frame = frame.iloc[keep].reset_index(drop=True)
    return frame


def has_factors(frame: Any, target: str | None, features: Sequence[str] | None) -> bool:
    """Whether a Dask DataFrame's features (all but the target by default) include a
    text, categorical or boolean column (by its ``_meta``)."""
    from training.formula import is_factor_column

    meta = frame._meta
    names = [str(c) for c in meta.columns]
    wanted = [c for c in names if c != target] if features is None else list(features)
    return any(c in names and is_factor_column(meta[c]) for c in wanted)


def design_inputs(
    client: Any,
    frame: Any,
    formula: str | None,
    target: str | None,
    features: Sequence[str] | None,
    missing: str,
    references: Mapping[str, Any] | None,
    source: str,
) -> tuple[list[Any], Any, str, list[Any], int]:
    """The levels pass, the design, and each partition's design matrix (on the workers):
    futures of each partition's ``(Z, y, index)``, the design, the target, futures of
    the :func:`design_partition` outputs, and the rows dropped for a gap."""
    frames = client.compute(frame.to_delayed())
    design, target = dask_design(
        client,
        frames,
        frame._meta,
        formula=formula,
        target=target,
        features=features,
        missing=missing,
        references=references,
        source=source,
    )
    outputs = [
        client.submit(design_partition, f, design, target, missing, i, source, pure=False)
        for i, f in enumerate(frames)
    ]
    arrays = [client.submit(_first_three, o, pure=False) for o in outputs]
    dropped = sum(client.gather([client.submit(_dropped, o, pure=False) for o in outputs]))
    return arrays, design, target, outputs, int(dropped)


def _first_three(outputs: tuple[Any, ...]) -> tuple[Any, ...]:
    return outputs[:3]


def _dropped(outputs: tuple[Any, ...]) -> int:
    return int(outputs[4])


def raw_sample(
    client: Any, outputs: Sequence[Any], takes: Sequence[np.ndarray], keep: np.ndarray | None
) -> Any:
    """The raw rows of the verification sample (a DataFrame): each partition's rows
    ``takes``, then the sample's own subsample ``keep``."""
    pieces = client.gather(
        [
            client.submit(sampled_rows, o, take, pure=False)
            for o, take in zip(outputs, takes, strict=True)
        ]
    )
    return raw_rows(pieces, keep)


def finish_design(run: Any, design: Any, dropped: int, raw: Any) -> None:
    """A design fit's run as an in-memory one has it: the design (with the rows
    dropped for a gap), the raw rows of its sample, the per-term ANOVA."""
    from training.formula.columns import with_missing
    from training.stats.anova import anova_type2

    run.design = with_missing(design, design.missing, dropped)
    run.raw_train = raw
    run.anova = anova_type2(run.statistics, design.terms)
    run.data["rows_dropped"] = dropped
