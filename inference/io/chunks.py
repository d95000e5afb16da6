"""A chunk: rows read by one of the readers and converted to the model's matrix.

:class:`Chunk` holds what both readers produce; :class:`~inference.io.csv.reader.CsvChunk`
and :class:`~inference.io.parquet.reader.ParquetChunk` add what only one of them
knows (line numbers and raw text, or the record batch), behind the methods that
:mod:`inference.batch.bad_rows` uses to describe a bad row.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from inference.io.arrow import arrow_mask, import_pyarrow, to_numpy
from inference.io.formats import Part
from inference.io.spec import CODE_MISSING, CODE_UNMATCHED, ReadSpec

__all__ = ["Chunk", "Rejected", "factor_codes", "level_index", "matrix", "shown"]

#: a line set aside before conversion: (chunk row, reason, column, text)
Rejected = tuple[int, str, str | None, str]


@dataclass
class Chunk:
    """One chunk read and converted, ready to predict."""

    part: Part
    names: list[str]  # the features, in the model's order
    X: np.ndarray  # (n, k) of the model's dtype; NaN where a value is missing or not a number
    kept: list[Any]  # arrow arrays of length n
    feature_arrays: list[Any]  # as read, for describing bad rows
    failures: dict[int, tuple[str, str]]  # row -> (column, reason) for text that is not a number
    first_row: int = 1  # 1-based data row number of the chunk's first row
    nbytes: int = 0
    # factors (ReadSpec.factors): int64 codes of length n, and the columns as read
    codes: dict[str, np.ndarray] = field(default_factory=dict)
    factor_arrays: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(self.X.shape[0])

    def rejected(self) -> list[Rejected]:
        """Rows the reader set aside before conversion, in none of the arrays."""
        return []

    def chunk_rows(self) -> np.ndarray:
        """For each table row, its 1-based row within the chunk (counting rejected rows)."""
        return np.arange(1, self.n + 1)

    def locate(self, chunk_row: int) -> tuple[int | None, int]:
        """(line in the file or None, 1-based data row) of a row of the chunk."""
        return None, self.first_row + chunk_row - 1

    def is_blank(self, chunk_row: int) -> bool:
        """Whether the row is a blank line, dropped without being counted as bad."""
        return False

    def value(self, i: int, chunk_row: int, name: str) -> Any:
        """Table row ``i``'s value of feature ``name`` as it was written."""
        return self.feature_arrays[self.names.index(name)][i].as_py()

    def factor_value(self, i: int, chunk_row: int, name: str) -> Any:
        """Table row ``i``'s value of factor ``name`` as it was written (None: missing)."""
        return self.factor_arrays[name][i].as_py()

    def record(self, i: int, chunk_row: int) -> str:
        """Table row ``i`` as text, for the bad-rows file."""
        return ""


def factor_codes(arr: Any, levels: Mapping[str, int]) -> np.ndarray:
    """A factor column's codes (:class:`~inference.io.spec.ReadSpec`): for each row the
    index ``levels[value]`` of a text value that is a key of ``levels``,
    :data:`CODE_MISSING` for a null and :data:`CODE_UNMATCHED` for anything else, an
    int64 array of shape (n,). ``arr``: an Arrow array or chunked array of any type
    (dictionary arrays are looked up by distinct value, others dictionary-encoded first)."""
    pa = import_pyarrow()
    pieces = arr.chunks if hasattr(arr, "chunks") else [arr]
    out = np.empty(len(arr), dtype=np.int64)
    start = 0
    for piece in pieces:
        size = len(piece)
        if size == 0:
            continue
        if pa.types.is_null(piece.type):
            out[start : start + size] = CODE_MISSING
            start += size
            continue
        if not pa.types.is_dictionary(piece.type):
            import pyarrow.compute as pc

            piece = pc.dictionary_encode(piece)
        keys = piece.dictionary.to_pylist()
        table = np.array([_code(k, levels) for k in keys] + [CODE_MISSING], dtype=np.int64)
        indices = piece.indices
        if indices.null_count:
            indices = indices.fill_null(len(keys))
        out[start : start + size] = table[to_numpy(indices)]
        start += size
    return out


