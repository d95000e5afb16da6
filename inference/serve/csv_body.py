"""A CSV request body (MLflow's ``text/csv``) read into an (n, k) matrix, in bounded memory.

The body is decoded about 1 MiB at a time, cut after a line break, and handed to
Python's ``csv`` module line by line; values go into float64 blocks of
:data:`BLOCK_ROWS` rows, never into a list of Python floats per row. Limits, each
a 4xx naming the line:

- more than ``max_rows`` data rows: 413, known before parsing unless a quote stands
  where no quoted field opens or closes (:func:`inference.serve.limits.csv_rows_at_least`),
  else as soon as row ``max_rows + 1`` is read;
- a record (one line, or several joined by a quoted line break) longer than
  :data:`MAX_RECORD` (1 MiB): 413, before the ``csv`` module builds its fields;
- a field longer than the ``csv`` module's limit (128 KiB), a NUL, or text that is
  not UTF-8: 400.

Columns the model does not read are ignored, as ``mlflow models serve`` ignores
them (``strict``: refused); an empty cell in a feature column is a missing value,
named by line and column. A model fitted on raw columns (a design) gets its columns
as they are, text for its factors (:func:`parse_csv_columns`): a list per column
rather than float64 blocks, within the same limits.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import numpy as np

from inference.design import Design
from inference.errors import InputError
from inference.inputs import as_matrix
from inference.serve.design_body import RawColumns
from inference.serve.limits import csv_rows_at_least
from inference.serve.responses import ApiError

T = TypeVar("T")

__all__ = ["BLOCK_ROWS", "MAX_RECORD", "parse_csv"]

#: the longest record (the header too), in characters (and in bytes where one line is
#: longer than a chunk): what the fields of one row may cost
MAX_RECORD = 1 << 20
#: rows per float64 block
BLOCK_ROWS = 16_384
_CHUNK = 1 << 20
STYLE = "mlflow"


class _Lines:
    """The lines of a UTF-8 body (BOM dropped), decoded a chunk at a time.

    ``record`` counts the bytes handed out since the reader last finished a row
    (the caller resets it); a record over :data:`MAX_RECORD` stops the read.
    """

    def __init__(self, body: bytes | bytearray) -> None:
        self.body = body
        self.line = 0  # lines handed out
        self.record = 0

    def _too_long(self) -> ApiError:
        return ApiError(
            413,
            f"CSV line {self.line + 1}: a record longer than 1 MiB ({MAX_RECORD:,} "
            "characters), above the limit",
            style=STYLE,
        )

    def __iter__(self) -> Iterator[str]:
        body, n, pos = self.body, len(self.body), 0
        decoder = codecs.getincrementaldecoder("utf-8-sig")()
        while pos < n:
            end = min(pos + _CHUNK, n)
            if end < n:
                cut = body.rfind(b"\n", pos, end)
                if cut < 0:  # one line longer than a chunk: it must end within a record
                    cut = body.find(b"\n", end, pos + MAX_RECORD + 1)
                    if cut < 0:
                        raise self._too_long()
                end = cut + 1
            try:
                text = decoder.decode(body[pos:end], final=end == n)
            except UnicodeDecodeError as exc:
                at = self.line + body.count(b"\n", pos, pos + exc.start) + 1
                raise ApiError(
                    400, f"CSV line {at}: the body is not UTF-8 ({exc.reason})", style=STYLE
                ) from None
            for line in io.StringIO(text, newline=""):
                self.line += 1
                self.record += len(line)
                if self.record > MAX_RECORD:
                    raise self._too_long()
                yield line
            pos = end


def _header(
    rows: Iterator[list[str]], features: Sequence[str], strict: bool
) -> tuple[list[str], list[int]]:
    header = next(rows, None)
    if not header:
        raise ApiError(
            400, "the CSV body is empty; expected a header row naming the columns", style=STYLE
        )
    names = [h.strip() for h in header]
    missing = [f for f in features if f not in names]
    unknown = [n for n in names if n not in features] if strict else []
    if missing or unknown:
        what = " and ".join(
            part
            for part in (
                f"missing {missing}" if missing else "",
                f"unknown {unknown} (--strict-columns)" if unknown else "",
            )
            if part
        )
        raise InputError(f"CSV header: {what}; the model expects {list(features)}")
    return names, [names.index(f) for f in features]


def _parse(body: bytes | bytearray, max_rows: int, read: Callable[[_Lines], T]) -> T:
    """``read`` of the body's lines: 413 first when a count of its newlines already
    passes ``max_rows``, 400 naming the line for what the csv module refuses."""
    at_least = csv_rows_at_least(body)
    if at_least is not None and at_least > max_rows:
        raise ApiError(
            413,
            f"the CSV body has {at_least} rows or more, above the limit of {max_rows}",
            style=STYLE,
        )
    lines = _Lines(body)
    try:
        return read(lines)
    except csv.Error as exc:
        raise ApiError(400, f"CSV line {lines.line}: {exc}", style=STYLE) from None


def _check_row(row: list[str], names: list[str], line: int, count: int, max_rows: int) -> None:
    """413 when ``count`` rows were read already and the limit is ``max_rows``; an
    InputError naming the line when ``row`` has not as many cells as the header."""
    if count == max_rows:
        message = f"the CSV body has over {max_rows} rows, above the limit of {max_rows}"
        raise ApiError(413, message, style=STYLE)
    if len(row) != len(names):
        raise InputError(f"CSV line {line}: {len(row)} cells, the header has {len(names)}")


def _read(lines: _Lines, features: Sequence[str], max_rows: int, strict: bool) -> list[np.ndarray]:
    """The data rows as float64 blocks; errors name the line."""
    rows = csv.reader(lines)
    names, index = _header(rows, features, strict)
    lines.record = 0
    k = len(features)
    blocks: list[np.ndarray] = []
    flat: list[float] = []
    count = 0
    for row in rows:
        lines.record = 0
        if not row:
            continue
        _check_row(row, names, rows.line_num, count, max_rows)
        for j in index:
            cell = row[j].strip()
            try:
                flat.append(float(cell))
            except ValueError:
                what = (
                    "a missing value (an empty cell)" if not cell else f"{cell!r} is not a number"
                )
                raise InputError(f"CSV line {rows.line_num}, column {names[j]!r}: {what}") from None
        count += 1
        if len(flat) >= BLOCK_ROWS * k:
            blocks.append(np.array(flat, dtype=np.float64).reshape(-1, k))
            flat.clear()
    blocks.append(np.array(flat, dtype=np.float64).reshape(-1, k))
    return blocks


def _read_text(lines: _Lines, design: Design, max_rows: int, strict: bool) -> dict[str, list[Any]]:
    """The cells of a design model's columns: numbers as floats (an empty cell NaN, a
    missing value), a factor's as text (an empty cell None); errors name the line."""
    rows = csv.reader(lines)
    names, index = _header(rows, design.input_names, strict)
    lines.record = 0
    numeric = [design.input(n).kind == "numeric" for n in design.input_names]
    cells: dict[str, list[Any]] = {n: [] for n in design.input_names}
    columns = [cells[n] for n in design.input_names]
    count = 0
    for row in rows:
        lines.record = 0
        if not row:
            continue
        _check_row(row, names, rows.line_num, count, max_rows)
        for j, out, is_number in zip(index, columns, numeric, strict=True):
            cell = row[j].strip() if is_number else row[j]
            if not is_number:
                out.append(cell if cell.strip() else None)
                continue
            try:
                out.append(float(cell) if cell else np.nan)
            except ValueError:
                raise InputError(
                    f"CSV line {rows.line_num}, column {names[j]!r}: {cell!r} is not a number"
                ) from None
        count += 1
    return cells


def parse_csv_columns(
    body: bytes | bytearray, design: Design, max_rows: int, *, strict: bool = False
) -> RawColumns:
    """The raw columns of a CSV body for a model fitted on raw columns (a design):
    text for its factors, numbers for its numeric columns, matched by name; an empty
    cell is a missing value (the Predictor names its row: the line minus the header)."""
    cells = _parse(body, max_rows, lambda lines: _read_text(lines, design, max_rows, strict))
    rows = len(next(iter(cells.values()), []))
    columns = {
        n: np.array(v, dtype=np.float64 if design.input(n).kind == "numeric" else object)
        for n, v in cells.items()
    }
    return RawColumns(columns, rows)


def parse_csv(
    body: bytes | bytearray,
    features: Sequence[str],
    dtype: np.dtype,
    max_rows: int,
    *,
    strict: bool = False,
) -> np.ndarray:
    """The (n, k) matrix of a CSV body with a header row (columns matched by name; the
    others ignored, or with ``strict`` refused)."""
    blocks = _parse(body, max_rows, lambda lines: _read(lines, features, max_rows, strict))
    X = blocks[0] if len(blocks) == 1 else np.concatenate(blocks)
    return as_matrix(X, features, dtype)
