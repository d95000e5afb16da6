"""Protobuf's wire format, read without protobuf: varints, fields and strings.

Just enough of https://protobuf.dev/programming-guides/encoding/ for
:mod:`inference.onnx_check` to walk an ONNX file's messages before ONNX Runtime
sees them: every length is checked against what remains, nothing is copied
(length-delimited values are ``memoryview`` slices), and any malformed byte
raises :class:`Malformed`.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "END_GROUP",
    "FIXED32",
    "FIXED64",
    "LEN",
    "START_GROUP",
    "VARINT",
    "Field",
    "Malformed",
    "count_packed_varints",
    "last_string",
    "parse",
    "read_varint",
    "text",
    "to_int64",
]

_UINT64 = 1 << 64
_INT64_MIN_UNSIGNED = 1 << 63

# Wire types.
VARINT, FIXED64, LEN, START_GROUP, END_GROUP, FIXED32 = 0, 1, 2, 3, 4, 5

#: ``(field number, wire type, value)``: an int, or a slice for length-delimited fields
Field = tuple[int, int, "int | memoryview"]


class Malformed(Exception):
    """Bytes that are not well-formed protobuf (internal; becomes ModelLoadError)."""


# --------------------------------------------------------------------------------------
# Wire format
# --------------------------------------------------------------------------------------


def read_varint(buf: memoryview, pos: int, end: int) -> tuple[int, int]:
    """Decode one base-128 varint.

    Parameters
    ----------
    buf : memoryview
        Bytes (format ``"B"``).
    pos, end : int
        Where the varint starts and where the enclosing message ends.

    Returns
    -------
    tuple of int
        The unsigned value (below 2**64) and the position after the varint.

    Raises
    ------
    Malformed
        Truncated, longer than 10 bytes or above 2**64 - 1.
    """
    result = 0
    shift = 0
    while True:
        if pos >= end:
            raise Malformed("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            break
        shift += 7
        if shift >= 70:
            raise Malformed("varint longer than 10 bytes")
    if result >= _UINT64:
        raise Malformed("varint overflows 64 bits")
    return result, pos


def parse(buf: memoryview, message: str) -> list[Field]:
    """Split one message into its fields.

    Parameters
    ----------
    buf : memoryview
        The message's bytes.
    message : str
        Its type, for error messages.

    Returns
    -------
    list of (int, int, int or memoryview)
        ``(field number, wire type, value)``: an int for varint and fixed fields,
        a zero-copy slice of ``buf`` for length-delimited ones.

    Raises
    ------
    Malformed
        On any wire-format error.
    """
    fields: list[Field] = []
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = read_varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if number == 0 or number >= 1 << 29:
            raise Malformed(f"invalid field number {number} in {message}")
        value: int | memoryview
        if wire == VARINT:
            value, pos = read_varint(buf, pos, end)
        elif wire in (FIXED64, FIXED32):
            size = 8 if wire == FIXED64 else 4
            if end - pos < size:
                raise Malformed(f"truncated fixed{size * 8} field {number} in {message}")
            value = int.from_bytes(buf[pos : pos + size], "little")
            pos += size
        elif wire == LEN:
            length, pos = read_varint(buf, pos, end)
            if length > end - pos:
                raise Malformed(
                    f"field {number} of {message} declares {length} bytes but only "
                    f"{end - pos} remain"
                )
            value = buf[pos : pos + length]
            pos += length
        elif wire in (START_GROUP, END_GROUP):
            raise Malformed(f"group (wire type {wire}) in field {number} of {message}")
        else:
            raise Malformed(f"invalid wire type {wire} in field {number} of {message}")
        fields.append((number, wire, value))
    return fields


def count_packed_varints(payload: memoryview, what: str) -> int:
    """Count (and validate) the varints of a packed repeated field."""
    if len(payload) == 0:
        return 0
    arr = np.frombuffer(payload, dtype=np.uint8)
    if arr[-1] & 0x80:
        raise Malformed(f"truncated varint in packed {what}")
    ends = np.flatnonzero(arr < 0x80)
    lengths = np.diff(ends, prepend=-1)
    if int(lengths.max()) > 10:
        raise Malformed(f"varint longer than 10 bytes in packed {what}")
    if bool(np.any(arr[ends[lengths == 10]] > 1)):
        raise Malformed(f"varint overflows 64 bits in packed {what}")
    return int(ends.size)


def to_int64(value: int) -> int:
    """Reinterpret an unsigned 64-bit varint as a signed int64."""
    return value - _UINT64 if value >= _INT64_MIN_UNSIGNED else value


def text(raw: int | memoryview, limit: int = 120) -> str:
    """A protobuf string field as printable text (undecodable bytes replaced)."""
    if not isinstance(raw, memoryview):
        return ""
    decoded = bytes(raw[: limit * 4]).decode("utf-8", errors="replace")
    return decoded if len(decoded) <= limit else decoded[:limit] + "..."


def last_string(fields: list[Field], number: int) -> str:
    """The last occurrence of a string field (protobuf's rule for singular fields)."""
    found = ""
    for field, wire, value in fields:
        if field == number and wire == LEN:
            found = text(value)
    return found
