"""The readers' bound on a line of text: what CSV and TSV lines (and so their fields)
may hold before any parser sees them.

A line longer than ``max_line_bytes`` (its line end not counted) stops the read with
:class:`~inference.errors.LineTooLongError` naming the file, the line and the limit.
The CSV reader never holds more of such a line than the limit and one block; the
checks here find long lines in bytes already read, at ``memchr`` speed.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable
from typing import Any

import numpy as np

__all__ = [
    "DEFAULT_MAX_LINE_BYTES",
    "LineLengths",
    "check_max_line_bytes",
    "first_long_line",
    "long_line_in",
]

#: the default longest line (and so field) of a CSV or TSV file: 16 MiB
DEFAULT_MAX_LINE_BYTES = 16 << 20
_NEWLINE = 10
_WINDOW = 1 << 20


def check_max_line_bytes(value: Any) -> int:
    """``value`` as a positive int; ValueError otherwise (a usage error)."""
    try:
        if isinstance(value, bool):
            raise TypeError
        limit = operator.index(value)
    except TypeError:
        raise ValueError(f"max_line_bytes must be a positive integer, got {value!r}") from None
    if limit < 1:
        raise ValueError(f"max_line_bytes must be a positive integer, got {value!r}")
    return limit


def _last_newline(a: np.ndarray) -> int:
    """Offset of the last ``\\n`` of a uint8 array, or -1 (backwards, in windows growing
    from 4 KiB: in a window of whole lines the last one is near the end)."""
    end, window = len(a), 4 << 10
    while end > 0:
        start = max(0, end - window)
        hits = np.flatnonzero(a[start:end] == _NEWLINE)
        if hits.size:
            return start + int(hits[-1])
        end, window = start, min(window * 4, _WINDOW)
    return -1


def first_long_line(buf: Any, limit: int) -> int:
    """Offset of the start of the first line of ``buf`` (bytes-like; lines start at 0
    and after each ``\\n``) that holds more than ``limit`` bytes before its ``\\n`` or
    the end of ``buf``; -1 when there is none.

    Each step looks at the ``limit + 1`` bytes from a line's start, where its ``\\n``
    must be, and moves past the last ``\\n`` there: a buffer of short lines costs a few
    small searches per ``limit`` bytes, and no buffer is scanned more than twice.
    """
    a = np.frombuffer(buf, dtype=np.uint8)
    pos, n = 0, len(a)
    while n - pos > limit:
        nl = _last_newline(a[pos : pos + limit + 1])
        if nl < 0:
            return pos
        pos += nl + 1
    return -1


class LineLengths:
    """The lines of a text fed in pieces, checked against ``limit``: :meth:`feed` gives
    the 1-based number of the first line longer than ``limit`` bytes, once it is known.
    Lines are counted with ``bytes.count``; only the length of the line in progress is
    carried from piece to piece."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.line = 1  # the line in progress
        self.carry = 0  # its bytes in earlier pieces

    def feed(self, data: bytes) -> int | None:
        """The next piece: the number of a line longer than the limit, or None so far."""
        pos, n = 0, len(data)
        while pos < n:
            room = self.limit - self.carry  # bytes the line may still hold
            end = min(n, pos + room + 1)
            nl = data.rfind(b"\n", pos, end)
            if nl < 0:
                if end == n and n - pos <= room:
                    self.carry += n - pos  # the line goes on in the next piece
                    return None
                return self.line
            self.line += data.count(b"\n", pos, nl + 1)
            self.carry, pos = 0, nl + 1
        return None


def long_line_in(chunks: Iterable[bytes], limit: int) -> int | None:
    """The 1-based number of the first line longer than ``limit`` bytes in the text the
    ``chunks`` make up (read in order), or None (:class:`LineLengths`)."""
    lengths = LineLengths(limit)
    for chunk in chunks:
        line = lengths.feed(chunk)
        if line is not None:
            return line
    return None
