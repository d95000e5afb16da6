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
        columns = _read_parquet(part, needed)
    else:
        columns = _read_csv(part, needed)
        if columns is None:
            columns = _locate_csv(part, needed)
    if columns is None:
        return None
    n = len(columns[target])
    if n == 0:
        raise DataError(f"{path}: the file has a header but no data rows")
    X = np.empty((n, len(wanted)))
    for j, name in enumerate(wanted):
        X[:, j] = columns.pop(name)
    y = columns.pop(target)
    validate_xy(X, y, source=str(path))
    return Table(X=X, y=y, features=wanted, target=target, source=str(path))


def _finite(values: np.ndarray, nulls: int) -> bool:
    return nulls == 0 and bool(np.isfinite(values).all())


def _read_csv(part: Part, needed: list[str]) -> dict[str, np.ndarray] | None:
    """The needed columns read as float64 by ``pyarrow.csv`` on all cores, or None."""
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
    out: dict[str, np.ndarray] = {}
    for name in needed:
        column = table.column(name)
        values = to_numpy(column.combine_chunks() if column.num_chunks != 1 else column.chunk(0))
        table = table.drop_columns([name])  # release each column once copied
        if not _finite(values, column.null_count):
            return None
        out[name] = np.array(values, dtype=np.float64)
    return out


def _read_parquet(part: Part, needed: list[str]) -> dict[str, np.ndarray] | None:
    """The needed columns of a Parquet file as float64, or None (the text reader words
    the fault: a column of another type, a missing value, NaN or inf)."""
    pa = import_pyarrow()
    import pyarrow.parquet as pq

    types = pa.types
    for name in needed:
        t = part.types[name]
        if not (types.is_integer(t) or types.is_floating(t) or types.is_decimal(t)):
            return None
    try:
        table = pq.read_table(str(part.path), columns=needed, use_threads=True)
    except (pa.ArrowException, OSError):
        return None
    out: dict[str, np.ndarray] = {}
    for name in needed:
        column = table.column(name)
        if column.null_count:
            return None
        values = to_numpy(column.cast(pa.float64()).combine_chunks())
        if not _finite(values, 0):
            return None
        out[name] = np.array(values, dtype=np.float64)
    return out


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


def _locate_csv(part: Part, needed: list[str]) -> dict[str, np.ndarray] | None:
    """Read the file in chunks, naming the first bad cell of the first bad column (in
    ``needed`` order) with the count of bad cells in it; the columns when every cell is
    good after all (numbers with spaces around them). None for lines with a wrong
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
    X = np.concatenate(parts) if parts else np.empty((0, len(needed)))
    return {name: np.ascontiguousarray(X[:, j]) for j, name in enumerate(needed)}


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
