"""The Parquet fast path: plain numeric column chunks decoded straight into the model's matrix.

pyarrow's reader copies every value several times (the file read, its input buffer,
the decompressed page, the decoded values, buffers that grow) before
:func:`~inference.io.chunks.matrix` copies it once more into the model's matrix.
When every column a job reads is flat, numeric (float features; integer or float kept
columns), holds no null (by the file's statistics) and is compressed with snappy or
not at all, the C reader of :mod:`inference.io.parquet.native` decodes each column
chunk page by page straight into its column of the matrix, and each kept column into
a numpy array. The chunks hold the rows pyarrow's ``iter_batches`` gives for the same
batch size, with the same values (tested), so the predictions are the same.

Anything else falls back to pyarrow: a file that does not qualify is read by pyarrow
from the start, and a chunk the C reader cannot decode (an encoding it does not know,
a null the statistics did not show, a damaged page) is read by pyarrow from that chunk
on, so pyarrow names what is wrong. So is a chunk whose footer metadata the C reader
would refuse (:func:`chunk_problem`: a negative offset, a chunk past the end of the
file, ``num_values`` other than its row group's rows): :class:`NotPlain` then says
which row group and column, for the error if pyarrow cannot read them either. A
chunk's record batch, needed only to describe a bad row, is read again by pyarrow
(:class:`ArrowReplay`).
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from inference.errors import BatchError
from inference.io.arrow import import_pyarrow
from inference.io.parquet import native as fastparquet

if TYPE_CHECKING:
    from inference.io.spec import ReadSpec

__all__ = [
    "ArrowReplay",
    "DecodedBatch",
    "NotPlain",
    "chunk_problem",
    "decoded_batches",
    "fast_columns",
]

#: encodings a column chunk may list (values, dictionary, definition levels)
_ENCODINGS = frozenset({"PLAIN", "PLAIN_DICTIONARY", "RLE_DICTIONARY", "RLE"})
#: Arrow type of a column -> (Parquet physical type, numpy dtype of a kept column)
_TYPES: dict[str, tuple[str, np.dtype]] = {
    "double": ("DOUBLE", np.dtype(np.float64)),
    "float": ("FLOAT", np.dtype(np.float32)),
    "int64": ("INT64", np.dtype(np.int64)),
    "int32": ("INT32", np.dtype(np.int32)),
}
_FLOATS = ("double", "float")


@dataclass(frozen=True)
class _Column:
    """A column the fast path reads: its leaf in the Parquet schema, and where it goes."""

    name: str
    leaf: int
    physical: int
    max_definition_level: int
    feature: int  # its column of the matrix, or -1 for a kept column
    dtype: np.dtype  # a kept column's numpy dtype (a feature: the model's)


@dataclass
class DecodedBatch:
    """Rows the C reader decoded: ``X`` (n, k) of the model's dtype and the kept columns
    (numpy arrays of length n, in the spec's order); ``start`` is the 0-based row of the
    file where they begin."""

    start: int
    X: np.ndarray
    kept: list[np.ndarray]

    @property
    def nbytes(self) -> int:
        return int(self.X.nbytes + sum(k.nbytes for k in self.kept))


class NotPlain(Exception):
    """The C reader could not decode the rows from ``start`` on (0-based row of the file);
    ``problem`` names the row group and column whose footer metadata it refused, if so."""

    def __init__(self, start: int, problem: str | None = None) -> None:
        super().__init__(start, problem)
        self.start = start
        self.problem = problem


def fast_columns(pf: Any, spec: ReadSpec) -> list[_Column] | None:
    """The columns to decode, kept columns first (the spec's ``needed`` order), or None
    when the file or the job does not qualify (see the module docstring)."""
    if not fastparquet.available() or spec.dtype not in (np.float32, np.float64):
        return None
    if set(spec.kept) & set(spec.features):
        return None
    arrow = pf.schema_arrow
    schema = pf.metadata.schema
    leaves: dict[str, int] = {}
    for i in range(len(schema)):
        path = schema.column(i).path
        leaves[path] = -1 if path in leaves else i
    columns = []
    for name in spec.needed:
        leaf = leaves.get(name, -1)
        if leaf < 0 or arrow.get_field_index(name) < 0:
            return None
        kind = str(arrow.field(name).type)
        is_feature = name in spec.features
        if kind not in _TYPES or (is_feature and kind not in _FLOATS):
            return None
        col = schema.column(leaf)
        physical, dtype = _TYPES[kind]
        if col.physical_type != physical or col.max_repetition_level != 0:
            return None
        if col.max_definition_level not in (0, 1):
            return None
        columns.append(
            _Column(
                name,
                leaf,
                fastparquet.PHYSICAL_TYPES[physical],
                col.max_definition_level,
                spec.features.index(name) if is_feature else -1,
                spec.dtype if is_feature else dtype,
            )
        )
    return columns if _chunks_qualify(pf.metadata, columns) else None


def _chunks_qualify(metadata: Any, columns: list[_Column]) -> bool:
    """Every column chunk of the columns: in this file, a known codec and encodings, and
    no null by its statistics (a column that cannot hold one needs none); and the row
    groups hold the file's rows."""
    groups = [metadata.row_group(g) for g in range(metadata.num_row_groups)]
    if sum(group.num_rows for group in groups) != metadata.num_rows:
        return False
    for g in range(metadata.num_row_groups):
        group = metadata.row_group(g)
        for c in columns:
            chunk = group.column(c.leaf)
            if chunk.file_path or chunk.compression not in fastparquet.CODECS:
                return False
            if not set(chunk.encodings) <= _ENCODINGS:
                return False
            if c.max_definition_level:
                stats = chunk.statistics
                if stats is None or not stats.has_null_count or stats.null_count != 0:
                    return False
    return True


def chunk_problem(chunk: Any, group_rows: int, file_size: int) -> str | None:
    """What the C reader would refuse in a column chunk's footer metadata (pyarrow's
    ``ColumnChunkMetaData``), or None: its first byte (the dictionary page's, else the
    first data page's) and its size must lie in the file, between its leading magic
    and the footer's length; a flat column has one value per row of its group."""
    offsets = [chunk.data_page_offset]
    if chunk.has_dictionary_page and chunk.dictionary_page_offset is not None:
        offsets.append(chunk.dictionary_page_offset)
    start, length = min(offsets), chunk.total_compressed_size
    if start < 4 or length <= 0 or start + length > file_size - 8:
        return (
            f"the chunk's pages at offset {start} and {length} bytes long, expected within "
            f"the file's bytes 4 to {file_size - 8}"
        )
    if chunk.num_values != group_rows:
        return f"num_values is {chunk.num_values}, expected the row group's {group_rows} rows"
    return None


def decoded_batches(
    path: Path, metadata: Any, columns: list[_Column], spec: ReadSpec, rows: int
) -> Iterator[DecodedBatch]:
    """The file's rows, ``rows`` at a time across row groups (as ``iter_batches`` cuts
    them), decoded by the C reader; :class:`NotPlain` at the first batch it cannot decode."""
    k = len(spec.features)
    total = metadata.num_rows
    fd = os.open(str(path), os.O_RDONLY | getattr(os, "O_BINARY", 0))
    size = os.fstat(fd).st_size
    group, left = -1, 0
    readers: list[Any] = []
    try:
        start = 0
        while start < total:
            n = min(rows, total - start)
            X = np.empty((n, k), dtype=spec.dtype)
            kept = [np.empty((n, 1), dtype=c.dtype) for c in columns if c.feature < 0]
            done = 0
            while done < n:
                if left == 0:
                    _close(readers)
                    group += 1
                    if group >= metadata.num_row_groups:  # rows the groups do not hold
                        raise NotPlain(start)
                    readers, left = _open_group(fd, size, metadata, group, columns, start)
                take = min(n - done, left)
                kept_at = iter(kept)
                outs = [X[done:] if c.feature >= 0 else next(kept_at)[done:] for c in columns]
                targets = [max(c.feature, 0) for c in columns]
                if not fastparquet.read_columns(readers, outs, targets, take):
                    raise NotPlain(start)
                done += take
                left -= take
            yield DecodedBatch(start, X, [a.reshape(n) for a in kept])
            start += n
    finally:
        _close(readers)
        os.close(fd)


def _open_group(
    fd: int, size: int, metadata: Any, group: int, columns: list[_Column], start: int
) -> tuple[list[Any], int]:
    """A reader for each column's chunk in row group ``group``, and the group's rows;
    :class:`NotPlain` (from ``start``, the batch's first row) for a chunk whose metadata
    the reader would refuse (:func:`chunk_problem`)."""
    row_group = metadata.row_group(group)
    rows = int(row_group.num_rows)
    readers: list[Any] = []
    for c in columns:
        chunk = row_group.column(c.leaf)
        problem = chunk_problem(chunk, rows, size)
        if problem is None:
            offset = chunk.data_page_offset
            if chunk.has_dictionary_page and chunk.dictionary_page_offset is not None:
                offset = min(offset, chunk.dictionary_page_offset)
            try:
                readers.append(
                    fastparquet.ColumnChunkReader(
                        fd,
                        offset,
                        chunk.total_compressed_size,
                        physical_type=c.physical,
                        codec=fastparquet.CODECS[chunk.compression],
                        max_definition_level=c.max_definition_level,
                        num_values=chunk.num_values,
                    )
                )
            except (ValueError, OSError) as exc:  # what chunk_problem did not foresee
                problem = str(exc)
        if problem is not None:
            _close(readers)
            raise NotPlain(start, f"row group {group}, column {c.name!r}: {problem}")
    return readers, rows


def _close(readers: list[Any]) -> None:
    for reader in readers:
        reader.close()
    readers.clear()


class ArrowReplay:
    """The record batch of any rows of a part, read again by pyarrow (to describe a bad
    row of a decoded chunk). Requests that move forward through the file, as chunks do,
    cost one pass at most: it starts at the row group of the first row asked for and
    keeps its place."""

    def __init__(self, path: Path, needed: list[str], rows: int) -> None:
        self._path = path
        self._needed = needed
        self._rows = rows
        self._file: Any = None
        self._batches: Iterator[Any] | None = None
        self._pos = 0  # the file row where ``_pending`` (or the next batch) starts
        self._pending: Any = None

    def batch(self, start: int, n: int) -> Any:
        """Rows ``start`` to ``start + n`` (0-based) as one record batch."""
        pa = import_pyarrow()
        if self._batches is None or start < self._pos:
            self._reopen(start)
        assert self._batches is not None
        pieces = []
        try:
            while True:
                if self._pending is None:
                    self._pending = next(self._batches)
                b, b_start = self._pending, self._pos
                b_end = b_start + b.num_rows
                lo, hi = max(start, b_start), min(start + n, b_end)
                if hi > lo:
                    pieces.append(b.slice(lo - b_start, hi - lo))
                if b_end > start + n:
                    break
                self._pos, self._pending = b_end, None
                if b_end == start + n:
                    break
        except (StopIteration, pa.ArrowException, OSError) as exc:
            raise BatchError(
                f"cannot read it ({exc})", file=str(self._path), row=start + 1
            ) from exc
        if len(pieces) == 1:
            return pieces[0]
        return pa.Table.from_batches(pieces).combine_chunks().to_batches()[0]

    def _reopen(self, start: int) -> None:
        from inference.io.arrow import import_parquet

        self.close()
        self._file = import_parquet().ParquetFile(str(self._path), pre_buffer=False)
        metadata = self._file.metadata
        starts = [0]
        for g in range(metadata.num_row_groups):
            starts.append(starts[-1] + metadata.row_group(g).num_rows)
        group = bisect.bisect_right(starts, start) - 1
        self._batches = self._file.iter_batches(
            batch_size=self._rows,
            row_groups=range(group, metadata.num_row_groups),
            columns=self._needed,
        )
        self._pos, self._pending = starts[group], None

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        self._file = self._batches = self._pending = None
