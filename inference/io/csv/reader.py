"""The CSV reader: blocks of whole lines parsed on a pool of threads.

A file is cut into blocks of whole lines (2 MiB by default), which worker threads
parse while the main thread predicts and writes. A block of plain numbers, in a job
that copies no column, goes straight into the model's matrix through the C parser of
:mod:`inference.io.csv.native` (a third of pyarrow's CPU). Any other block, or any
block when that extension was not built, is parsed by ``pyarrow.csv`` (features
read as float64 by the reader itself, kept columns as text, copied exactly), which
also finds what is wrong with a bad one. Both give the same values: the correctly
rounded double, cast to the model's dtype. The parsers and ONNX Runtime release the
GIL, so the threads run in parallel. Each chunk keeps its block's bytes, so a bad
row is reported with its line number and raw text.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from inference.errors import BatchError, LineTooLongError
from inference.io.arrow import import_pyarrow
from inference.io.chunks import Chunk, Rejected, matrix
from inference.io.csv import native as fastcsv
from inference.io.csv.blocks import LongLine
from inference.io.csv.blocks import csv_blocks as _csv_blocks
from inference.io.csv.lines import (
    NEWLINE,
    count_newlines,
    first_broken_line,
    first_undecodable,
    has_bare_cr,
    is_utf8,
    last_byte,
    last_line_open,
    line_problem,
)
from inference.io.formats import FileFormat, Part, open_input
from inference.io.limits import DEFAULT_MAX_LINE_BYTES
from inference.io.threads import ordered_map

if TYPE_CHECKING:
    from inference.io.spec import ReadSpec

__all__ = [
    "DEFAULT_CSV_BLOCK",
    "CsvChunk",
    "block_bytes",
    "inspect_csv",
    "read_csv",
    "read_csv_table",
]

#: bytes of CSV text per chunk when ``chunk_rows`` is not given
DEFAULT_CSV_BLOCK = 2 << 20
#: pyarrow parses a block in pieces of this size when it holds no quote: the parsed
#: values of a piece stay in the CPU's cache while they are converted (about a fifth
#: less CPU than one piece of 2 MiB). A block with quotes is parsed in one piece, as a
#: quoted line break at a cut between two pieces would be read differently.
PARSE_BLOCK = 512 << 10
_MAX_BLOCK = 256 << 20


def inspect_csv(path: Path, fmt: FileFormat, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> Part:
    """A CSV part: its header's column names and the mean length of the first lines.
    :class:`LineTooLongError` when the header line is longer than ``max_line_bytes``
    (no more than that is read)."""
    part = Part(path, fmt, [], size=path.stat().st_size, max_line_bytes=max_line_bytes)
    head = bytearray()
    with open_input(part) as f:
        while len(head) <= max_line_bytes:
            chunk = f.read(64 << 10)
            head += chunk
            if not chunk or b"\n" in chunk:
                break
        end = head.find(b"\n")
        if (end if end >= 0 else len(head)) > max_line_bytes:
            raise LineTooLongError(file=str(path), line=1, limit=max_line_bytes)
        if b"\n" in head and head.count(b"\n") < 8:
            head += f.read(64 << 10)
    header, _, rest = bytes(head).partition(b"\n")
    if not header.strip():
        raise BatchError(
            "no header line; expected the column names on the first line", file=str(path), line=1
        )
    try:
        text = header.decode("utf-8-sig").rstrip("\r")
    except UnicodeDecodeError as exc:
        raise BatchError(f"the header is not UTF-8 ({exc})", file=str(path), line=1) from exc
    problem = line_problem(text.encode("utf-8"), ord(fmt.delimiter))
    if problem is not None:
        raise BatchError(problem[1], file=str(path), line=1)
    try:
        part.columns = next(csv.reader([text], delimiter=fmt.delimiter), [])
    except csv.Error as exc:  # a name longer than the csv module's field limit
        raise BatchError(f"cannot read the header ({exc})", file=str(path), line=1) from exc
    lines = rest.count(b"\n")
    part.line_bytes = len(rest) / lines if lines else max(len(header), 1)
    return part


@dataclass
class CsvChunk(Chunk):
    """A chunk of CSV lines: its block's bytes, line numbers and the lines set aside."""

    first_line: int | None = None  # line number of the chunk's first row (set in order)
    invalid: list[Rejected] = field(default_factory=list)  # lines with too few or many fields
    raw: Any = None  # the block (an Arrow buffer)
    newlines: int = 0  # newlines in the block
    error: Exception | None = None  # why the block could not be parsed
    fatal: tuple[int, str | None, str] | None = None  # (block line, column, reason)
    too_long: int | None = None  # the limit its first line is longer than
    _lines: list[bytes] | None = None

    def rejected(self) -> list[Rejected]:
        return self.invalid

    def chunk_rows(self) -> np.ndarray:
        if not self.invalid:
            return np.arange(1, self.n + 1)
        total = self.n + len(self.invalid)
        return np.setdiff1d(np.arange(1, total + 1), [r for r, *_ in self.invalid])

    def line_text(self, chunk_row: int) -> str:
        """The text of a line of the block (1-based), without its line end."""
        if self.raw is None:
            return ""
        if self._lines is None:
            self._lines = self.raw.to_pybytes().split(b"\n")
        raw = self._lines[chunk_row - 1] if chunk_row - 1 < len(self._lines) else b""
        return raw.rstrip(b"\r").decode("utf-8", errors="replace")

    def locate(self, chunk_row: int) -> tuple[int | None, int]:
        line = None if self.first_line is None else self.first_line + chunk_row - 1
        return line, self.first_row + chunk_row - 1

    def is_blank(self, chunk_row: int) -> bool:
        return self.raw is not None and self.line_text(chunk_row) == ""  # "\t\t" is not blank

    def value(self, i: int, chunk_row: int, name: str) -> Any:
        """The CSV field's text (the value read when the line does not split)."""
        if self.raw is not None:
            line = self.line_text(chunk_row)
            try:
                fields = next(csv.reader([line], delimiter=self.part.fmt.delimiter), [])
            except csv.Error:  # a field longer than the csv module's limit: use the value read
                fields = []
            j = self.part.columns.index(name)
            if j < len(fields):
                return fields[j]
        return super().value(i, chunk_row, name)

    def record(self, i: int, chunk_row: int) -> str:
        return self.line_text(chunk_row)


