"""The bytes of CSV text: line ends, quotes and encodings, checked in numpy or Arrow.

A block of CSV text must hold one record per line (LF or CRLF line ends) for line
numbers, blank lines and the records of bad rows to be right. These functions find
the lines that break that rule (a quote left open, a bare carriage return) and
those with bytes that are not UTF-8, so that the reader can name them.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from inference.errors import LineTooLongError
from inference.io.arrow import import_pyarrow
from inference.io.chunks import shown
from inference.io.limits import LineLengths

if TYPE_CHECKING:
    from inference.io.formats import Part
    from inference.io.spec import ReadSpec

__all__ = [
    "NEWLINE",
    "count_newlines",
    "first_broken_line",
    "first_newline",
    "file_is_utf8",
    "scan_text_file",
    "first_undecodable",
    "has_bare_cr",
    "is_utf8",
    "last_byte",
    "last_line_open",
    "last_newline",
    "line_problem",
]

NEWLINE, _CR, _QUOTE = 10, 13, 34
_SCAN = 1 << 20


def last_newline(buf: Any) -> int:
    """Offset of the last ``\\n`` in an Arrow buffer, or -1 (scanned backwards in windows
    of 4 KiB growing to 1 MiB: a line end is usually near the end)."""
    a = np.frombuffer(buf, dtype=np.uint8)
    end, window = len(a), 4 << 10
    while end > 0:
        start = max(0, end - window)
        hits = np.flatnonzero(a[start:end] == NEWLINE)
        if hits.size:
            return start + int(hits[-1])
        end, window = start, min(window * 4, _SCAN)
    return -1


def first_newline(buf: Any) -> int:
    """Offset of the first ``\\n`` in an Arrow buffer, or -1."""
    a = np.frombuffer(buf, dtype=np.uint8)
    for start in range(0, len(a), _SCAN):
        hits = np.flatnonzero(a[start : start + _SCAN] == NEWLINE)
        if hits.size:
            return start + int(hits[0])
    return -1


def count_newlines(buf: Any) -> int:
    """How many ``\\n`` an Arrow buffer holds."""
    a = np.frombuffer(buf, dtype=np.uint8)
    return sum(
        int(np.count_nonzero(a[start : start + _SCAN] == NEWLINE))
        for start in range(0, len(a), _SCAN)
    )


def last_byte(buf: Any) -> int:
    """The last byte of a non-empty Arrow buffer."""
    return int(np.frombuffer(buf, dtype=np.uint8, count=1, offset=buf.size - 1)[0])


def has_bare_cr(buf: Any) -> bool:
    """Whether a carriage return is followed by anything but a line feed (the end of the
    file's last line excepted)."""
    a = np.frombuffer(buf, dtype=np.uint8)
    for start in range(0, len(a), _SCAN):
        cr = np.flatnonzero(a[start : start + _SCAN] == _CR) + start
        cr = cr[cr + 1 < len(a)]
        if cr.size and (a[cr + 1] != NEWLINE).any():
            return True
    return False


def last_line_open(buf: Any, delimiter: int) -> bool:
    """Whether the block's last line leaves a quote open (a field cut at the block's end)."""
    end = buf.size - 1 if buf.size and last_byte(buf) == NEWLINE else buf.size
    start = last_newline(buf.slice(0, end)) + 1
    line = buf.slice(start, end - start).to_pybytes()
    return b'"' in line and line_problem(line, delimiter) is not None


def line_problem(line: bytes, delimiter: int) -> tuple[int, str] | None:
    """(0-based field, reason) when a line is not whole records: a quote still open at its
    end, or a carriage return inside it (a trailing one, of a CRLF, is fine)."""
    if line.endswith(b"\r"):
        line = line[:-1]
    if b'"' not in line and b"\r" not in line:
        return None
    field, start, quoted, i, n = 0, True, False, 0, len(line)
    while i < n:
        c = line[i]
        if quoted:
            if c == _QUOTE:
                if i + 1 < n and line[i + 1] == _QUOTE:
                    i += 1
                else:
                    quoted = False
            elif c == _CR:
                return field, f"a carriage return (CR) inside a quoted field; {_ONE_RECORD}"
        elif c == _QUOTE and start:
            quoted = True
        elif c == _CR:
            return field, f"a carriage return (CR) that does not end the line; {_ONE_RECORD}"
        elif c == delimiter:
            field, start, i = field + 1, True, i + 1
            continue
        start = False
        i += 1
    if quoted:
        return field, f"a quote opened in this field is not closed on its line; {_ONE_RECORD}"
    return None


_ONE_RECORD = "expected one record per line, with LF or CRLF line ends"


def first_broken_line(
    data: bytes, delimiter: int, columns: list[str]
) -> tuple[int, str | None, str]:
    """(1-based line in the block, column, reason) of the first line that is not whole records."""
    for number, line in enumerate(data.split(b"\n"), 1):
        problem = line_problem(line, delimiter)
        if problem is not None:
            field, reason = problem
            return number, columns[field] if field < len(columns) else None, reason
    return 1, None, f"these lines do not parse into one record each; {_ONE_RECORD}"


def is_utf8(buf: Any) -> bool:
    """Whether a buffer is valid UTF-8 (checked by Arrow, in C++: a full validation of
    a one-value string array, which, unlike a cast, does not import pyarrow.compute)."""
    pa = import_pyarrow()
    offsets = pa.py_buffer(np.array([0, buf.size], dtype=np.int64))
    try:
        pa.Array.from_buffers(pa.large_string(), 1, [None, offsets, buf]).validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


def first_undecodable(
    data: bytes, part: Part, spec: ReadSpec
) -> tuple[int, str | None, str] | None:
    """(1-based line in the block, column, reason) of the first line with bytes that are
    not UTF-8 in a column the job reads, or anywhere in a line with a wrong number of
    fields; None when there is none."""
    try:
        data.decode("utf-8")
        return None
    except UnicodeDecodeError:
        pass
    read = {part.columns.index(name) for name in spec.needed}
    for number, line in enumerate(data.split(b"\n"), 1):
        try:
            line.decode("utf-8")
            continue
        except UnicodeDecodeError:
            pass
        text = line.rstrip(b"\r").decode("utf-8", "surrogateescape")
        try:
            fields = next(csv.reader([text], delimiter=part.fmt.delimiter), [])
        except csv.Error:
            continue
        whole = len(fields) == len(part.columns)
        for j, value in enumerate(fields):
            if (j in read or not whole) and not value.isascii():
                raw = value.encode("utf-8", "surrogateescape")
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError:
                    reason = f"{shown(raw)} is not UTF-8 text; expected a UTF-8 file"
                    if not whole:
                        reason += f" (in a line of {len(fields)} field(s), expected "
                        reason += f"{len(part.columns)})"
                    column = part.columns[j] if j < len(part.columns) else None
                    return number, column, reason
    return None


def file_is_utf8(path: str | Path, block: int = 8 << 20) -> bool:
    """Whether the whole file is UTF-8, unread columns included (pyarrow decodes only
    the columns it converts). ASCII blocks, the usual case, are checked at memory
    speed without decoding."""
    return scan_text_file(path, None, block)


def scan_text_file(path: str | Path, max_line_bytes: int | None, block: int = 8 << 20) -> bool:
    """One pass over a file's bytes (as stored): whether it is all UTF-8
    (:func:`file_is_utf8`), and :class:`~inference.errors.LineTooLongError` at its first
    line longer than ``max_line_bytes`` (None: no limit), found by
    :func:`~inference.io.limits.long_line_in` in the blocks as they are read."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    with open(path, "rb") as f:
        chunks = _blocks(f, block)
        if max_line_bytes is not None:
            chunks = _checked(chunks, str(path), max_line_bytes)
        for chunk in chunks:
            if chunk.isascii() and not decoder.getstate()[0]:
                continue
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError:
                return False  # the text reader checks the lines after this
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _blocks(f: Any, block: int) -> Iterator[bytes]:
    while chunk := f.read(block):
        yield chunk


def _checked(chunks: Iterator[bytes], name: str, limit: int) -> Iterator[bytes]:
    """The chunks, passed on after their lines are checked against ``limit``."""
    lengths = LineLengths(limit)
    for chunk in chunks:
        line = lengths.feed(chunk)
        if line is not None:
            raise LineTooLongError(file=name, line=line, limit=limit)
        yield chunk
