"""Typed, parallel reading of training files with pyarrow, and the location of bad cells.

:func:`load_fast` reads the needed columns of a CSV, TSV or Parquet file as float64
with pyarrow (CSV: ``pyarrow.csv.read_csv`` on all cores; Parquet: the columns'
own types). When that fails (a cell that is not a number, a missing value, NaN or
inf, a line with too many fields), the file is read again in chunks by the batch
scoring reader of ``linreg predict`` (:mod:`inference.batch`), which keeps each
chunk's text, to name the first bad cell of the first bad column with its row, line
and value, and the count of bad cells in that column, as the text reader of
:mod:`training.data` words it. Files that reader cannot read as one record per line
(a line break inside quotes, bare carriage returns), damaged Parquet files and
Parquet columns of other types go back to that text reader (``None``), which words
every other fault.

:func:`stream_chunks` yields the rows of a file in chunks for the streamed fit, with
the same messages for the first bad cell.
"""

from __future__ import annotations

import codecs
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from inference.batch.arrow import import_pyarrow, to_numpy
from inference.batch.csv_reader import inspect_csv, read_csv
from inference.batch.formats import FileFormat, Part
from inference.batch.parquet_reader import inspect_parquet, read_parquet
from inference.batch.plan import Plan
from inference.errors import BatchError
from training.data import DataError, Table, _wanted_columns, validate_xy

__all__ = ["header_columns", "load_fast", "stream_chunks"]

_TEXT = {".csv": ",", ".txt": ",", ".tsv": "\t", ".tab": "\t"}
_PARQUET = {".parquet", ".pq"}


def _format(path: Path) -> FileFormat:
    suffix = path.suffix.lower()
    if suffix in _PARQUET:
        return FileFormat("parquet")
    if suffix in _TEXT:
        return FileFormat("csv", _TEXT[suffix])
    raise DataError(f"{path}: unknown file type {suffix!r}; expected .csv, .tsv or .parquet")


def _part(path: Path) -> Part:
    """The file's header (Parquet: schema); BatchError when the batch reader refuses it."""
    fmt = _format(path)
    if fmt.kind == "parquet":
        return inspect_parquet(path, fmt)
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty (no header, no rows)")
    return inspect_csv(path, fmt)


def header_columns(path: Path) -> list[str]:
    """The column names of the file (DataError when it has no readable header)."""
    try:
        return list(_part(path).columns)
    except BatchError as exc:
        raise DataError(str(exc)) from exc


def _workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def _plan(needed: list[str]) -> Plan:
    return Plan(needed, [], list(needed), [], None, np.dtype(np.float64))


# --- the fast path --------------------------------------------------------------------------


def load_fast(path: Path, target: str, features: Any) -> Table | None:
    """The table read typed and in parallel; None when the text reader must decide."""
    try:
        part = _part(path)
    except BatchError:
        return None
    wanted = _wanted_columns(path, list(part.columns), target, features)
    needed = [*wanted, target]
    if part.fmt.kind == "parquet":
        arrays = _read_parquet(part, wanted, target)
    elif not _is_utf8(path):
        return None  # the text reader names the encoding error
    else:
        arrays = _fill(_read_csv(part, needed), wanted, target)
        if arrays is None:
            arrays = _locate_csv(part, needed)
    if arrays is None:
        return None
    X, y = arrays
    if len(y) == 0:
        raise DataError(f"{path}: the file has a header but no data rows")
    validate_xy(X, y, source=str(path))
    return Table(X=X, y=y, features=wanted, target=target, source=str(path))


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


