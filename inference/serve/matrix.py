"""Parsed JSON inputs as an (n, k) matrix, a slice of rows at a time.

``np.asarray`` of a list of a million rows is one C call that holds the interpreter
(about 0.3 s: health checks wait), and ``as_matrix`` reads records one value at a
time in Python (about 12 s a million). Here a list of rows or of records of plain
numbers is converted :data:`SLICE_ROWS` rows at a time (other threads run between
slices), records through one flat list of their values. Anything else, and any
slice that fails, goes to :func:`inference.inputs.as_matrix` whole, so errors are
the Predictor's own messages with the right row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from inference.errors import InputError
from inference.inputs import as_matrix

__all__ = ["SLICE_ROWS", "matrix_of", "release", "table_of"]

#: rows converted per slice
SLICE_ROWS = 32_768
_PLAIN = frozenset({float, int})


def _records(part: list[Any], features: Sequence[str], dtype: np.dtype) -> np.ndarray | None:
    """A slice of records of exactly the features, plain numbers; else None."""
    k = len(features)
    try:
        if any(len(r) != k for r in part):
            return None
        flat = [r[f] for r in part for f in features]
    except (KeyError, TypeError):
        return None
    if not _PLAIN.issuperset(map(type, flat)):
        return None
    try:
        values = np.array(flat, dtype=np.float64)
    except OverflowError:  # an int beyond float64: as_matrix says where
        return None
    return as_matrix(values.reshape(-1, k), features, dtype)


def matrix_of(inputs: Any, features: Sequence[str], dtype: np.dtype) -> np.ndarray:
    """``as_matrix(inputs, features, dtype)``, by slices for long lists of rows or records."""
    if not (isinstance(inputs, list) and len(inputs) > SLICE_ROWS):
        return as_matrix(inputs, features, dtype)
    first = inputs[0]
    if not isinstance(first, list | dict):
        return as_matrix(inputs, features, dtype)
    parts: list[np.ndarray] = []
    try:
        for start in range(0, len(inputs), SLICE_ROWS):
            part = inputs[start : start + SLICE_ROWS]
            if isinstance(first, dict):
                X = _records(part, features, dtype)
                if X is None:
                    return as_matrix(inputs, features, dtype)
            else:
                if not all(isinstance(r, list) for r in part):
                    return as_matrix(inputs, features, dtype)
                X = as_matrix(part, features, dtype)
            parts.append(X)
    except InputError:
        return as_matrix(inputs, features, dtype)  # the message, with the row in the whole
    return np.concatenate(parts)


def table_of(data: list[Any]) -> np.ndarray:
    """``np.asarray(data)`` for a list of rows, by slices (a ValueError or TypeError as
    ``np.asarray`` of the whole list raises it)."""
    if len(data) <= SLICE_ROWS:
        return np.asarray(data)
    parts = [np.asarray(data[s : s + SLICE_ROWS]) for s in range(0, len(data), SLICE_ROWS)]
    if len({(p.ndim, p.shape[1:], p.dtype.kind) for p in parts}) != 1:
        return np.asarray(data)
    return np.concatenate(parts)


def release(value: Any) -> None:
    """Empty a parsed list (or the lists that are values of a parsed dict) in place,
    :data:`SLICE_ROWS` items at a time: freeing a million rows in one call held the
    interpreter about 0.1 s."""
    lists = [v for v in value.values() if isinstance(v, list)] if isinstance(value, dict) else []
    for x in [value] if isinstance(value, list) else lists:
        while len(x) > SLICE_ROWS:
            del x[-SLICE_ROWS:]
        x.clear()
