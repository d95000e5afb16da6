"""Writers of record batches: CSV or TSV text (optionally compressed) and Parquet.

A CSV value is quoted only where it needs it (a delimiter, a quote or a line break
in it); a Parquet output gathers chunks into row groups of about
:data:`ROW_GROUP_ROWS` rows or :data:`ROW_GROUP_BYTES` bytes.

A ``.gz`` output is standard gzip at a fast level (:class:`GzipStream`): python-isal's
ISA-L deflate at level :data:`ISAL_LEVEL` where ``isal`` is installed (the ``tables``
extra brings it), else Arrow's zlib at level :data:`ARROW_GZIP_LEVEL`, one gzip member
per chunk (concatenated members are standard gzip: ``gzip -d``, Python's ``gzip``,
pandas and pyarrow read them). pyarrow's own compressed stream takes no level and
uses zlib's 9: a job scoring a million rows into ``.csv.gz`` took 2.56 s of CPU with
it, 0.26 s with ISA-L and 0.35 s with zlib at level 1 (0.22 s into plain ``.csv``),
for a file 9 to 13% larger (``benchmarks/bench_gzip.py``; docs/guide/cli.md, "Compressed
output"). ``.bz2`` and ``.zst`` go through pyarrow's stream.
"""

from __future__ import annotations

import csv
import functools
import io
import queue
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from inference.io.arrow import arrow_mask, import_parquet, import_pyarrow, text_scalar
from inference.io.formats import FileFormat

__all__ = [
    "ARROW_GZIP_LEVEL",
    "ISAL_LEVEL",
    "ROW_GROUP_BYTES",
    "ROW_GROUP_ROWS",
    "BackgroundWriter",
    "CsvWriter",
    "GzipStream",
    "ParquetWriter",
    "open_writer",
]

#: a Parquet output gathers chunks into row groups of about this many rows (or bytes)
ROW_GROUP_ROWS = 1 << 17
ROW_GROUP_BYTES = 4 << 20
#: python-isal's level for .gz outputs (its default; ISA-L's levels are 0 to 3)
ISAL_LEVEL = 2
#: zlib's level for .gz outputs where python-isal is not installed
ARROW_GZIP_LEVEL = 1


class GzipStream:
    """A write-only gzip file: ``write(bytes-like)``, ``close()``.

    python-isal when importable (``isal``), else Arrow's gzip codec at
    :data:`ARROW_GZIP_LEVEL`, each write compressed as one gzip member.
    """

    def __init__(self, path: Path, *, use_isal: bool = True) -> None:
        self._file = open(path, "wb")  # noqa: SIM115  (closed by close())
        self._compress: Callable[[Any], bytes]
        self._flush: Callable[[], bytes] = bytes
        self.backend = "pyarrow"
        if use_isal:
            try:
                from isal import isal_zlib
            except ImportError:
                pass
            else:
                deflate = isal_zlib.compressobj(ISAL_LEVEL, isal_zlib.DEFLATED, 31)
                self._compress, self._flush = deflate.compress, deflate.flush
                self.backend = "isal"
                return
        codec = import_pyarrow().Codec("gzip", compression_level=ARROW_GZIP_LEVEL)
        self._compress = functools.partial(codec.compress, asbytes=True)

    def write(self, data: Any) -> None:
        if len(memoryview(data)):
            self._file.write(self._compress(data))

    def close(self) -> None:
        try:
            self._file.write(self._flush())
        finally:
            self._file.close()


class CsvWriter:
    """CSV text, values quoted only where needed; header written with the csv module."""

    def __init__(self, path: Path, schema: Any, fmt: FileFormat) -> None:
        pa = import_pyarrow()
        import pyarrow.csv as pacsv

        self._pa, self._pacsv = pa, pacsv
        self._stream: Any = (
            GzipStream(path)
            if fmt.compression == "gzip"
            else pa.output_stream(str(path), compression=fmt.compression)
        )
        text = io.StringIO()
        csv.writer(text, delimiter=fmt.delimiter, lineterminator="\n").writerow(schema.names)
        self._stream.write(text.getvalue().encode("utf-8"))
        self._plain = pacsv.WriteOptions(
            include_header=False, delimiter=fmt.delimiter, quoting_style="none"
        )
        self._delimiter = fmt.delimiter

    def write(self, batch: Any) -> None:
        if batch.num_rows == 0:
            return
        sink = self._pa.BufferOutputStream()
        try:
            self._pacsv.write_csv(batch, sink, self._plain)
        except self._pa.ArrowInvalid:  # a value with a delimiter, quote or newline in it
            self._stream.write(_quote_where_needed(batch, self._delimiter))
            return
        self._stream.write(sink.getvalue())

    def close(self) -> None:
        self._stream.close()