def block_bytes(part: Part, chunk_rows: int | None) -> int:
    """Bytes per block: about ``chunk_rows`` lines, or :data:`DEFAULT_CSV_BLOCK`; at most
    the part's line limit (or the default block, if that is larger), so that a reader
    holds a small multiple of the limit whatever the first lines made the estimate
    (a long line among them makes it large)."""
    if chunk_rows is None:
        return DEFAULT_CSV_BLOCK
    size = int(min(max(chunk_rows * part.line_bytes, 1 << 10), _MAX_BLOCK))
    return min(size, max(part.max_line_bytes, DEFAULT_CSV_BLOCK))


def read_csv(
    part: Part, spec: ReadSpec, chunk_rows: int | None, workers: int
) -> Iterator[CsvChunk]:
    """The chunks of a CSV part in order, parsed on ``workers`` threads, each numbered
    with its first line (the header is line 1) and row.

    Raises :class:`BatchError` naming the line for a block that is not one record per
    line, holds bytes that are not UTF-8 where they are read, or does not parse, and
    :class:`LineTooLongError` for a line longer than ``part.max_line_bytes`` (before
    any parser sees it).
    """
    blocks = _csv_blocks(part, block_bytes(part, chunk_rows))
    chunks = ordered_map(partial(_prepare_csv, part, spec), blocks, workers)
    line = 2
    try:
        for chunk in chunks:
            chunk.first_line, chunk.first_row = line, line - 1
            line += chunk.newlines
            if chunk.too_long is not None:
                raise LineTooLongError(file=part.name, line=chunk.first_line, limit=chunk.too_long)
            if chunk.fatal is not None:
                offset, column, reason = chunk.fatal
                raise BatchError(
                    reason,
                    file=part.name,
                    line=chunk.first_line + offset - 1,
                    column=column,
                ) from chunk.error
            if chunk.error is not None:
                raise BatchError(
                    f"cannot parse lines {chunk.first_line} to {line - 1} ({chunk.error})",
                    file=part.name,
                    line=chunk.first_line,
                ) from chunk.error
            yield chunk
    finally:
        chunks.close()