def _is_utf8(path: Path, block: int = 8 << 20) -> bool:
    """Whether the whole file is UTF-8, columns not read included (the text reader
    decodes every byte; pyarrow decodes only the columns it converts). ASCII blocks,
    the usual case, are checked at memory speed without decoding."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            if chunk.isascii() and not decoder.getstate()[0]:
                continue
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError:
                return False
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _read_csv(part: Part, needed: list[str]) -> Any:
    """An Arrow table of the needed columns read as float64 by ``pyarrow.csv`` on all
    cores, or None when a value does not parse (or a line has too many fields)."""
    pa = import_pyarrow()
    import pyarrow.csv as pacsv

    try:
        table = pacsv.read_csv(
            str(part.path),
            read_options=pacsv.ReadOptions(use_threads=True, block_size=4 << 20),
            parse_options=pacsv.ParseOptions(delimiter=part.fmt.delimiter),
            convert_options=pacsv.ConvertOptions(
                include_columns=needed,
                column_types={name: pa.float64() for name in needed},
                null_values=[""],
                strings_can_be_null=False,
            ),
        )
    except (pa.ArrowException, OSError, ValueError):
        return None
    return table


def _read_parquet(
    part: Part, wanted: list[str], target: str
) -> tuple[np.ndarray, np.ndarray] | None:
    """``X`` and ``y`` of a Parquet file, filled batch by batch (the file's row count is
    in its metadata, so only the matrix and one batch are in memory); None (the text
    reader words the fault) for a column not of a number type, a missing value, NaN or
    inf, or a file that does not read."""
    pa = import_pyarrow()
    import pyarrow.parquet as pq

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
        pf = pq.ParquetFile(str(part.path), buffer_size=1 << 20, pre_buffer=False)
        try:
            for batch in pf.iter_batches(batch_size=1 << 16, columns=needed, use_threads=True):
                filled = _fill(pa.Table.from_batches([batch]), wanted, target)
                if filled is None or at + batch.num_rows > n:
                    return None
                X[at : at + batch.num_rows], y[at : at + batch.num_rows] = filled
                at += batch.num_rows
        finally:
            pf.close()
    except (pa.ArrowException, OSError):
        return None
    return (X, y) if at == n else None


# --- locating bad cells --------------------------------------------------------------------


def _cell_problem(text: str) -> str:
    """How the text reader words a bad cell: ``"<what> is <kind>"``."""
    cell = text.strip()
    what = "an empty cell" if cell == "" else f"the value {cell!r}"
    kind = "not a finite number" if cell.lower() in {"nan", "inf", "-inf"} else "not numeric"
    return f"{what} is {kind}"


def _chunks(part: Part, needed: list[str], chunk_rows: int | None) -> Iterator[Any]:
    plan = _plan(needed)
    if part.fmt.kind == "parquet":
        return read_parquet(part, plan, chunk_rows)
    return read_csv(part, plan, chunk_rows, _workers())


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
    first: dict[str, tuple[int, str, str]] = {}  # column -> (_, where, problem)
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
                        first[name] = (0, where, _problem(clean.value(int(i), name)))
            if not first:
                parts.append(clean.X)
            rows += clean.n
    except BatchError:
        return None
    for name in needed:
        if name in first:
            _, where, problem = first[name]
            raise DataError(
                f"{part.path}: column {name!r}, {where}: {problem} "
                f"({counts[name]} bad cell(s) in this column)"
            )
    M = np.concatenate(parts) if parts else np.empty((0, len(needed)))
    return np.ascontiguousarray(M[:, :-1]), np.ascontiguousarray(M[:, -1])


# --- streaming ------------------------------------------------------------------------------


def stream_chunks(
    path: Path, target: str, features: list[str], chunk_rows: int | None
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(X, y)`` chunks of the file; the first bad cell or line raises DataError."""
    part = _part_or_error(path)
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


def _part_or_error(path: Path) -> Part:
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        return _part(path)
    except BatchError as exc:
        raise DataError(str(exc)) from exc


def _check_parquet_types(part: Part, needed: list[str]) -> None:
    pa = import_pyarrow()
    types = pa.types
    for name in needed:
        t = part.types[name]
        number = types.is_integer(t) or types.is_floating(t) or types.is_decimal(t)
        if not (number or types.is_string(t) or types.is_large_string(t)):
            raise DataError(f"{part.path}: column {name!r} has type {t}, expected a number type")
