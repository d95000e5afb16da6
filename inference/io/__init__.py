"""The I/O layer: reading CSV, TSV and Parquet files, and writing files atomically.

Torch-free and independent of the batch job, so that ``linreg train``
(:mod:`training.data`) and ``linreg predict`` (:mod:`inference.batch`) read files the
same way, through the names below. pyarrow is imported on first use.

- formats and parts: :class:`FileFormat`, :func:`file_format` (from the extension),
  :func:`input_parts` (a file, or a directory of part files), :func:`inspect_part`
  (a part's header, no data);
- what to read: :class:`ReadSpec` (features converted to a matrix, columns kept);
- reading: :func:`read_chunks` / :func:`read_parts` (:class:`Chunk` s of rows, bad
  rows located by file, line or row, and column), :func:`read_csv_table` (a whole
  numeric CSV file, typed, on all cores), :func:`record_batches` (a Parquet file's
  batches as stored), :func:`read_text_frame` (every cell as text, to word faults),
  :func:`file_is_utf8`, :func:`scan_text_file` (the encoding and the line lengths in
  one pass);
- limits: :data:`DEFAULT_MAX_LINE_BYTES`, the longest CSV or TSV line (and so field) a
  reader takes unless told (``max_line_bytes``; :mod:`inference.io.limits`);
- Arrow: :func:`import_pyarrow`, :func:`to_numpy`;
- atomic writes: :mod:`inference.io.atomic`.

The readers' optional C code (:mod:`inference.io.csv.native`,
:mod:`inference.io.parquet.native`) is switched off with ``LINREG_NO_NATIVE=1``;
:func:`native_status` says which is active.
"""

from __future__ import annotations

from inference.io.arrow import import_pyarrow, to_numpy
from inference.io.chunks import Chunk
from inference.io.csv.lines import file_is_utf8, scan_text_file
from inference.io.csv.reader import read_csv_table
from inference.io.formats import FileFormat, Part, file_format, input_parts
from inference.io.frames import read_frame
from inference.io.limits import DEFAULT_MAX_LINE_BYTES, check_max_line_bytes
from inference.io.native import native_status
from inference.io.parquet.reader import record_batches
from inference.io.reading import inspect_part, read_chunks, read_parts
from inference.io.spec import ReadSpec
from inference.io.text import read_text_frame

__all__ = [
    "DEFAULT_MAX_LINE_BYTES",
    "Chunk",
    "FileFormat",
    "Part",
    "ReadSpec",
    "check_max_line_bytes",
    "file_format",
    "file_is_utf8",
    "import_pyarrow",
    "input_parts",
    "inspect_part",
    "native_status",
    "read_chunks",
    "read_csv_table",
    "read_frame",
    "read_parts",
    "read_text_frame",
    "record_batches",
    "scan_text_file",
    "to_numpy",
]