def _quote_where_needed(batch: Any, delimiter: str) -> Any:
    """CSV text of a batch, quoting only the values that hold a delimiter, a quote or a
    line break (pyarrow's own writer would quote every string of the batch)."""
    pa = import_pyarrow()
    import pyarrow.compute as pc

    special = "[" + re.escape(delimiter) + '"\r\n]'
    quote, empty, newline, sep = (text_scalar(t) for t in ('"', "", "\n", delimiter))
    no = arrow_mask(np.zeros(1, dtype=bool))[0]
    fields = []
    for arr in batch.columns:
        text = arr if pa.types.is_string(arr.type) else pc.cast(arr, pa.string())
        need = pc.fill_null(pc.match_substring_regex(text, special), no)
        if pc.any(need).as_py():
            escaped = pc.replace_substring(text, '"', '""')
            quoted = pc.binary_join_element_wise(quote, escaped, quote, empty)
            text = pc.if_else(need, quoted, text)
        fields.append(pc.fill_null(text, empty))
    lines = pc.binary_join_element_wise(*fields, sep)
    lines = pc.binary_join_element_wise(lines, empty, newline)  # each line ends with a newline
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)
    return lines.buffers()[2].slice(int(offsets[0]), int(offsets[len(lines)] - offsets[0]))


class ParquetWriter:
    """Chunks gathered into row groups of about ROW_GROUP_ROWS rows."""

    def __init__(self, path: Path, schema: Any, fmt: FileFormat) -> None:
        pa, pq = import_pyarrow(), import_parquet()
        self._pa = pa
        self._schema = schema
        self._writer = pq.ParquetWriter(
            str(path), schema, compression="snappy", use_dictionary=False
        )
        self._pending: list[Any] = []
        self._rows = 0
        self._bytes = 0

    def write(self, batch: Any) -> None:
        if batch.num_rows == 0:
            return
        self._pending.append(batch)
        self._rows += batch.num_rows
        self._bytes += batch.nbytes
        if self._rows >= ROW_GROUP_ROWS or self._bytes >= ROW_GROUP_BYTES:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            table = self._pa.Table.from_batches(self._pending, schema=self._schema)
            self._writer.write_table(table, row_group_size=max(self._rows, 1))
        self._pending, self._rows, self._bytes = [], 0, 0

    def close(self) -> None:
        try:
            self._flush()
        finally:
            self._writer.close()


def open_writer(path: Path, schema: Any, fmt: FileFormat) -> CsvWriter | ParquetWriter:
    """A writer of record batches in ``fmt`` (``write(batch)``, ``close()``)."""
    if fmt.kind == "parquet":
        return ParquetWriter(path, schema, fmt)
    return CsvWriter(path, schema, fmt)


class BackgroundWriter:
    """A writer whose ``write`` runs on its own thread, at most ``depth`` batches behind.

    Formatting CSV text or encoding a Parquet row group (pyarrow releases the GIL for
    both) then overlaps the reading and scoring of the next chunks, instead of
    stopping them. Batches are written in the order given. An error of the thread is
    raised by the next ``write`` or by ``close``; the batches after it are dropped.
    ``close`` waits for the batches given, then closes the writer.
    """

    def __init__(self, writer: CsvWriter | ParquetWriter, depth: int = 4) -> None:
        self._writer = writer
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="linreg-write", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            batch = self._queue.get()
            if batch is None:
                return
            if self._error is None:  # after an error, keep taking batches: write() never blocks
                try:
                    self._writer.write(batch)
                except BaseException as exc:  # re-raised in the caller's thread
                    self._error = exc

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def write(self, batch: Any) -> None:
        self._raise()
        self._queue.put(batch)

    def close(self) -> None:
        try:
            self._queue.put(None)
            self._thread.join()
        finally:
            self._writer.close()
        self._raise()
