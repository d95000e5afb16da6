"""Load training tables from CSV, TSV and Parquet files.

Every loader returns a :class:`~training.data.tables.Table`; anything else raises
:class:`~training.errors.DataError` naming the file, the column and the row
(1-based data row; for text files also the 1-based line, header = line 1).

Files are read by pyarrow as typed float64 columns, in parallel, through the I/O
layer that ``linreg predict`` reads with too (:mod:`training.data.reader`); a bad
cell is located only when that fails. The last resort, for files that are not one
record per line, reads every cell as text (:func:`inference.io.read_text_frame`) and
words each fault. :func:`iter_table_chunks` gives a file's rows in chunks for fits
larger than memory (:mod:`training.chunked.streaming`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from inference.errors import BatchError
from inference.io import DEFAULT_MAX_LINE_BYTES, check_max_line_bytes, read_frame, read_text_frame
from training.data.reader import cell_kind, format_of, header_columns, load_fast, stream_chunks
from training.data.tables import Table, validate_xy, wanted_columns
from training.errors import CellError, DataError

if TYPE_CHECKING:  # pandas is imported only to locate faults in odd files
    import pandas as pd

__all__ = ["iter_table_chunks", "load_frame", "load_table", "table_columns"]


def _numeric_column(frame: pd.DataFrame, column: str, path: Path, first_line: int) -> np.ndarray:
    import pandas as pd

    raw = frame[column]
    if raw.dtype == object or pd.api.types.is_string_dtype(raw):
        text = raw.astype(str).str.strip()
        values = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64)
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            i = int(bad[0])
            cell = text.iloc[i]
            what = "an empty cell" if cell == "" else f"the value {cell!r}"
            kind = (
                "not a finite number" if cell.lower() in {"nan", "inf", "-inf"} else "not numeric"
            )
            raise CellError(
                f"{path}: column {column!r}, row {i + 1}{_line(i, first_line)}: "
                f"{what} is {kind} ({bad.size} bad cell(s) in this column)",
                cell_kind(cell),
                column,
            )
        return values
    if pd.api.types.is_bool_dtype(raw) or not pd.api.types.is_numeric_dtype(raw):
        raise CellError(
            f"{path}: column {column!r} has type {raw.dtype}, expected a number type",
            "type",
            column,
        )
    values = raw.to_numpy(dtype=np.float64, na_value=np.nan)
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        i = int(bad[0])
        raise CellError(
            f"{path}: column {column!r}, row {i + 1}{_line(i, first_line)}: "
            f"{values[i]} is not a finite number ({bad.size} bad cell(s) in this column)",
            "missing" if bool(raw.isna().iloc[i]) else "nonfinite",
            column,
        )
    return values


def _line(row_index: int, first_line: int) -> str:
    return f" (line {row_index + first_line})" if first_line else ""


def load_table(
    path: str | Path,
    *,
    target: str,
    features: Sequence[str] | None = None,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> Table:
    """Load ``features`` and ``target`` columns from a CSV, TSV or Parquet file.

    ``features=None`` takes every column but the target. Raises :class:`DataError`
    for a missing file or column, a non-numeric, empty, NaN or infinite cell, an
    empty file, fewer rows than the model needs, or a CSV or TSV line longer than
    ``max_line_bytes`` (16 MiB by default; checked before any parser reads the line,
    and the error names the line).

    The columns are read by pyarrow as typed float64, in parallel (the reader of
    ``linreg predict``). Only when that fails is the file read again to locate the
    bad cell: in chunks, by the batch scoring reader, or for a file that is not one
    record per line (and for Parquet) as text with pandas, which words every other
    fault.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    limit = check_max_line_bytes(max_line_bytes)
    fast = load_fast(path, target, features, limit)
    if fast is not None:
        return fast
    return _load_slow(path, target, features, limit)


def _load_slow(
    path: Path, target: str, features: Sequence[str] | None, max_line_bytes: int
) -> Table:
    """The text reader: every cell read as text with pandas, then converted."""
    frame, first_line = _read_frame(path, max_line_bytes)
    columns = [str(c) for c in frame.columns]
    frame.columns = columns
    wanted = wanted_columns(path, columns, target, features)
    if len(frame) == 0:
        raise DataError(f"{path}: the file has a header but no data rows")
    X = np.column_stack([_numeric_column(frame, c, path, first_line) for c in wanted])
    y = _numeric_column(frame, target, path, first_line)
    validate_xy(X, y, source=str(path))
    return Table(X=X, y=y, features=wanted, target=target, source=str(path))


def _read_frame(path: Path, max_line_bytes: int) -> tuple[pd.DataFrame, int]:
    """Every cell as text (Parquet: typed), and the line of the first data row."""
    try:
        return read_text_frame(path, format_of(path), max_line_bytes)
    except BatchError as exc:
        raise DataError(str(exc)) from exc


def table_columns(
    path: str | Path,
    *,
    target: str,
    features: Sequence[str] | None = None,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> list[str]:
    """The feature columns of a file's header (all but the target when ``features`` is
    None), checked as :func:`load_table` checks them; reads no data."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    limit = check_max_line_bytes(max_line_bytes)
    return wanted_columns(path, header_columns(path, limit), target, features)


def iter_table_chunks(
    path: str | Path,
    *,
    target: str,
    features: Sequence[str],
    chunk_rows: int | None = None,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The rows of a file in chunks, ``(X (m, k), y (m,))`` float64, read by the batch
    scoring reader (CSV blocks parsed on threads, Parquet batches read ahead).

    The first bad cell raises :class:`DataError` naming the file, the column, the row
    and (text files) the line, as :func:`load_table` does (without the count of bad
    cells, which would need the rest of the file); so does a line longer than
    ``max_line_bytes``.
    """
    limit = check_max_line_bytes(max_line_bytes)
    return stream_chunks(Path(path), target, list(features), chunk_rows, limit)


def load_frame(
    path: str | Path,
    *,
    columns: Sequence[str] | None = None,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> Any:
    """A CSV, TSV or Parquet file's ``columns`` (default: all) as a pandas DataFrame,
    typed by pyarrow (numbers, booleans, text; an empty cell is a missing value), for a
    table with text columns or gaps (:func:`training.pipeline.train` fits its design).
    Raises :class:`DataError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        frame = read_frame(path, format_of(path), columns, max_line_bytes)
    except BatchError as exc:
        raise DataError(str(exc)) from exc
    if len(frame) == 0:
        raise DataError(f"{path}: the file has a header but no data rows")
    return frame
