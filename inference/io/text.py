"""Every cell of a table as text, read by pandas: the slow reader that words faults.

:func:`read_text_frame` is for callers that must name a bad cell of a file the typed
readers refuse (:mod:`training.data`): a line break inside quotes, bare carriage
returns, or Parquet columns of another type. Lines longer than the readers' limit are
refused before pandas sees them, as by the other readers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from inference.errors import BatchError, LineTooLongError
from inference.io.formats import FileFormat, Part, open_input
from inference.io.limits import DEFAULT_MAX_LINE_BYTES, LineLengths, check_max_line_bytes

__all__ = ["read_text_frame"]


def read_text_frame(
    path: str | Path, fmt: FileFormat, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
) -> tuple[Any, int]:
    """The file as a pandas DataFrame and the line number of its first data row (0
    for Parquet, which has no lines). CSV and TSV cells are strings, exactly as
    written (no NA values); Parquet columns keep their types.

    Raises :class:`~inference.errors.BatchError` for an empty file or one that cannot
    be parsed, and :class:`~inference.errors.LineTooLongError` for a line longer than
    ``max_line_bytes``: the text, decompressed, is checked in one pass (1 MiB at a
    time) before pandas reads it.
    """
    import pandas as pd

    path = Path(path)
    if fmt.kind == "csv":
        _check_lines(path, fmt, check_max_line_bytes(max_line_bytes))
    if fmt.kind == "parquet":
        import pyarrow.parquet as pq

        try:
            return pq.read_table(path).to_pandas(), 0
        except Exception as exc:  # pyarrow raises several types for bad files
            raise BatchError(f"not a readable Parquet file ({exc})", file=str(path)) from exc
    try:
        # header=None: the header row sets the field count, so a row with more fields
        # is an error (with a header, pandas would silently make the first column an
        # index when every row has one field more) and names are not renamed ("a.1").
        frame = pd.read_csv(
            path,
            sep=fmt.delimiter,
            dtype=str,
            keep_default_na=False,
            skip_blank_lines=True,
            header=None,
            compression=fmt.compression,
        )
    except pd.errors.EmptyDataError as exc:
        raise BatchError("the file is empty (no header, no rows)", file=str(path)) from exc
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        suffix = path.suffix.lower()
        raise BatchError(f"cannot be parsed as {suffix} text ({exc})", file=str(path)) from exc
    header = frame.iloc[0].tolist()
    frame = frame.iloc[1:].reset_index(drop=True)
    frame.columns = header
    return frame, 2


def _check_lines(path: Path, fmt: FileFormat, limit: int) -> None:
    """LineTooLongError at the file's first line longer than ``limit`` bytes."""
    lengths = LineLengths(limit)
    with open_input(Part(path, fmt, [])) as f:
        while chunk := f.read(1 << 20):
            line = lengths.feed(chunk)
            if line is not None:
                raise LineTooLongError(file=str(path), line=line, limit=limit)
