"""Typed, parallel reading of training files with pyarrow, and the location of bad cells.

:func:`load_fast` reads the needed columns of a CSV, TSV or Parquet file as float64
through the I/O layer (:mod:`inference.io`; CSV: ``pyarrow.csv.read_csv`` on all
cores; Parquet: the columns' own types). When that fails (a cell that is not a
number, a missing value, NaN or inf, a line with too many fields), the file is read
again in chunks by the chunk reader ``linreg predict`` uses too
(:func:`inference.io.read_chunks`), which keeps each chunk's text, to name the first
bad cell of the first bad column with its row, line and value, and the count of bad
cells in that column, as the text reader of :mod:`training.data.loader` words it.
Files that reader cannot read as one record per line (a line break inside quotes,
bare carriage returns), damaged Parquet files and Parquet columns of other types go
back to that text reader (``None``), which words every other fault.

:func:`stream_chunks` yields the rows of a file in chunks for the streamed fit, with
the same messages for the first bad cell.

Before pyarrow reads a text file, its lines are checked against ``max_line_bytes``
(:func:`inference.io.scan_text_file`, in the pass that checks the encoding; the chunk
reader checks as it reads): a longer line is a DataError naming the file, the line and
the limit, and no reader holds more of it than the limit.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from inference.errors import BatchError, LineTooLongError
from inference.io import (
    DEFAULT_MAX_LINE_BYTES,
    FileFormat,
    Part,
    ReadSpec,
    file_format,
    import_pyarrow,
    inspect_part,
    read_chunks,
    read_csv_table,
    record_batches,
    scan_text_file,
    to_numpy,
)
from training.data.tables import Table, validate_xy, wanted_columns
from training.errors import CellError, DataError

__all__ = ["cell_kind", "format_of", "header_columns", "load_fast", "part_of", "stream_chunks"]


def format_of(path: Path) -> FileFormat:
    """The file's format, told from its extension as ``linreg predict`` tells it
    (:func:`inference.io.file_format`); DataError when it cannot be told."""
    try:
        return file_format(path)
    except ValueError:
        raise DataError(
            f"{path}: unknown file type {path.suffix.lower()!r}; expected .csv, .tsv or "
            ".txt (optionally .gz, .bz2 or .zst) or .parquet"
        ) from None


def part_of(path: Path, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> Part:
    """The file's format and header (Parquet: schema), no data. DataError for a format
    that cannot be told, an empty file or a header line longer than ``max_line_bytes``;
    BatchError when the reader refuses the header."""
    fmt = format_of(path)
    if fmt.kind == "csv" and path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty (no header, no rows)")
    try:
        return inspect_part(path, max_line_bytes=max_line_bytes)
    except LineTooLongError as exc:
        raise DataError(str(exc)) from exc


def header_columns(path: Path, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> list[str]:
    """The column names of the file (DataError when it has no readable header)."""
    try:
        return list(part_of(path, max_line_bytes).columns)
    except BatchError as exc:
        raise DataError(str(exc)) from exc


def _workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


# --- the fast path --------------------------------------------------------------------------


def load_fast(
    path: Path, target: str, features: Any, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
) -> Table | None:
    """The table read typed and in parallel; None when the text reader must decide.
    DataError for a line longer than ``max_line_bytes`` (found before pyarrow reads)."""
    try:
        part = part_of(path, max_line_bytes)
    except BatchError:
        return None
    wanted = wanted_columns(path, list(part.columns), target, features)
    needed = [*wanted, target]
    if part.fmt.kind == "parquet":
        arrays = _read_parquet(part, wanted, target)
    elif part.fmt.compression or not _scan(part):
        # the text reader decompresses, checks the lines, names the encoding error
        return None
    else:
        arrays = _fill(read_csv_table(part, needed), wanted, target)
        if arrays is None:
            arrays = _locate_csv(part, needed)
    if arrays is None:
        return None
    X, y = arrays
    if len(y) == 0:
        raise DataError(f"{path}: the file has a header but no data rows")
    validate_xy(X, y, source=str(path))
    return Table(X=X, y=y, features=wanted, target=target, source=str(path))


def _scan(part: Part) -> bool:
    """Whether the file is UTF-8; DataError at its first line longer than the limit
    (one pass, before ``read_csv_table``'s pyarrow reads the file)."""
    try:
        return scan_text_file(part.path, part.max_line_bytes)
    except LineTooLongError as exc:
        raise DataError(str(exc)) from exc


def _fill(table: Any, wanted: list[str], target: str) -> tuple[np.ndarray, np.ndarray] | None:
    """``X`` (n, k) and ``y`` (n,), float64, copied piece by piece from the Arrow
    table's columns, each column released once copied (the table and the matrix are
    the only full copies alive); None when a value is missing, NaN or infinite."""
    if table is None:
        return None
    pa = import_pyarrow()
    n = table.num_rows
    X = np.empty((n, len(wanted)))
    y = np.empty(n)
    for j, name in enumerate([*wanted, target]):
        column = table.column(name)
        table = table.drop_columns([name])
        if column.null_count:
            return None
        out = y if name == target else X[:, j]
        at = 0
        for piece in column.chunks:
            if piece.type != pa.float64():
                piece = piece.cast(pa.float64())
            values = to_numpy(piece)
            if not np.isfinite(values).all():
                return None
            out[at : at + len(values)] = values
            at += len(values)
        del column
    return X, y


def _read_parquet(
    part: Part, wanted: list[str], target: str
) -> tuple[np.ndarray, np.ndarray] | None:
    """``X`` and ``y`` of a Parquet file, filled batch by batch (the file's row count is
    in its metadata, so only the matrix and one batch are in memory); None (the text
    reader words the fault) for a column not of a number type, a missing value, NaN or
    inf, or a file that does not read."""
    pa = import_pyarrow()
    types = pa.types
    needed = [*wanted, target]
    for name in needed:
        t = part.types[name]
        if not (types.is_integer(t) or types.is_floating(t) or types.is_decimal(t)):
            return None
    n = int(part.rows or 0)
    X = np.empty((n, len(wanted)))
    y = np.empty(n)
    at = 0
    try:
        for batch in record_batches(part, ReadSpec.numeric(needed), 1 << 16):
            filled = _fill(pa.Table.from_batches([batch]), wanted, target)
            if filled is None or at + batch.num_rows > n:
                return None
            X[at : at + batch.num_rows], y[at : at + batch.num_rows] = filled
            at += batch.num_rows
    except BatchError:
        return None
    return (X, y) if at == n else None


# --- locating bad cells --------------------------------------------------------------------


def cell_kind(text: str) -> str:
    """A bad text cell's :class:`~training.errors.CellError` kind."""
    cell = text.strip()
    if cell == "":
        return "missing"
    return "nonfinite" if cell.lower() in {"nan", "inf", "-inf"} else "text"


def _cell_problem(text: str) -> str:
    """How the text reader words a bad cell: ``"<what> is <kind>"``."""
    cell = text.strip()
    what = "an empty cell" if cell == "" else f"the value {cell!r}"
    kind = "not a finite number" if cell.lower() in {"nan", "inf", "-inf"} else "not numeric"
    return f"{what} is {kind}"


def _chunks(part: Part, needed: list[str], chunk_rows: int | None) -> Iterator[Any]:
    return read_chunks(part, ReadSpec.numeric(needed), chunk_rows, _workers())


class _Clean:
    """A chunk without its blank lines (which the reader gives as rows of missing
    values): ``X`` the other rows; ``bad`` their chunk indices with a bad value;
    ``others`` lines set aside that are not blank (a wrong number of fields)."""

    def __init__(self, chunk: Any) -> None:
        self.chunk = chunk
        nonfinite = ~np.isfinite(chunk.X).all(axis=1)
        candidates = np.flatnonzero(nonfinite)
        rows = chunk.chunk_rows()
        blank = np.array([chunk.is_blank(int(rows[i])) for i in candidates], dtype=bool)
        self.blank = candidates[blank]
        self.bad = candidates[~blank]
        self.X = np.delete(chunk.X, self.blank, axis=0) if self.blank.size else chunk.X
        self.others = [r for r in chunk.rejected() if not chunk.is_blank(r[0])]

    @property
    def n(self) -> int:
        return int(self.X.shape[0])

    def row(self, i: int, rows_before: int) -> int:
        """The 1-based table row of chunk index ``i`` (blank lines are not rows)."""
        return rows_before + i - int(np.searchsorted(self.blank, i)) + 1

    def value(self, i: int, name: str) -> Any:
        return self.chunk.value(i, int(self.chunk.chunk_rows()[i]), name)

    def where(self, i: int, rows_before: int) -> str:
        row = self.row(i, rows_before)
        line, _ = self.chunk.locate(int(self.chunk.chunk_rows()[i]))
        return f"row {row} (line {line})" if line is not None else f"row {row}"


def _kind(value: Any) -> str:
    if isinstance(value, str) or value is None:
        return cell_kind("" if value is None else value)
    return "nonfinite"


def _problem(value: Any) -> str:
    if isinstance(value, str) or value is None:
        return _cell_problem("" if value is None else value)
    return f"{value} is not a finite number"


def _locate_csv(part: Part, needed: list[str]) -> tuple[np.ndarray, np.ndarray] | None:
    """Read the file in chunks, naming the first bad cell of the first bad column (in
    ``needed`` order) with the count of bad cells in it; the columns when every cell is
    good after all (numbers with spaces around them), as ``(X, y)``. None for lines with a wrong
    number of fields, or a file that is not one record per line."""
    parts: list[np.ndarray] = []
    first: dict[str, tuple[str, str, str]] = {}  # column -> (kind, where, problem)
    counts: dict[str, int] = {}
    rows = 0
    try:
        for chunk in _chunks(part, needed, None):
            clean = _Clean(chunk)
            if clean.others:
                return None
            for i in clean.bad:
                for j in np.flatnonzero(~np.isfinite(chunk.X[i])):
                    name = needed[int(j)]
                    counts[name] = counts.get(name, 0) + 1
                    if name not in first:
                        where = clean.where(int(i), rows)
                        value = clean.value(int(i), name)
                        first[name] = (_kind(value), where, _problem(value))
            if not first:
                parts.append(clean.X)
            rows += clean.n
    except LineTooLongError as exc:
        raise DataError(str(exc)) from exc
    except BatchError:
        return None
    for name in needed:
        if name in first:
            kind, where, problem = first[name]
            raise CellError(
                f"{part.path}: column {name!r}, {where}: {problem} "
                f"({counts[name]} bad cell(s) in this column)",
                kind,
                name,
            )
    M = np.concatenate(parts) if parts else np.empty((0, len(needed)))
    return np.ascontiguousarray(M[:, :-1]), np.ascontiguousarray(M[:, -1])


# --- streaming ------------------------------------------------------------------------------


def stream_chunks(
    path: Path,
    target: str,
    features: list[str],
    chunk_rows: int | None,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(X, y)`` chunks of the file; the first bad cell or line (one longer than
    ``max_line_bytes`` too) raises DataError."""
    part = _part_or_error(path, max_line_bytes)
    needed = [*features, target]
    if part.fmt.kind == "parquet":
        _check_parquet_types(part, needed)
    k = len(features)
    rows = 0
    try:
        for chunk in _chunks(part, needed, chunk_rows):
            clean = _Clean(chunk)
            if clean.others:
                chunk_row, reason, _column, _text = clean.others[0]
                line, _ = chunk.locate(chunk_row)
                raise DataError(f"{path}: line {line}: {reason}")
            if clean.bad.size:
                i = int(clean.bad[0])
                j = int(np.flatnonzero(~np.isfinite(chunk.X[i]))[0])
                name = needed[j]
                raise DataError(
                    f"{path}: column {name!r}, {clean.where(i, rows)}: "
                    f"{_problem(clean.value(i, name))}"
                )
            rows += clean.n
            yield clean.X[:, :k], clean.X[:, k]
    except BatchError as exc:
        raise DataError(str(exc)) from exc


def _part_or_error(path: Path, max_line_bytes: int) -> Part:
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        return part_of(path, max_line_bytes)
    except BatchError as exc:
        raise DataError(str(exc)) from exc


def _check_parquet_types(part: Part, needed: list[str]) -> None:
    pa = import_pyarrow()
    types = pa.types
    for name in needed:
        t = part.types[name]
        number = types.is_integer(t) or types.is_floating(t) or types.is_decimal(t)
        if not (number or types.is_string(t) or types.is_large_string(t)):
            raise CellError(
                f"{part.path}: column {name!r} has type {t}, expected a number type", "type", name
            )