def single(chunked: Any) -> Any:
    """A chunked array's one chunk (its chunks combined when there are several)."""
    return chunked.chunk(0) if chunked.num_chunks == 1 else chunked.combine_chunks()


def _read_block(
    part: Part, spec: ReadSpec, block: Any, invalid: list[Rejected], quoted: bool
) -> Any:
    """The block parsed into a table of the needed columns, named ``c<position>``; lines
    with a wrong number of fields go to ``invalid`` instead. ``quoted``: whether the
    block holds a double quote."""
    pa = import_pyarrow()
    import pyarrow.csv as pacsv

    internal = [f"c{i}" for i in range(len(part.columns))]
    index = {name: part.columns.index(name) for name in spec.needed}
    include = [internal[index[name]] for name in spec.needed]

    def handler(row: Any) -> str:
        expected, actual = row.expected_columns, row.actual_columns
        column = part.columns[actual] if actual < expected else None
        reason = f"{actual} field(s), expected {expected}" + (
            " (a missing field)" if actual < expected else " (too many fields)"
        )
        invalid.append((int(row.number), reason, column, row.text))
        return "skip"

    def parse(typed: bool) -> Any:
        invalid.clear()
        # Fast path: features parsed as float64 by the reader itself. Kept columns stay
        # text (copied exactly), and so does a feature that is also kept.
        kinds = {c: pa.string() for c in include}
        if typed:
            kinds.update(
                {internal[index[f]]: pa.float64() for f in spec.features if f not in spec.kept}
            )
        return pacsv.read_csv(
            pa.BufferReader(block),
            read_options=pacsv.ReadOptions(
                column_names=internal, use_threads=False, block_size=piece
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=part.fmt.delimiter,
                invalid_row_handler=handler,
                ignore_empty_lines=False,
            ),
            convert_options=pacsv.ConvertOptions(
                include_columns=include,
                column_types=kinds,
                strings_can_be_null=True,
                null_values=[""],
            ),
        )

    piece = block.size + 1 if quoted else min(block.size + 1, PARSE_BLOCK)
    try:
        try:
            return parse(typed=True)
        except pa.ArrowInvalid:
            # A value that is not a number: read the block again as text, which finds
            # each such value (slower, and only for this block).
            return parse(typed=False)
    except pa.ArrowInvalid as exc:
        if piece > block.size or "straddl" not in str(exc):
            raise
    # A line longer than a piece (within the line limit): the block in one piece.
    piece = block.size + 1
    try:
        return parse(typed=True)
    except pa.ArrowInvalid:
        return parse(typed=False)


def _parse_plain(part: Part, spec: ReadSpec, block: Any, newlines: int) -> CsvChunk | None:
    """The block (holding ``newlines`` line ends) parsed by the C fast path, when the
    job copies no column and the block is plain numeric CSV
    (:mod:`inference.io.csv.native`); else None, and the block goes to pyarrow. A plain
    block has no blank, short or long line and no value that is not a finite number of
    the model's dtype, so it has no bad row."""
    if spec.kept or not fastcsv.available():
        return None
    lines = newlines + (1 if block.size and last_byte(block) != NEWLINE else 0)
    X = np.empty((lines, len(spec.features)), dtype=spec.dtype)
    position = {name: j for j, name in enumerate(spec.features)}
    columns = [position.get(name, -1) for name in part.columns]
    rows = fastcsv.parse_block(block, len(columns), part.fmt.delimiter, columns, X)
    if rows is None:
        return None
    return CsvChunk(
        part=part,
        names=spec.features,
        X=X[:rows],
        kept=[],
        feature_arrays=[],
        failures={},
        raw=block,
        nbytes=block.size,
        newlines=newlines,
    )


