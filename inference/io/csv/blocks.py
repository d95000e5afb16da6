"""A CSV file cut into blocks of whole lines, no line longer than the part's limit.

:func:`csv_blocks` reads the file (decompressing on the fly) into Arrow buffers of
whole lines, the header line skipped. A line longer than ``part.max_line_bytes``
ends the blocks with :class:`LongLine` instead, before any parser sees it: the blocks
before it hold every line before it, so the reader, which numbers lines as it goes,
names that line. The reader then holds at most the limit and one block of the line.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from inference.io.arrow import import_pyarrow
from inference.io.csv.lines import first_newline, last_newline
from inference.io.formats import Part, open_input
from inference.io.limits import first_long_line

__all__ = ["LongLine", "csv_blocks"]


@dataclass(frozen=True)
class LongLine:
    """In place of a block: the next line is longer than ``limit`` bytes."""

    limit: int


def csv_blocks(part: Part, size: int) -> Iterator[Any]:
    """Arrow buffers of whole lines, in order, after the header line, each about
    ``size`` bytes; a :class:`LongLine` last when a line is longer than the part's
    ``max_line_bytes``.

    The bytes live in Arrow's memory pool (not Python's heap), so memory is given
    back between blocks whatever the allocator of the platform does.
    """
    pa = import_pyarrow()
    limit = part.max_line_bytes
    with open_input(part) as f:
        rest = _after_header(f, size)
        if rest is None:
            return
        while True:
            # The start of a line left over, then the next bytes read straight after it
            # into the same new buffer: the block is never copied as a whole.
            head = rest.size
            buffer = pa.allocate_buffer(head + size)
            view = memoryview(buffer)
            if head:
                view[:head] = memoryview(rest)
            got = f.readinto(view[head:])
            del view
            if got == 0:
                if head:  # the last lines (the last without a newline)
                    yield from _checked(rest, limit)
                return
            filled = buffer.slice(0, head + got)
            cut = last_newline(filled)
            if cut < 0:
                rest = filled
            else:
                rest = filled.slice(cut + 1)
                for block in _checked(filled.slice(0, cut + 1), limit):
                    yield block
                    if isinstance(block, LongLine):
                        return
            if rest.size > limit:  # a line without its end yet, already too long
                yield LongLine(limit)
                return


def _checked(lines: Any, limit: int) -> Iterator[Any]:
    """``lines`` (whole lines, the last one may lack its newline), or the lines before
    the first one longer than ``limit`` (if any) and a :class:`LongLine`. Only a buffer
    longer than the limit can hold such a line: shorter ones are not searched."""
    long = first_long_line(lines, limit) if lines.size > limit else -1
    if long < 0:
        yield lines
        return
    if long > 0:
        yield lines.slice(0, long)
    yield LongLine(limit)


def _after_header(f: Any, size: int) -> Any:
    """The bytes read after the header line's newline (an Arrow buffer), or None when
    the file has no line after the header. The header itself was read, and its length
    checked, by :func:`~inference.io.csv.reader.inspect_csv`."""
    while True:
        chunk = f.read_buffer(size)
        if chunk.size == 0:
            return None
        nl = first_newline(chunk)
        if nl >= 0:
            return chunk.slice(nl + 1)
