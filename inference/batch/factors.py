"""Scoring a chunk with a design model: the readers' columns turned into the session's inputs.

A model fitted on raw columns (:mod:`inference.design`) runs the session of its codes
graph (:mod:`inference.codes_graph`): one input per raw column, each numeric input a
contiguous column of the chunk's matrix, each factor the int64 codes of its levels.
The readers coded each factor's values against its levels as text
(:class:`~inference.io.ReadSpec`); a value they could not match, such as ``03`` for an
integer level ``3``, is looked up here by the model's own rules
(:meth:`~inference.design.Design.level_code`), once per distinct value. What is still
not a level, and every missing value, makes its row a bad row (the ``bad_rows`` modes
apply), with a reason naming the value and the known levels; such a row is fed with
the first level, and its prediction dropped. A factor whose design says
``unknown="zero"`` (an exported ``OneHotEncoder(handle_unknown="ignore")``) scores such
a value, a missing one included, as no level, as the Predictor does, with an
:class:`~inference.errors.UnknownLevelWarning` per chunk naming the first row.

A numeric input with a ``fill`` (a ``SimpleImputer``) is filled by the graph where it is
missing (an empty field, a null, NaN); text there that is not a number is still a bad
row, as the Predictor refuses it.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from inference.batch.plan import Plan
from inference.design import Design
from inference.errors import InputError, UnknownLevelWarning
from inference.intervals import IntervalPrediction, compute_intervals
from inference.io import CODE_MISSING, CODE_UNMATCHED, Chunk
from inference.io.arrow import from_numpy, import_pyarrow, to_numpy
from inference.io.chunks import shown
from inference.predictor import Predictor

__all__ = ["predict_design_chunk"]

_SHOWN_LEVELS = 20


def predict_design_chunk(
    predictor: Predictor, chunk: Chunk, plan: Plan, interval: str | None, level: float
) -> tuple[np.ndarray, IntervalPrediction | None, np.ndarray]:
    """The chunk's predictions (n,) in the model's dtype, their intervals (with
    ``interval``), and a mask of the rows to keep (False: a bad row, described in
    ``chunk.failures`` when its factor is at fault or a design column is not finite)."""
    design = plan.design
    assert design is not None
    feeds: dict[str, np.ndarray] = {}
    good = np.ones(chunk.n, dtype=bool)
    # text that is not a number: NaN in X, which a filled input's graph would fill
    good[list(chunk.failures)] = False
    for j, name in enumerate(plan.features):
        feeds[name] = np.ascontiguousarray(chunk.X[:, j])
    for name in plan.factors:
        codes = chunk.codes[name]
        _resolve(chunk, design, name, codes)
        bad = codes < 0
        if bad.any() and design.input(name).unknown == "zero":
            _warn_unknown(chunk, design, name, codes)
            codes[bad] = len(design.input(name).levels)  # no level: every indicator 0
        elif bad.any():
            _describe_factor(chunk, design, plan, name, codes)
            good &= ~bad
            codes[bad] = 0
        feeds[name] = codes
    session = predictor.session
    y = session.run([session.get_outputs()[0].name], feeds)[0]
    ok = good & np.isfinite(y)
    if not ok.all():
        _describe_nonfinite(chunk, design, feeds, good & ~ok, plan)
    bounds = None
    if interval is not None:
        stats = predictor.manifest.interval_inputs() if predictor.manifest is not None else None
        if stats is None:  # checked before the job starts; a bare .onnx has no design
            raise InputError(f"{predictor.source}: intervals need the manifest's statistics")
        Z = design.matrix_from_codes(feeds, np.float64)
        bounds = compute_intervals(Z, y, stats, kind=interval, level=level)
    return y, bounds, ok


def _resolve(chunk: Chunk, design: Design, name: str, codes: np.ndarray) -> None:
    """Codes for the values the reader could not match as text, by the design's own rules
    (one lookup per distinct value); those that are not levels stay unmatched."""
    unmatched = np.flatnonzero(codes == CODE_UNMATCHED)
    if not unmatched.size:
        return
    lookup = _lookup(design, name)
    arr = chunk.factor_arrays.get(name)
    if arr is None:  # the C parser's chunks hold no text: read the fields again
        rows = chunk.chunk_rows()
        seen: dict[Any, int] = {}
        for i in unmatched:
            value = chunk.factor_value(int(i), int(rows[i]), name)
            if value not in seen:
                seen[value] = lookup(value)
            codes[i] = seen[value]
        return
    pa = import_pyarrow()
    values = arr.take(from_numpy(unmatched, pa.int64()))
    if pa.types.is_dictionary(values.type):
        values = values.cast(values.type.value_type)
    if hasattr(values, "combine_chunks"):
        values = values.combine_chunks()
    encoded = values.dictionary_encode()
    keys = np.array([lookup(v) for v in encoded.dictionary.to_pylist()], dtype=np.int64)
    indices = encoded.indices
    if indices.null_count:  # nulls are coded missing by the reader: none should be here
        indices = indices.fill_null(0)
    codes[unmatched] = keys[to_numpy(indices)]


def _lookup(design: Design, name: str) -> Callable[[Any], int]:
    """A value's level index, or :data:`CODE_UNMATCHED` when it is no level (for a
    factor with ``unknown="zero"`` too: the chunk warns once, not each value)."""
    n_levels = len(design.input(name).levels)

    def code(value: Any) -> int:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UnknownLevelWarning)
                found = design.level_code(name, value)
        except InputError:
            return CODE_UNMATCHED
        return found if found < n_levels else CODE_UNMATCHED

    return code


def _warn_unknown(chunk: Chunk, design: Design, name: str, codes: np.ndarray) -> None:
    """One :class:`UnknownLevelWarning` for the chunk's values of factor ``name`` that
    are missing or no level, naming the first (file, line or row, value)."""
    bad = np.flatnonzero(codes < 0)
    i = int(bad[0])
    chunk_row = int(chunk.chunk_rows()[i])
    line, row = chunk.locate(chunk_row)
    where = f"row {row}" if line is None else f"row {row} (line {line})"
    if codes[i] == CODE_MISSING:
        what = "a missing value"
    else:
        what = f"the value {shown(chunk.factor_value(i, chunk_row, name))}"
    warnings.warn(
        UnknownLevelWarning(
            f"{chunk.part.name}: {where}, column {name!r}: {what} is not a level this model "
            f"knows {_levels_shown(design, name)}; {bad.size} row(s) of this chunk scored "
            f"as no level (every indicator of {name!r} 0), as this model's unknown='zero' "
            "says (scikit-learn's handle_unknown='ignore')"
        ),
        stacklevel=2,
    )


def _levels_shown(design: Design, name: str) -> str:
    levels = design.input(name).levels
    more = f" and {len(levels) - _SHOWN_LEVELS} more" if len(levels) > _SHOWN_LEVELS else ""
    return f"(levels: {list(levels[:_SHOWN_LEVELS])}{more})"


def _number_at_fault(chunk: Chunk, plan: Plan, i: int) -> bool:
    """Whether row ``i`` has text that is not a number, or a missing or non-finite
    number in an input without a fill: its description names that first."""
    if i in chunk.failures:
        return True
    X, design = chunk.X, plan.design
    assert design is not None
    return any(
        not np.isfinite(X[i, j])
        for j, name in enumerate(plan.features)
        if design.input(name).fill is None or np.isinf(X[i, j])
    )


def _describe_factor(
    chunk: Chunk, design: Design, plan: Plan, name: str, codes: np.ndarray
) -> None:
    """``chunk.failures`` for the rows whose factor ``name`` is missing or not a level;
    a row already described, or with a number at fault, keeps that reason (numbers
    first, then the factors in the model's order)."""
    parquet = chunk.part.fmt.kind == "parquet"
    missing = "a missing value (null)" if parquet else "missing value (an empty field)"
    rows = chunk.chunk_rows()
    levels = _levels_shown(design, name)
    for index in np.flatnonzero(codes < 0):
        i = int(index)
        if _number_at_fault(chunk, plan, i):
            continue  # a number at fault is named first (find_bad)
        if codes[i] == CODE_MISSING:
            chunk.failures[i] = (name, missing)
            continue
        value = chunk.factor_value(i, int(rows[i]), name)
        chunk.failures[i] = (
            name,
            f"{shown(value)} is not a level this model knows {levels}",
        )


def _describe_nonfinite(
    chunk: Chunk, design: Design, feeds: dict[str, np.ndarray], rows: np.ndarray, plan: Plan
) -> None:
    """``chunk.failures`` for rows with finite inputs whose prediction is not finite: the
    first design column that is not (a log of a negative number, say) and its inputs.
    Rows with an input that is not finite are left to the generic description."""
    for index in np.flatnonzero(rows):
        i = int(index)
        if _number_at_fault(chunk, plan, i):
            continue
        row = {name: values[i : i + 1] for name, values in feeds.items()}
        z = design.matrix_from_codes(row, np.float64)[0]
        bad = np.flatnonzero(~np.isfinite(z))
        if not bad.size:
            continue  # beyond the dtype's range: described by find_bad
        column = design.columns[int(bad[0])]
        used = [n for n in plan.features if _uses(column.expr, n)]
        shown_inputs = ", ".join(f"{n}={float(feeds[n][i])!r}" for n in used)
        chunk.failures[i] = (
            used[0] if used else column.name,
            f"the design column {column.name!r} is {z[bad[0]]} for {shown_inputs}",
        )


def _uses(expr: dict[str, Any], name: str) -> bool:
    """Whether an expression reads the input ``name``."""
    if expr.get("input") == name:
        return True
    return any(_uses(a, name) for a in expr.get("args", ()))
