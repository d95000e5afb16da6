"""The limits on a request's rows: checked on the raw body, then on the parsed lists.

Parsing JSON builds Python objects: a number of a few bytes becomes a float of 24
bytes and a pointer of 8, a row ``[1,2,3]`` a list of 80 bytes, so a body of 63 MiB
grew to 1.3 GiB before its row count could be checked. These checks read the raw
bytes instead, in blocks of 1 MiB (numpy and ``bytes.count``, no Python objects per
value), and refuse a body holding more than ``max_rows`` rows can hold:

- JSON (:func:`json_counts`): the commas, colons, ``[`` and ``{`` outside strings
  give exactly, for valid JSON, the number of values (``1 + commas + containers``),
  of object keys (the colons) and of arrays and objects. Every request format takes
  at most ``k + 2`` values (the row's array or object, its ``k`` numbers, and an
  index entry, which pandas' split orientation adds), ``k`` keys and one array or
  object per row of ``k`` features (:func:`check_json`), plus :data:`SLACK` for the
  wrapper, parameters and names. Invalid JSON is counted as if it were valid; orjson
  refuses it afterwards.
- CSV (:func:`csv_rows_at_least`): every line break that ends a non-blank line
  outside quoted fields ends one row, so their count is a lower bound on the rows.
  Quoted fields are found by the parity of the quotes before, which is exact when
  every quote opens a field, closes one or is half of an escaped ``""``; a body with
  a quote elsewhere (``ab"c``) has its rows counted while parsed
  (:mod:`inference.serve.csv_body`).

After parsing, :func:`rows_in` counts the rows of the parsed lists before an array
is built, and :func:`check_rows` is the 413 itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from inference.serve.responses import ApiError

__all__ = [
    "BLOCK",
    "SLACK",
    "JsonCounts",
    "check_json",
    "check_rows",
    "csv_rows_at_least",
    "json_counts",
    "rows_in",
]

#: bytes read at a time (what the scan's temporary arrays hold)
BLOCK = 1 << 20
#: values, keys and containers allowed beyond those of ``max_rows`` rows, per
#: request (wrapper keys, names, shapes, parameters), plus this many per feature
#: (V2 requests may carry one tensor per feature)
SLACK = 1024
_QUOTE, _BACKSLASH = 0x22, 0x5C
_COUNTED = (b",", b":", b"[", b"{")
_LINE_END = np.zeros(256, dtype=bool)
_LINE_END[[0x0A, 0x0D]] = True
#: what may stand before a quote that opens a CSV field, or after one that closes it
_FIELD_EDGE = np.zeros(256, dtype=bool)
_FIELD_EDGE[[0x0A, 0x0D, 0x2C, 0x22]] = True


@dataclass
class JsonCounts:
    """Structural characters outside strings, and the state at the end of the scan."""

    commas: int = 0
    colons: int = 0
    containers: int = 0
    in_string: bool = False
    #: backslashes ending the last block, inside a string (an odd run escapes a quote)
    backslashes: int = 0

    @property
    def values(self) -> int:
        """Values (not keys) a valid document holds: the root, one per comma, and
        the first value of every array or object (an upper bound when some are empty)."""
        return 1 + self.commas + self.containers


def _trailing_backslashes(buf: bytes | bytearray, start: int, end: int) -> int:
    tail = bytes(buf[max(start, end - 4096) : end])
    run = len(tail) - len(tail.rstrip(b"\\"))
    if run == len(tail) and end - run > start:  # a longer run: look at the whole block
        block = bytes(buf[start:end])
        run = len(block) - len(block.rstrip(b"\\"))
    return run


def _unescaped_quotes(a: np.ndarray, carry: int) -> np.ndarray:
    """Positions in block ``a`` of the quotes not escaped by an odd run of backslashes
    (``carry`` backslashes end the block before)."""
    quotes = np.flatnonzero(a == _QUOTE)
    if quotes.size == 0 or (carry == 0 and not (a == _BACKSLASH).any()):
        return quotes
    index = np.arange(a.size)
    last_other = np.maximum.accumulate(np.where(a == _BACKSLASH, -1, index))
    before = np.where(quotes > 0, last_other[np.maximum(quotes - 1, 0)], -1)
    run = quotes - 1 - before  # backslashes right before each quote, within the block
    run = np.where(before < 0, quotes + carry, run)  # a run reaching back to the block's start
    return quotes[run % 2 == 0]  # type: ignore[no-any-return]


def _scan_block(buf: bytes | bytearray, start: int, end: int, c: JsonCounts) -> None:
    if buf.count(b'"', start, end) == 0:
        if not c.in_string:
            c.commas += buf.count(b",", start, end)
            c.colons += buf.count(b":", start, end)
            c.containers += buf.count(b"[", start, end) + buf.count(b"{", start, end)
        run = _trailing_backslashes(buf, start, end)
        c.backslashes = (c.backslashes + run) if run == end - start else run
        return
    a = np.frombuffer(buf, dtype=np.uint8, count=end - start, offset=start)
    quotes = _unescaped_quotes(a, c.backslashes if c.in_string else 0)
    # the block in runs between quotes; a run that starts with an opening quote is a string
    bounds = np.concatenate(([0], quotes, [a.size]))
    out = np.zeros(bounds.size - 1, dtype=bool)
    out[1 if c.in_string else 0 :: 2] = True
    outside = a[np.repeat(out, np.diff(bounds))].tobytes()
    c.commas += outside.count(b",")
    c.colons += outside.count(b":")
    c.containers += outside.count(b"[") + outside.count(b"{")
    c.in_string = c.in_string ^ bool(quotes.size % 2)
    c.backslashes = _trailing_backslashes(buf, start, end)


def json_counts(
    buf: bytes | bytearray,
    start: int = 0,
    end: int | None = None,
    *,
    most: tuple[int, int, int] | None = None,
) -> JsonCounts:
    """Count the structure of the JSON text ``buf[start:end]`` without parsing it.

    With ``most`` (values, keys, containers), the scan stops at the first block after
    which one of the counts is above its bound (the counts are then partial).
    """
    end = len(buf) if end is None else end
    counts = JsonCounts()
    for s in range(start, end, BLOCK):
        _scan_block(buf, s, min(s + BLOCK, end), counts)
        if most is not None and (
            counts.values > most[0] or counts.colons > most[1] or counts.containers > most[2]
        ):
            break
    return counts


def check_json(
    buf: bytes | bytearray, max_rows: int, k: int, *, end: int | None = None, style: str = "plain"
) -> None:
    """413 when the JSON text ``buf[:end]`` holds more than ``max_rows`` rows of ``k``
    features can, in any request format."""
    slack = SLACK + 16 * k
    most = (max_rows * (k + 2) + slack, max_rows * k + slack, max_rows + slack)
    c = json_counts(buf, 0, end, most=most)
    for what, got, bound in zip(
        ("values", "object keys", "arrays and objects"),
        (c.values, c.colons, c.containers),
        most,
        strict=True,
    ):
        if got > bound:
            raise ApiError(
                413,
                f"the body holds over {bound:,} JSON {what}, more than {max_rows:,} rows of "
                f"{k} feature(s) can: above the limit of {max_rows} rows (--max-rows)",
                style=style,
            )


def _quotes_are_fields(whole: np.ndarray, quotes: np.ndarray, before: int) -> bool:
    """Whether the quotes at ``quotes`` (``before`` quotes earlier in the body) each open
    a field, close one, or are half of an escaped ``""``: then a character is inside a
    quoted field exactly when an odd number of quotes come before it."""
    n = whole.size
    index = before + np.arange(quotes.size)
    opening, closing = quotes[index % 2 == 0], quotes[index % 2 == 1]
    prev = whole[np.maximum(opening - 1, 0)]
    after = whole[np.minimum(closing + 1, n - 1)]
    bom = whole[:3].tobytes() == b"\xef\xbb\xbf"
    opens = _FIELD_EDGE[prev] | (opening == 0) | ((opening == 3) & bom)
    closes = _FIELD_EDGE[after] | (closing == n - 1)
    return bool(opens.all() and closes.all())


def csv_rows_at_least(buf: bytes | bytearray) -> int | None:
    """Data rows (after the header) a CSV body holds at least, or None when a quote
    character is not where a quoted field opens or closes (``ab"c``, ``"a"b``).

    Counted: the line breaks that end a non-blank line outside quoted fields (a line
    ending in a bare CR is not counted: a lower bound)."""
    lines = quotes_before = 0
    whole = np.frombuffer(buf, dtype=np.uint8)
    for s in range(0, len(buf), BLOCK):
        e = min(s + BLOCK, len(buf))
        a = whole[s:e]
        quotes = np.flatnonzero(a == _QUOTE) + s
        if quotes.size and not _quotes_are_fields(whole, quotes, quotes_before):
            return None
        ends = np.flatnonzero(a == 0x0A) + s
        ends = ends[ends >= 1]
        if quotes.size or quotes_before % 2:
            ends = ends[(np.searchsorted(quotes, ends) + quotes_before) % 2 == 0]
        quotes_before += quotes.size
        p1 = whole[ends - 1]
        p2 = np.where(ends >= 2, whole[np.maximum(ends - 2, 0)], 0x0A)  # the start: a line end
        # a line ending "\n" or "\r\n" with something before it that is no line end
        ended = ~_LINE_END[p1] | ((p1 == 0x0D) & ~_LINE_END[p2])
        lines += int(np.count_nonzero(ended))
    return max(0, lines - 1)


def check_rows(rows: int, max_rows: int, style: str = "plain") -> None:
    """413 when ``rows`` is above ``max_rows``."""
    if rows > max_rows:
        raise ApiError(413, f"{rows} rows, above the limit of {max_rows}", style=style)


def rows_in(inputs: Any) -> int:
    """Rows a parsed input holds, from list lengths alone (no array built): a list of
    rows or records, or the longest column of a dict (1 for a record of scalars)."""
    if isinstance(inputs, list):
        # a flat list is one row (as_matrix reads it so)
        return len(inputs) if inputs and isinstance(inputs[0], list | dict) else 1
    if isinstance(inputs, dict):
        return max((len(v) for v in inputs.values() if isinstance(v, list)), default=1)
    return 1
