"""Edit the Thrift footer of a Parquet file: a small reader and writer of the Thrift
compact protocol, to make files whose metadata lies (a column chunk's ``num_values``,
a negative ``data_page_offset``...) while every page stays intact.

A footer is parsed into :class:`Struct` values that keep every field, in order, so
that writing an unedited footer gives back its bytes exactly (tested); an edit changes
one integer field of one column chunk's ``ColumnMetaData`` (parquet.thrift).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["COLUMN_META_FIELDS", "Struct", "edit_column_meta", "parse_footer", "read_footer"]

# compact protocol types
_TRUE, _FALSE, _BYTE, _I16, _I32, _I64, _DOUBLE, _BINARY = 1, 2, 3, 4, 5, 6, 7, 8
_LIST, _SET, _MAP, _STRUCT, _UUID = 9, 10, 11, 12, 13

#: ColumnMetaData's integer fields (parquet.thrift): name -> (field id, compact type)
COLUMN_META_FIELDS = {
    "num_values": (5, _I64),
    "total_uncompressed_size": (6, _I64),
    "total_compressed_size": (7, _I64),
    "data_page_offset": (9, _I64),
    "dictionary_page_offset": (11, _I64),
}


@dataclass
class Struct:
    """A Thrift struct as read: ``(field id, compact type, value)`` in order."""

    fields: list[tuple[int, int, Any]] = field(default_factory=list)

    def get(self, fid: int) -> Any:
        for f, _, value in self.fields:
            if f == fid:
                return value
        raise KeyError(fid)

    def set(self, fid: int, ctype: int, value: Any) -> None:
        for i, (f, _, _) in enumerate(self.fields):
            if f == fid:
                self.fields[i] = (fid, ctype, value)
                return
        self.fields.append((fid, ctype, value))
        self.fields.sort(key=lambda x: x[0])


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def byte(self) -> int:
        b = self.data[self.pos]
        self.pos += 1
        return b

    def take(self, n: int) -> bytes:
        out = self.data[self.pos : self.pos + n]
        if len(out) != n:
            raise ValueError("footer cut short")
        self.pos += n
        return out

    def varint(self) -> int:
        v, shift = 0, 0
        while True:
            b = self.byte()
            v |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return v

    def zigzag(self) -> int:
        u = self.varint()
        return (u >> 1) ^ -(u & 1)

    def value(self, ctype: int, in_container: bool = False) -> Any:
        if ctype in (_TRUE, _FALSE):
            return self.byte() if in_container else None  # a field's bool is its type
        if ctype == _BYTE:
            return self.byte()
        if ctype in (_I16, _I32, _I64):
            return self.zigzag()
        if ctype == _DOUBLE:
            return self.take(8)
        if ctype == _UUID:
            return self.take(16)
        if ctype == _BINARY:
            return self.take(self.varint())
        if ctype in (_LIST, _SET):
            head = self.byte()
            size = head >> 4
            if size == 15:
                size = self.varint()
            etype = head & 0x0F
            return (etype, [self.value(etype, True) for _ in range(size)])
        if ctype == _MAP:
            size = self.varint()
            if size == 0:
                return (0, 0, [])
            kv = self.byte()
            items = [(self.value(kv >> 4, True), self.value(kv & 0x0F, True)) for _ in range(size)]
            return (kv >> 4, kv & 0x0F, items)
        if ctype == _STRUCT:
            return self.struct()
        raise ValueError(f"unknown compact type {ctype}")

    def struct(self) -> Struct:
        out, last = Struct(), 0
        while True:
            head = self.byte()
            if head == 0:
                return out
            delta, ctype = head >> 4, head & 0x0F
            fid = last + delta if delta else self.zigzag()
            out.fields.append((fid, ctype, self.value(ctype)))
            last = fid


def _varint(v: int) -> bytes:
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _zigzag(v: int) -> bytes:
    return _varint((v << 1) ^ (v >> 63))


def _write_value(ctype: int, value: Any, in_container: bool = False) -> bytes:
    if ctype in (_TRUE, _FALSE):
        return bytes([value]) if in_container else b""
    if ctype == _BYTE:
        return bytes([value])
    if ctype in (_I16, _I32, _I64):
        return _zigzag(value)
    if ctype in (_DOUBLE, _UUID):
        return bytes(value)
    if ctype == _BINARY:
        return _varint(len(value)) + bytes(value)
    if ctype in (_LIST, _SET):
        etype, items = value
        head = bytes([len(items) << 4 | etype]) if len(items) < 15 else bytes([0xF0 | etype])
        if len(items) >= 15:
            head += _varint(len(items))
        return head + b"".join(_write_value(etype, item, True) for item in items)
    if ctype == _MAP:
        ktype, vtype, items = value
        if not items:
            return b"\x00"
        body = b"".join(
            _write_value(ktype, k, True) + _write_value(vtype, v, True) for k, v in items
        )
        return _varint(len(items)) + bytes([ktype << 4 | vtype]) + body
    if ctype == _STRUCT:
        return write_struct(value)
    raise ValueError(f"unknown compact type {ctype}")


def write_struct(s: Struct) -> bytes:
    """A struct in the compact protocol (field deltas where they fit, as Thrift writes)."""
    out, last = bytearray(), 0
    for fid, ctype, value in s.fields:
        if 0 < fid - last <= 15:
            out.append((fid - last) << 4 | ctype)
        else:
            out.append(ctype)
            out += _zigzag(fid)
        out += _write_value(ctype, value)
        last = fid
    out.append(0)
    return bytes(out)


def read_footer(data: bytes) -> tuple[int, bytes]:
    """(offset, bytes) of a Parquet file's footer (its FileMetaData)."""
    if data[-4:] != b"PAR1" or data[:4] != b"PAR1":
        raise ValueError("not a Parquet file")
    size = int.from_bytes(data[-8:-4], "little")
    start = len(data) - 8 - size
    return start, data[start:-8]


def parse_footer(footer: bytes) -> Struct:
    """The FileMetaData struct of a footer (every field kept)."""
    reader = _Reader(footer)
    meta = reader.struct()
    if reader.pos != len(footer):
        raise ValueError(f"{len(footer) - reader.pos} bytes after the FileMetaData")
    return meta


def edit_column_meta(src: Path, dst: Path, row_group: int, column: int, **values: int) -> None:
    """Write ``dst``: ``src`` with fields of the ColumnMetaData of one column chunk
    replaced, e.g. ``num_values=299`` or ``data_page_offset=-5`` (names in
    :data:`COLUMN_META_FIELDS`); the pages are untouched."""
    data = src.read_bytes()
    start, footer = read_footer(data)
    meta = parse_footer(footer)
    groups = meta.get(4)[1]  # FileMetaData.row_groups
    chunk = groups[row_group].get(1)[1][column]  # RowGroup.columns[column]
    column_meta = chunk.get(3)  # ColumnChunk.meta_data
    for name, value in values.items():
        fid, ctype = COLUMN_META_FIELDS[name]
        column_meta.set(fid, ctype, value)
    new = write_struct(meta)
    dst.write_bytes(data[:start] + new + len(new).to_bytes(4, "little") + b"PAR1")
