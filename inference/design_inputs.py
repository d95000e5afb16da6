"""What users pass to a design model's Predictor, turned into the session's inputs.

A design model (:mod:`inference.design`) reads raw columns by name, numbers and
text. Accepted: a pandas DataFrame, a pyarrow Table or RecordBatch, a dict of name to
a scalar or a 1-D array-like, and a list of dicts (JSON records). Each numeric input
becomes a 1-D array of the model's dtype, each factor a 1-D int64 array of level codes
(:func:`inference.codes_graph.codes_graph` is the graph they feed). A missing column,
a missing value and a level the model does not know raise
:class:`~inference.errors.InputError` naming the row, the column and the value, except
where the design says otherwise: a numeric input's ``fill`` replaces its missing values,
a factor's ``unknown: "zero"`` scores a value that is not a level as no level
(:mod:`inference.design`).
Columns the model does not read are ignored and reported by an
:class:`~inference.errors.IgnoredColumnsWarning` (``strict=True`` refuses them), as
for a model on numbers (:mod:`inference.inputs`).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from inference.design import Design
from inference.errors import IgnoredColumnsWarning, InputError

__all__ = [
    "design_columns",
    "design_feeds",
    "locate_nonfinite_design",
    "report_unknown",
    "text_feeds",
]


def _is_frame(X: Any) -> bool:
    return type(X).__name__ == "DataFrame" and hasattr(X, "columns")


def _is_arrow_table(X: Any) -> bool:
    return type(X).__name__ in ("Table", "RecordBatch") and hasattr(X, "column_names")


def design_columns(X: Any, design: Design, strict: bool = False) -> tuple[dict[str, Any], int]:
    """The model's raw columns of ``X`` by name, and the number of rows; names the model
    does not read are refused (``strict``) or reported by a warning."""
    names = design.input_names
    if _is_frame(X):
        present = [str(c) for c in X.columns]
        columns = {n: X[n] for n in names if n in present}
    elif _is_arrow_table(X):
        present = list(X.column_names)
        columns = {n: X.column(n) for n in names if n in present}
    elif isinstance(X, Mapping):
        present = [str(k) for k in X]
        columns = {n: _as_column(X[n], n) for n in names if n in present}
    elif (
        isinstance(X, Sequence)
        and not isinstance(X, str | bytes)
        and (len(X) == 0 or all(isinstance(r, Mapping) for r in X))
    ):
        columns_of_records = _from_records(X, design)
        report_unknown(list(dict.fromkeys(str(k) for r in X for k in r)), names, strict)
        return columns_of_records
    else:
        raise InputError(
            f"got {type(X).__name__}; this model reads columns by name {names}: pass a "
            "DataFrame, a dict of column to values, or a list of records (dicts)"
        )
    missing = [n for n in names if n not in columns]
    if missing:
        raise InputError(f"missing column(s) {missing}; the model reads {names}, got {present}")
    report_unknown(present, names, strict)
    lengths = {n: len(c) for n, c in columns.items()}
    if len(set(lengths.values())) > 1:
        raise InputError(f"columns of different lengths: {lengths}")
    return columns, next(iter(lengths.values()), 0)


def report_unknown(present: Sequence[str], names: Sequence[str], strict: bool) -> None:
    """Refuse (``strict``) or report by a warning the names of ``present`` that are not
    the model's ``names``."""
    unknown = [c for c in present if c not in names]
    if not unknown:
        return
    if strict:
        raise InputError(f"unknown {unknown}; the model reads {list(names)}")
    warnings.warn(
        IgnoredColumnsWarning(
            f"ignored {unknown}, which the model does not read (it reads {list(names)}); "
            "pass strict_columns=True to refuse them"
        ),
        stacklevel=4,
    )


