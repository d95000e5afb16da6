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
the first level, and its prediction dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from inference.batch.plan import Plan
from inference.design import Design
from inference.errors import InputError
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
    for j, name in enumerate(plan.features):
        feeds[name] = np.ascontiguousarray(chunk.X[:, j])
    for name in plan.factors:
        codes = chunk.codes[name]
        _resolve(chunk, design, name, codes)
        bad = codes < 0
        if bad.any():
            _describe_factor(chunk, design, name, codes)
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
        for i in unmatched:
            codes[i] = lookup(chunk.factor_value(int(i), int(rows[i]), name))
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
    def code(value: Any) -> int:
        try:
            return design.level_code(name, value)
        except InputError:
            return CODE_UNMATCHED

    return code


def _describe_factor(chunk: Chunk, design: Design, name: str, codes: np.ndarray) -> None:
    """``chunk.failures`` for the rows whose factor ``name`` is missing or not a level;
    a row already described, or with a number at fault, keeps that reason (numbers
    first, then the factors in the model's order)."""
    parquet = chunk.part.fmt.kind == "parquet"
    missing = "a missing value (null)" if parquet else "missing value (an empty field)"
    rows = chunk.chunk_rows()
    spec = design.input(name)
    levels = list(spec.levels[:_SHOWN_LEVELS])
    more = (
        f" and {len(spec.levels) - _SHOWN_LEVELS} more" if len(spec.levels) > _SHOWN_LEVELS else ""
    )
    X = chunk.X
    for index in np.flatnonzero(codes < 0):
        i = int(index)
        if i in chunk.failures or (X.shape[1] and not np.isfinite(X[i]).all()):
            continue  # a number at fault is named first (find_bad)
        if codes[i] == CODE_MISSING:
            chunk.failures[i] = (name, missing)
            continue
        value = chunk.factor_value(i, int(rows[i]), name)
        chunk.failures[i] = (
            name,
            f"{shown(value)} is not a level this model knows (levels: {levels}{more})",
        )


def _describe_nonfinite(
    chunk: Chunk, design: Design, feeds: dict[str, np.ndarray], rows: np.ndarray, plan: Plan
) -> None:
    """``chunk.failures`` for rows with finite inputs whose prediction is not finite: the
    first design column that is not (a log of a negative number, say) and its inputs.
    Rows with an input that is not finite are left to the generic description."""
    X = chunk.X
    for index in np.flatnonzero(rows):
        i = int(index)
        if i in chunk.failures or (X.shape[1] and not np.isfinite(X[i]).all()):
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
