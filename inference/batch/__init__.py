"""Batch scoring of files: CSV, TSV and Parquet streamed through a model in constant memory.

``score_file(model, input, output)`` reads ``input`` in chunks, predicts each
chunk with one call to the model and appends it to ``output``, so memory stays
flat whatever the size of the file.

Input
    A ``.csv`` or ``.tsv`` file (optionally compressed: ``.gz``, ``.bz2``,
    ``.zst``) with a header line, or a ``.parquet`` / ``.pq`` file; or a
    directory of such part files (one format), taken in sorted name order, names
    starting with ``.`` or ``_`` ignored (``_SUCCESS``, ``.crc`` files).
Output
    CSV, TSV (optionally compressed as above) or Parquet, chosen by the
    extension of ``output``: the kept columns (``id_columns``, or every input
    column with ``keep_all``), then the prediction column (the model's dtype), then
    ``<prediction>_lower`` and ``<prediction>_upper`` (float64) with ``interval``.
    Columns kept from a CSV input are copied as text, exactly as written; from a
    Parquet input they keep their types.

Faults
    Every header (or Parquet schema) is checked before any data is read: a missing
    feature or id column is a :class:`~inference.errors.BatchError` at once. A bad
    row is a value that is not a number, an empty field (a missing value), NaN or
    inf, or a line with too few or too many fields. With ``bad_rows="error"`` (the
    default) the first one stops the job with a :class:`BatchError` naming the file,
    the line (CSV; the header is line 1) or the 1-based row number (Parquet), and
    the column. ``bad_rows="skip"`` drops and counts them; ``bad_rows=PATH``
    also writes them to a CSV file with the columns of :data:`BAD_ROWS_COLUMNS`
    (``record`` is the raw line of a CSV input, the row as JSON for Parquet).
    Blank lines are skipped, as pandas does, and still count for line numbers.
    One record per line: a quote left open at the end of its line (an unterminated
    quote, or a line break inside a quoted field) and a carriage return that is not
    part of a CRLF line end stop the job with a :class:`BatchError` naming the line
    whatever ``bad_rows`` says, since the lines after it could not be told apart.
    So does a line with bytes that are not UTF-8, unless they all lie in columns the
    job does not read (those are not decoded) of lines with the right number of fields.

Atomic output
    The output (and the bad-rows file) is written to a temporary file beside it,
    named ``.<name>.tmp-<host>-<pid>-<random>`` (``host``: 8 hex digits of a hash of
    the host name), flushed with fsync and renamed into place with ``os.replace``
    only when the whole input was scored (the bad-rows file just before the output;
    both are flushed before either is renamed). On any exception the temporary file is
    removed; a process killed with SIGKILL leaves only that hidden temporary, never a
    partial file at the destination, and the next job writing to the same
    destination removes it (only the temporaries of this host whose process is gone;
    never on Windows, where a process cannot be probed safely).

Speed
    A CSV file is cut into blocks of whole lines (2 MiB by default) which a pool of
    threads parses with ``pyarrow.csv`` (feature columns read as text, then cast to
    float64 in C++), while the main thread predicts with one ONNX Runtime call per

Modules: :mod:`~inference.io.formats` (formats and part files),
:mod:`~inference.batch.options` (the options and paths of a job, checked first),
:mod:`~inference.batch.plan` (columns, checked before any data is read),
:mod:`~inference.io.csv.reader` and :mod:`~inference.io.csv.lines` (CSV),
:mod:`~inference.io.parquet.reader` (Parquet), :mod:`~inference.io.chunks`
(a chunk and its conversion to a matrix), :mod:`~inference.batch.bad_rows`,
:mod:`~inference.batch.writers`, :mod:`~inference.batch.progress`,
:mod:`~inference.io.threads` and :mod:`~inference.batch.job`
(:func:`score_file`). Atomic output is :mod:`inference.io.atomic`'s.
"""

from __future__ import annotations

from inference.batch.bad_rows import BAD_ROWS_COLUMNS
from inference.batch.job import RELEASE_EVERY, BatchReport, score_file
from inference.batch.options import (
    JobFiles,
    ScoreOptions,
    check_destination,
    check_interval_kind,
    check_paths,
    job_files,
)
from inference.batch.plan import plan_job
from inference.batch.progress import Progress
from inference.batch.writers import ROW_GROUP_BYTES, ROW_GROUP_ROWS, open_writer
from inference.io.atomic import remove_stale_temporaries
from inference.io.csv.reader import DEFAULT_CSV_BLOCK
from inference.io.formats import (
    COMPRESSIONS,
    CSV_DELIMITERS,
    PARQUET_SUFFIXES,
    FileFormat,
    file_format,
    input_parts,
)
from inference.io.parquet.reader import DEFAULT_PARQUET_ROWS

__all__ = [
    "BAD_ROWS_COLUMNS",
    "COMPRESSIONS",
    "CSV_DELIMITERS",
    "DEFAULT_CSV_BLOCK",
    "DEFAULT_PARQUET_ROWS",
    "PARQUET_SUFFIXES",
    "RELEASE_EVERY",
    "ROW_GROUP_BYTES",
    "ROW_GROUP_ROWS",
    "BatchReport",
    "FileFormat",
    "JobFiles",
    "Progress",
    "ScoreOptions",
    "check_destination",
    "check_interval_kind",
    "check_paths",
    "file_format",
    "input_parts",
    "job_files",
    "open_writer",
    "plan_job",
    "remove_stale_temporaries",
    "score_file",
]
