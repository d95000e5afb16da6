"""Bad rows: found in a chunk, described (file, line or row, column, reason) and written.

A bad row is a value that is not a number, a missing value (an empty field in CSV,
a null in Parquet), NaN or inf, or a line with too few or too many fields.
``bad_rows="error"`` stops the job at the first one (:meth:`BadRow.error`);
otherwise they are dropped and counted, and with a path written to a CSV file with
the columns of :data:`BAD_ROWS_COLUMNS`.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from inference.errors import BatchError
from inference.io.chunks import Chunk, shown

__all__ = ["BAD_ROWS_COLUMNS", "BadRow", "BadRowsFile", "find_bad"]

#: columns of the bad-rows file written with ``bad_rows=PATH``
BAD_ROWS_COLUMNS = ("file", "line", "row", "column", "error", "record")


@dataclass
class BadRow:
    """One bad row: where it is (``line`` None for Parquet), why, and its raw record."""

    file: str
    line: int | None
    row: int
    column: str | None
    reason: str
    record: str

    def error(self) -> BatchError:
        """The error that stops a job with ``bad_rows="error"``."""
        return BatchError(
            self.reason, file=self.file, line=self.line, row=self.row, column=self.column
        )


def _describe_row(chunk: Chunk, i: int, chunk_row: int, dtype: np.dtype) -> tuple[str | None, str]:
    """(column, reason) for table row ``i`` whose prediction is not finite."""
    if i in chunk.failures:
        return chunk.failures[i]
    for j, name in enumerate(chunk.names):
        # (a chunk of the C fast path has no arrays: it holds no missing value)
        if chunk.feature_arrays and not chunk.feature_arrays[j][i].is_valid:
            if chunk.part.fmt.kind == "parquet":
                return name, "a missing value (null)"
            return name, "missing value (an empty field)"
        if not np.isfinite(chunk.X[i, j]):
            written = chunk.value(i, chunk_row, name)
            try:
                extra = f" (beyond the range of {dtype})" if np.isfinite(float(written)) else ""
            except (TypeError, ValueError):
                extra = ""
            return name, f"{shown(written)} is not a finite number{extra}"
    return None, f"the prediction overflowed {dtype} although every input is finite"


def find_bad(chunk: Chunk, ok: np.ndarray, dtype: np.dtype) -> tuple[list[BadRow], np.ndarray]:
    """Bad rows of a chunk in file order, and the mask of rows to drop silently (blank lines).

    ``ok`` : bool array of shape (n,), False where the prediction is not finite.
    """
    bad: list[BadRow] = []
    blank = np.zeros(chunk.n, dtype=bool)
    rows = chunk.chunk_rows()
    for index in np.flatnonzero(~ok):
        i = int(index)
        chunk_row = int(rows[i])
        if chunk.is_blank(chunk_row):
            blank[i] = True
            continue
        column, reason = _describe_row(chunk, i, chunk_row, dtype)
        line, row = chunk.locate(chunk_row)
        bad.append(BadRow(chunk.part.name, line, row, column, reason, chunk.record(i, chunk_row)))
    for chunk_row, reason, column, text in chunk.rejected():
        line, row = chunk.locate(chunk_row)
        bad.append(BadRow(chunk.part.name, line, row, column, reason, text))
    bad.sort(key=lambda b: b.row)
    return bad, blank


class BadRowsFile:
    """The bad-rows CSV file: a header of :data:`BAD_ROWS_COLUMNS`, then a line a row."""

    def __init__(self, path: Path) -> None:
        self._file = open(path, "w", encoding="utf-8", newline="")  # noqa: SIM115
        self._writer = csv.writer(self._file, lineterminator="\n")
        self._writer.writerow(BAD_ROWS_COLUMNS)

    def write(self, rows: Iterable[BadRow]) -> None:
        for b in rows:
            line = "" if b.line is None else b.line
            self._writer.writerow([b.file, line, b.row, b.column or "", b.reason, b.record])

    def close(self) -> None:
        self._file.close()