def _unparseable(pc: Any, pa: Any, arr: Any, start: int = 0) -> list[int]:
    """Positions of values in a text array that do not cast to float64 (bisection)."""
    try:
        pc.cast(arr, pa.float64())
        return []
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        if len(arr) == 1:
            return [start]
    mid = len(arr) // 2
    return _unparseable(pc, pa, arr.slice(0, mid), start) + _unparseable(
        pc, pa, arr.slice(mid), start + mid
    )


def _to_float(arr: Any, name: str) -> tuple[Any, dict[int, tuple[str, str]]]:
    """A column as numpy (float64 or the column's numeric dtype; NaN for nulls), and the
    rows whose text is not a number."""
    pa = import_pyarrow()
    t = arr.type
    if pa.types.is_floating(t) or pa.types.is_integer(t):
        return to_numpy(arr), {}
    import pyarrow.compute as pc  # only for text: numbers as read never need it

    if not (pa.types.is_string(t) or pa.types.is_large_string(t)):
        return to_numpy(pc.cast(arr, pa.float64())), {}
    try:
        return to_numpy(pc.cast(arr, pa.float64())), {}
    except pa.ArrowInvalid:
        pass
    trimmed = pc.utf8_trim_whitespace(arr)
    try:
        return to_numpy(pc.cast(trimmed, pa.float64())), {}
    except pa.ArrowInvalid:
        pass
    bad = _unparseable(pc, pa, trimmed)
    mask = np.zeros(len(arr), dtype=bool)
    mask[bad] = True
    cleaned = pc.if_else(arrow_mask(mask), pa.nulls(1, trimmed.type)[0], trimmed)
    failures = {i: (name, f"{shown(arr[i].as_py())} is not a number") for i in bad}
    return to_numpy(pc.cast(cleaned, pa.float64())), failures


def level_index(spec: ReadSpec, name: str) -> Mapping[str, int]:
    """Factor ``name``'s levels of ``spec`` as text -> index (shared, do not change)."""
    return _level_index(spec.factors[name])


@functools.lru_cache(maxsize=64)
def _level_index(levels: tuple[str, ...]) -> dict[str, int]:
    return {level: j for j, level in enumerate(levels)}


def _code(key: Any, levels: Mapping[str, int]) -> int:
    if key is None:
        return CODE_MISSING
    return levels.get(key, CODE_UNMATCHED) if isinstance(key, str) else CODE_UNMATCHED


def matrix(
    arrays: Sequence[Any],
    names: Sequence[str],
    dtype: np.dtype,
    n: int | None = None,
    columns_contiguous: bool = False,
) -> tuple[np.ndarray, dict[int, tuple[str, str]]]:
    """The arrays (Arrow arrays, or chunked arrays, taken chunk by chunk without
    combining them) as an (n, k) matrix of ``dtype`` (Fortran-ordered with
    ``columns_contiguous``), NaN for nulls and for text that is not a number, and
    row -> (column, reason) for such text. ``n``: the rows, when there may be no array."""
    pa = import_pyarrow()
    double = pa.float64()
    if n is None:
        n = len(arrays[0]) if arrays else 0
    X = np.empty((n, len(arrays)), dtype=dtype, order="F" if columns_contiguous else "C")
    failures: dict[int, tuple[str, str]] = {}
    with np.errstate(over="ignore"):  # beyond float32's range: inf, reported as a bad row
        for j, (arr, name) in enumerate(zip(arrays, names, strict=True)):
            start = 0
            for piece in arr.chunks if hasattr(arr, "chunks") else [arr]:
                size = len(piece)
                if piece.type == double and not piece.null_count:
                    # The usual case, inlined: this runs once per column per piece parsed.
                    values = np.frombuffer(
                        piece.buffers()[1], dtype=np.float64, count=size, offset=piece.offset * 8
                    )
                    X[start : start + size, j] = values
                    start += size
                    continue
                values, bad = _to_float(piece, name)
                X[start : start + size, j] = values
                for i, what in bad.items():
                    failures.setdefault(start + i, what)
                start += size
    return X, failures


def shown(value: Any, limit: int = 80) -> str:
    """``repr(value)``, cut to about ``limit`` characters for a message."""
    text = repr(value)
    if len(text) <= limit:
        return text
    size = len(value) if isinstance(value, str | bytes) else len(text)
    return f"{text[: limit - 3]}... ({size} characters)"