def _prepare_csv(part: Part, spec: ReadSpec, block: Any) -> CsvChunk:
    if isinstance(block, LongLine):
        return CsvChunk(part, spec.features, np.empty((0, 0)), [], [], {}, too_long=block.limit)
    newlines = count_newlines(block)
    plain = _parse_plain(part, spec, block, newlines)
    if plain is not None:
        return plain
    pa = import_pyarrow()
    invalid: list[Rejected] = []

    def failed(error: Exception | None, fatal: tuple[int, str | None, str] | None) -> CsvChunk:
        return CsvChunk(
            part,
            spec.features,
            np.empty((0, 0)),
            [],
            [],
            {},
            newlines=newlines,
            error=error,
            fatal=fatal,
        )

    delimiter = ord(part.fmt.delimiter)
    # One copy of the block as bytes: the searches below run at memchr speed, and the
    # checks in numpy or Arrow run only where a byte calls for them.
    data = block.to_pybytes()
    # Before pyarrow, whose bad-row handler cannot decode such a line:
    if not data.isascii() and not is_utf8(block):
        where = first_undecodable(data, part, spec)
        if where is not None:
            return failed(None, where)
    # A bare carriage return: pyarrow would end a record there, and rows and lines drift.
    if b"\r" in data and has_bare_cr(block):
        return failed(None, first_broken_line(data, delimiter, part.columns))
    quoted = b'"' in data
    try:
        table = _read_block(part, spec, block, invalid, quoted)
    except pa.ArrowException as exc:
        return failed(exc, first_undecodable(data, part, spec))
    # One record per line, or the row -> line mapping (line numbers, blank lines, the
    # records of bad rows) would be wrong: a quote left open swallows the next lines.
    lines = newlines + (0 if block.size and last_byte(block) == NEWLINE else 1)
    if table.num_rows + len(invalid) != lines or (quoted and last_line_open(block, delimiter)):
        return failed(None, first_broken_line(data, delimiter, part.columns))
    # Features stay chunked (one chunk per piece parsed; matrix() takes them chunk by
    # chunk), kept columns are combined for the output batch.
    columns = {name: table.column(f"c{part.columns.index(name)}") for name in spec.needed}
    feature_arrays = [columns[f] for f in spec.features]
    X, failures = matrix(feature_arrays, spec.features, spec.dtype)
    return CsvChunk(
        part=part,
        names=spec.features,
        X=X,
        kept=[single(columns[name]) for name in spec.kept],
        feature_arrays=feature_arrays,
        failures=failures,
        invalid=sorted(invalid),
        raw=block,
        nbytes=block.size,
        newlines=newlines,
    )


def read_csv_table(part: Part, columns: list[str]) -> Any:
    """The whole file's ``columns`` as a float64 Arrow table, parsed by ``pyarrow.csv``
    on all cores; None when a value does not parse, a cell is empty, or a line has too
    many fields (:func:`read_csv` then tells where)."""
    pa = import_pyarrow()
    import pyarrow.csv as pacsv

    try:
        return pacsv.read_csv(
            str(part.path),
            read_options=pacsv.ReadOptions(use_threads=True, block_size=4 << 20),
            parse_options=pacsv.ParseOptions(delimiter=part.fmt.delimiter),
            convert_options=pacsv.ConvertOptions(
                include_columns=columns,
                column_types={name: pa.float64() for name in columns},
                null_values=[""],
                strings_can_be_null=False,
            ),
        )
    except (pa.ArrowException, OSError, ValueError):
        return None