def _as_column(value: Any, name: str) -> Any:
    """A dict's value: a scalar is one row; arrays and lists must be 1-D."""
    if isinstance(value, str | bytes | int | float | bool | np.generic) or value is None:
        return [value]
    arr = value if hasattr(value, "__len__") else [value]
    if isinstance(arr, np.ndarray) and arr.ndim != 1:
        raise InputError(f"column {name!r}: expected a 1-D array, got shape {arr.shape}")
    return arr


def _from_records(records: Sequence[Any], design: Design) -> tuple[dict[str, Any], int]:
    names = design.input_names
    columns: dict[str, list[Any]] = {n: [] for n in names}
    for row, record in enumerate(records, start=1):
        absent = [n for n in names if n not in record]
        if absent:
            raise InputError(f"record {row}: missing key(s) {absent}; the model reads {names}")
        for n in names:
            columns[n].append(record[n])
    return dict(columns), len(records)


def design_feeds(
    X: Any, design: Design, dtype: np.dtype, offset: int = 0, *, strict: bool = False
) -> tuple[dict[str, np.ndarray], int]:
    """The session's inputs for ``X`` (numbers in ``dtype``, factors as int64 codes) and
    the number of rows; ``offset`` shifts the row numbers of error messages."""
    columns, n = design_columns(X, design, strict)
    feeds: dict[str, np.ndarray] = {}
    for spec in design.inputs:
        values = columns[spec.name]
        if spec.kind == "numeric":
            feeds[spec.name] = design.numeric_values(spec.name, _numeric(values), dtype, offset)
        else:
            feeds[spec.name] = design.factor_codes(spec.name, values, offset)
    return feeds, n


def _numeric(values: Any) -> Any:
    """pandas' nullable and pyarrow columns as numpy (nulls as NaN)."""
    if hasattr(values, "to_numpy") and not isinstance(values, np.ndarray):
        try:
            return values.to_numpy(dtype=np.float64, na_value=np.nan)
        except (TypeError, ValueError):
            try:
                return values.to_numpy(zero_copy_only=False)
            except TypeError:
                return values.to_numpy()
    return values


def text_feeds(feeds: Mapping[str, np.ndarray], design: Design) -> dict[str, np.ndarray]:
    """The inputs of the model's own graph (``model.onnx``: text for text and boolean
    factors, integers for integer factors) from :func:`design_feeds`' codes."""
    out = dict(feeds)
    for spec in design.factors:
        levels = np.array(spec.levels, dtype=object)
        unknown: Any
        if spec.type == "int":
            levels = levels.astype(np.int64)
            unknown = int(levels.max()) + 1
        else:
            unknown = ""  # never a level (an empty cell is a missing value)
        # the code len(levels) of an unknown value (unknown="zero") as a value that is not a level
        levels = np.append(levels, np.array([unknown], dtype=levels.dtype))
        out[spec.name] = levels[feeds[spec.name]]
    return out


def locate_nonfinite_design(
    feeds: Mapping[str, np.ndarray], y: np.ndarray, design: Design, offset: int = 0
) -> InputError:
    """The error for the first row whose prediction is not finite, naming the design
    column that is not (a log of a negative number, an infinite input) and its inputs."""
    i = int(np.flatnonzero(~np.isfinite(y))[0])
    row = {name: values[i : i + 1] for name, values in feeds.items()}
    z = design.matrix_from_codes(row, np.float64)[0]
    bad = np.flatnonzero(~np.isfinite(z))
    shown = {
        spec.name: (
            (spec.levels + ("(not a level)",))[int(row[spec.name][0])]
            if spec.kind == "factor"
            else row[spec.name][0].item()
        )
        for spec in design.inputs
    }
    if bad.size:
        column = design.columns[int(bad[0])].name
        return InputError(
            f"row {offset + i + 1}: the design column {column!r} is {z[bad[0]]} for the "
            f"inputs {shown}; this model cannot score it"
        )
    return InputError(
        f"row {offset + i + 1}: the prediction is {y[i]} (beyond the model's dtype) for the "
        f"inputs {shown}"
    )
