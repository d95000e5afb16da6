"""Parsed JSON inputs as an (n, k) matrix, a slice of rows at a time.

``np.asarray`` of a list of a million rows is one C call that holds the interpreter
(about 0.3 s: health checks wait), and ``as_matrix`` reads records one value at a
time in Python (about 12 s a million). Here a list of rows or of records of plain
numbers is converted :data:`SLICE_ROWS` rows at a time (other threads run between
slices), records through one flat list of their values. Anything else, and any
slice that fails, goes to :func:`inference.inputs.as_matrix` whole, so errors are
the Predictor's own messages with the right row.

Names the model does not read are ignored (collected, not warned about: a warning
per request would fill the server's log) unless ``strict`` (``--strict-columns``).
When the conversion fails, :func:`null_error` looks for a ``null`` among the
feature values, a missing value, and names its row and column.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from inference.errors import InputError
from inference.inputs import as_matrix

__all__ = ["SLICE_ROWS", "matrix_of", "null_error", "release", "table_of"]

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


def matrix_of(
    inputs: Any, features: Sequence[str], dtype: np.dtype, *, strict: bool = False
) -> np.ndarray:
    """``as_matrix(inputs, features, dtype, strict=strict)``, by slices for long lists of
    rows or records; names the model does not read are ignored silently unless
    ``strict``; a null among the feature values is an InputError naming its place."""
    try:
        return _matrix_of(inputs, features, dtype, strict)
    except InputError:
        error = null_error(inputs, features)
        if error is not None:
            raise error from None
        raise


def _as_matrix(X: Any, features: Sequence[str], dtype: np.dtype, strict: bool) -> np.ndarray:
    return as_matrix(X, features, dtype, strict=strict, ignored=[])


def _matrix_of(inputs: Any, features: Sequence[str], dtype: np.dtype, strict: bool) -> np.ndarray:
    if not (isinstance(inputs, list) and len(inputs) > SLICE_ROWS):
        return _as_matrix(inputs, features, dtype, strict)
    first = inputs[0]
    if not isinstance(first, list | dict):
        return _as_matrix(inputs, features, dtype, strict)
    parts: list[np.ndarray] = []
    try:
        for start in range(0, len(inputs), SLICE_ROWS):
            part = inputs[start : start + SLICE_ROWS]
            if isinstance(first, dict):
                X = _records(part, features, dtype)
                if X is None:
                    return _as_matrix(inputs, features, dtype, strict)
            else:
                if not all(isinstance(r, list) for r in part):
                    return _as_matrix(inputs, features, dtype, strict)
                X = as_matrix(part, features, dtype)
            parts.append(X)
    except InputError:  # the message, with the row in the whole
        return _as_matrix(inputs, features, dtype, strict)
    return np.concatenate(parts)


def _null(row: int, column: str) -> InputError:
    return InputError(
        f"row {row}, column {column!r}: a missing value (null); every feature needs a number"
    )


def _null_in_rows(rows: list[Any], names: Sequence[str], features: Sequence[str]) -> Any:
    """The first null of a list of rows whose values are named ``names``."""
    for i, row in enumerate(rows):
        if isinstance(row, list):
            for name, value in zip(names, row, strict=False):
                if value is None and name in features:
                    return _null(i, name)
    return None


def null_error(
    inputs: Any, features: Sequence[str], columns: Sequence[str] | None = None
) -> InputError | None:
    """The error for the first null among the feature values of parsed JSON ``inputs``
    (a record, records, columns, rows, or with ``columns`` the rows of a
    ``dataframe_split``), or None when there is none."""
    if columns is not None:
        return _null_in_rows(inputs, columns, features) if isinstance(inputs, list) else None
    if isinstance(inputs, dict):
        for f in features:
            value = inputs.get(f, 0)
            if value is None:
                return _null(0, f)
            if isinstance(value, list) and None in value:
                return _null(value.index(None), f)
        return None
    if not isinstance(inputs, list) or not inputs:
        return None
    if isinstance(inputs[0], dict):
        for i, record in enumerate(inputs):
            if isinstance(record, dict):
                name = next((f for f in features if f in record and record[f] is None), None)
                if name is not None:
                    return _null(i, name)
        return None
    if isinstance(inputs[0], list):
        return _null_in_rows(inputs, features, features)
    return _null_in_rows([inputs], features, features)


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
