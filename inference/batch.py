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
    block and writes. pyarrow and ONNX Runtime release the GIL, so the threads run
    in parallel. pandas is never imported.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import secrets
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from inference.errors import BatchError
from inference.intervals import IntervalPrediction
from inference.leftovers import host_tag, process_gone, writer_tag
from inference.predictor import Predictor

__all__ = [
    "BAD_ROWS_COLUMNS",
    "BatchReport",
    "input_parts",
    "score_file",
]

#: columns of the bad-rows file written with ``bad_rows=PATH``
BAD_ROWS_COLUMNS = ("file", "line", "row", "column", "error", "record")
CSV_DELIMITERS = {".csv": ",", ".tsv": "\t", ".tab": "\t"}
PARQUET_SUFFIXES = (".parquet", ".pq")
COMPRESSIONS = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd"}
#: bytes of CSV text per chunk when ``chunk_rows`` is not given
DEFAULT_CSV_BLOCK = 2 << 20
#: rows per Parquet chunk when ``chunk_rows`` is not given
DEFAULT_PARQUET_ROWS = 32_768
#: a Parquet output gathers chunks into row groups of about this many rows (or bytes)
ROW_GROUP_ROWS = 1 << 20
ROW_GROUP_BYTES = 16 << 20
#: Parquet chunks between two calls to the Arrow memory pool's release_unused(): the
#: decoder's buffers would otherwise stay with the allocator (CSV blocks reuse theirs)
RELEASE_EVERY = 8
_MAX_BLOCK = 256 << 20
_MAX_HEADER = 16 << 20

T = TypeVar("T")
R = TypeVar("R")


def _pyarrow() -> Any:
    try:
        import pyarrow
    except ImportError as exc:  # pragma: no cover - pyarrow is installed with the extras
        raise ImportError("batch scoring needs pyarrow: pip install 'linreg-onnx[tables]'") from exc
    return pyarrow


# --- formats and parts --------------------------------------------------------
@dataclass(frozen=True)
class FileFormat:
    """How a file is read or written: ``kind`` "csv" or "parquet"."""

    kind: str
    delimiter: str = ","
    compression: str | None = None


def file_format(path: str | Path, override: str | None = None) -> FileFormat:
    """The format of ``path`` from its extension (``override``: "csv", "tsv" or "parquet")."""
    path = Path(path)
    suffixes = [s.lower() for s in path.suffixes]
    compression = None
    if suffixes and suffixes[-1] in COMPRESSIONS:
        compression = COMPRESSIONS[suffixes.pop()]
    ext = f".{override.lower()}" if override else (suffixes[-1] if suffixes else "")
    if ext in CSV_DELIMITERS:
        return FileFormat("csv", CSV_DELIMITERS[ext], compression)
    if ext in PARQUET_SUFFIXES and compression is None:
        return FileFormat("parquet")
    raise ValueError(
        f"{path}: cannot tell the format from {''.join(path.suffixes) or 'no extension'!r}; "
        "expected .csv or .tsv (optionally .gz, .bz2 or .zst) or .parquet"
    )


def input_parts(path: str | Path, input_format: str | None = None) -> list[Path]:
    """The files to read: ``path`` itself, or the part files of a directory, sorted."""
    path = Path(path)
    if path.is_dir():
        parts = []
        for p in sorted(path.iterdir()):
            if p.name.startswith((".", "_")) or not p.is_file():
                continue
            try:
                file_format(p, input_format)
            except ValueError:
                continue
            parts.append(p)
        if not parts:
            raise BatchError(
                "a directory without .csv, .tsv or .parquet part files", file=str(path)
            )
        kinds = {file_format(p, input_format).kind for p in parts}
        if len(kinds) > 1:
            raise BatchError(
                "a directory that mixes CSV and Parquet parts; expected one format",
                file=str(path),
            )
        return parts
    if path.is_file():
        file_format(path, input_format)
        return [path]
    raise BatchError("no such file or directory", file=str(path))


@dataclass
class _Part:
    path: Path
    fmt: FileFormat
    columns: list[str]
    types: dict[str, Any] = field(default_factory=dict)  # Parquet: name -> arrow type
    rows: int | None = None  # Parquet: rows in the file
    size: int = 0
    line_bytes: float = 0.0  # CSV: mean length of the first lines

    @property
    def name(self) -> str:
        return str(self.path)


def _open_input(part: _Part) -> Any:
    pa = _pyarrow()
    return pa.input_stream(str(part.path), compression=part.fmt.compression)


def _inspect_csv(path: Path, fmt: FileFormat) -> _Part:
    part = _Part(path, fmt, [], size=path.stat().st_size)
    head = b""
    with _open_input(part) as f:
        while b"\n" not in head and len(head) < _MAX_HEADER:
            chunk = f.read(64 << 10)
            if not chunk:
                break
            head += chunk
        if b"\n" in head and head.count(b"\n") < 8:
            head += f.read(64 << 10)
    header, _, rest = head.partition(b"\n")
    if not header.strip():
        raise BatchError(
            "no header line; expected the column names on the first line", file=str(path), line=1
        )
    try:
        text = header.decode("utf-8-sig").rstrip("\r")
    except UnicodeDecodeError as exc:
        raise BatchError(f"the header is not UTF-8 ({exc})", file=str(path), line=1) from exc
    problem = _line_problem(text.encode("utf-8"), ord(fmt.delimiter))
    if problem is not None:
        raise BatchError(problem[1], file=str(path), line=1)
    try:
        part.columns = next(csv.reader([text], delimiter=fmt.delimiter), [])
    except csv.Error as exc:  # a name longer than the csv module's field limit
        raise BatchError(f"cannot read the header ({exc})", file=str(path), line=1) from exc
    lines = rest.count(b"\n")
    part.line_bytes = len(rest) / lines if lines else max(len(header), 1)
    return part


def _inspect_parquet(path: Path, fmt: FileFormat) -> _Part:
    pq = _parquet()
    try:
        pf = pq.ParquetFile(str(path))
    except Exception as exc:  # pyarrow raises ArrowInvalid or OSError for a damaged file
        raise BatchError(f"not a readable Parquet file ({exc})", file=str(path)) from exc
    schema = pf.schema_arrow
    part = _Part(
        path,
        fmt,
        list(schema.names),
        types={f.name: f.type for f in schema},
        rows=pf.metadata.num_rows,
        size=path.stat().st_size,
    )
    pf.close()
    return part


def _parquet() -> Any:
    _pyarrow()
    import pyarrow.parquet as pq

    return pq


# --- the plan: which columns, checked before any data is read ------------------
@dataclass
class _Plan:
    features: list[str]
    kept: list[str]
    needed: list[str]  # kept, then features not kept
    out_names: list[str]
    out_schema: Any
    dtype: np.dtype


def _numeric_or_text(pa: Any, t: Any) -> bool:
    types = pa.types
    return bool(
        types.is_integer(t)
        or types.is_floating(t)
        or types.is_decimal(t)
        or types.is_string(t)
        or types.is_large_string(t)
        or types.is_null(t)
    )


def plan_job(
    paths: Sequence[Path],
    input_format: str | None,
    predictor: Predictor,
    *,
    id_columns: Sequence[str] | None,
    keep_all: bool,
    prediction_column: str,
    interval: str | None,
) -> tuple[list[_Part], _Plan]:
    """Read every part's header (or Parquet schema), no data, and plan the output
    columns; a missing or repeated column raises :class:`BatchError` here, before
    any row is read. Shared by the streaming and the Dask engines."""
    parts = [
        (_inspect_csv if fmt.kind == "csv" else _inspect_parquet)(path, fmt)
        for path in paths
        for fmt in [file_format(path, input_format)]
    ]
    plan = _make_plan(
        parts,
        predictor,
        id_columns=id_columns,
        keep_all=keep_all,
        prediction_column=prediction_column,
        interval=interval,
    )
    return parts, plan


def _make_plan(
    parts: list[_Part],
    predictor: Predictor,
    *,
    id_columns: Sequence[str] | None,
    keep_all: bool,
    prediction_column: str,
    interval: str | None,
) -> _Plan:
    pa = _pyarrow()
    features = list(predictor.features)
    first = parts[0]
    kept = list(first.columns) if keep_all else list(id_columns or [])
    if len(set(kept)) != len(kept):
        raise BatchError(f"repeated column names in {kept}", file=first.name)
    for part in parts:
        line = 1 if part.fmt.kind == "csv" else None
        for name in features + kept:
            if name not in part.columns:
                role = "the model needs it" if name in features else "asked to keep it"
                raise BatchError(
                    f"no such column ({role}); the file has {part.columns}, the model "
                    f"reads {features}",
                    file=part.name,
                    line=line,
                    column=name,
                )
            if part.columns.count(name) > 1:
                raise BatchError(
                    "the header names this column more than once",
                    file=part.name,
                    line=line,
                    column=name,
                )
        if keep_all and list(part.columns) != kept:
            raise BatchError(
                f"columns {part.columns} differ from the first part's {kept} "
                f"({first.name}); keep_all needs the same columns in every part",
                file=part.name,
                line=line,
            )
        if part.fmt.kind == "parquet":
            for name in features:
                t = part.types[name]
                if not _numeric_or_text(pa, t):
                    raise BatchError(
                        f"holds {t}; expected numbers (integer, float or decimal) or text",
                        file=part.name,
                        column=name,
                    )
    out_names = kept + [prediction_column]
    if interval is not None:
        out_names += [f"{prediction_column}_lower", f"{prediction_column}_upper"]
    clash = [n for n in out_names[len(kept) :] if n in kept]
    if clash:
        raise ValueError(
            f"the output would have two columns named {clash[0]!r} (an input column and a "
            "prediction column); choose another prediction_column (--prediction-column)"
        )
    if first.fmt.kind == "csv":
        kept_types = [pa.string()] * len(kept)
    else:
        kept_types = [first.types[n] for n in kept]
    out_types = kept_types + [pa.from_numpy_dtype(predictor.dtype)]
    if interval is not None:
        out_types += [pa.float64(), pa.float64()]
    schema = pa.schema([pa.field(n, t) for n, t in zip(out_names, out_types, strict=True)])
    needed = kept + [f for f in features if f not in kept]
    return _Plan(features, kept, needed, out_names, schema, predictor.dtype)


# --- reading: chunks prepared in worker threads --------------------------------
@dataclass
class _Chunk:
    """One chunk read and converted, ready to predict."""

    part: _Part
    names: list[str]  # the features, in the model's order
    X: np.ndarray  # (n, k) of the model's dtype; NaN where a value is missing or not a number
    kept: list[Any]  # arrow arrays of length n
    feature_arrays: list[Any]  # as read, for describing bad rows
    failures: dict[int, tuple[str, str]]  # row -> (column, reason) for text that is not a number
    first_row: int = 1  # 1-based data row number of the chunk's first row
    first_line: int | None = None  # CSV: line number of the chunk's first row (set in order)
    invalid: list[tuple[int, str, str | None, str]] = field(default_factory=list)
    # CSV lines with too few or too many fields: (chunk row, reason, column, text)
    raw: Any = None  # CSV: the block (an Arrow buffer)
    batch: Any = None  # Parquet: the record batch, for bad rows' records
    nbytes: int = 0
    newlines: int = 0  # CSV: newlines in the block
    error: Exception | None = None  # CSV: why the block could not be parsed
    fatal: tuple[int, str | None, str] | None = None  # CSV: (block line, column, reason)
    _lines: list[bytes] | None = None

    @property
    def n(self) -> int:
        return int(self.X.shape[0])

    def chunk_rows(self) -> np.ndarray:
        """For each table row, its 1-based row within the chunk (counting invalid lines)."""
        if not self.invalid:
            return np.arange(1, self.n + 1)
        total = self.n + len(self.invalid)
        return np.setdiff1d(np.arange(1, total + 1), [r for r, *_ in self.invalid])

    def line_text(self, chunk_row: int) -> str:
        if self.raw is None:
            return ""
        if self._lines is None:
            self._lines = self.raw.to_pybytes().split(b"\n")
        raw = self._lines[chunk_row - 1] if chunk_row - 1 < len(self._lines) else b""
        return raw.rstrip(b"\r").decode("utf-8", errors="replace")

    def locate(self, chunk_row: int) -> tuple[int | None, int]:
        line = None if self.first_line is None else self.first_line + chunk_row - 1
        return line, self.first_row + chunk_row - 1


def _unparseable(pc: Any, pa: Any, arr: Any, start: int = 0) -> list[int]:
    """Positions of values in a text array that do not cast to float64 (bisection)."""
    try:
        pc.cast(arr, pa.float64())
        return []
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        if len(arr) == 1:
            return [start]
    mid = len(arr) // 2
    return _unparseable(pc, pa, arr.slice(0, mid), start) + _unparseable(
        pc, pa, arr.slice(mid), start + mid
    )


def _numpy(arr: Any) -> np.ndarray:
    """A numeric Arrow array as numpy, without a copy when it has no nulls (NaN for nulls).

    (``Array.to_numpy`` would import pandas, which the streaming job does not need.)
    """
    pa = _pyarrow()
    import pyarrow.compute as pc

    if arr.null_count:
        if not pa.types.is_floating(arr.type):
            arr = pc.cast(arr, pa.float64())
        arr = pc.fill_null(arr, _arrow(np.array([np.nan]), arr.type)[0])
    dtype = np.dtype(_NUMPY_DTYPES[str(arr.type)])
    return np.frombuffer(
        arr.buffers()[1], dtype=dtype, count=len(arr), offset=arr.offset * dtype.itemsize
    )


def _arrow(values: np.ndarray, arrow_type: Any) -> Any:
    """A 1-D numpy array as an Arrow array of ``arrow_type``, sharing its memory when it can
    (``pa.array`` would import pandas to check for a Series)."""
    pa = _pyarrow()
    values = np.ascontiguousarray(values, dtype=_NUMPY_DTYPES[str(arrow_type)])
    return pa.Array.from_buffers(arrow_type, len(values), [None, pa.py_buffer(values)])


def _text(value: str) -> Any:
    """An Arrow string scalar (``pa.scalar`` would import pandas)."""
    pa = _pyarrow()
    data = value.encode("utf-8")
    offsets = np.array([0, len(data)], dtype=np.int32)
    array = pa.Array.from_buffers(pa.string(), 1, [None, pa.py_buffer(offsets), pa.py_buffer(data)])
    return array[0]


def _arrow_mask(mask: np.ndarray) -> Any:
    pa = _pyarrow()
    bits = np.packbits(np.asarray(mask, dtype=bool), bitorder="little")
    return pa.Array.from_buffers(pa.bool_(), len(mask), [None, pa.py_buffer(bits)])


_NUMPY_DTYPES = {
    "halffloat": "float16",
    "float": "float32",
    "double": "float64",
    **{f"{sign}int{bits}": f"{sign}int{bits}" for sign in ("", "u") for bits in (8, 16, 32, 64)},
}


def _to_float(arr: Any, name: str) -> tuple[Any, dict[int, tuple[str, str]]]:
    """A column as numpy (float64 or the column's numeric dtype; NaN for nulls), and the
    rows whose text is not a number."""
    pa = _pyarrow()
    import pyarrow.compute as pc

    t = arr.type
    if pa.types.is_floating(t) or pa.types.is_integer(t):
        return _numpy(arr), {}
    if not (pa.types.is_string(t) or pa.types.is_large_string(t)):
        return _numpy(pc.cast(arr, pa.float64())), {}
    try:
        return _numpy(pc.cast(arr, pa.float64())), {}
    except pa.ArrowInvalid:
        pass
    trimmed = pc.utf8_trim_whitespace(arr)
    try:
        return _numpy(pc.cast(trimmed, pa.float64())), {}
    except pa.ArrowInvalid:
        pass
    bad = _unparseable(pc, pa, trimmed)
    mask = np.zeros(len(arr), dtype=bool)
    mask[bad] = True
    cleaned = pc.if_else(_arrow_mask(mask), pa.nulls(1, trimmed.type)[0], trimmed)
    failures = {i: (name, f"{_shown(arr[i].as_py())} is not a number") for i in bad}
    return _numpy(pc.cast(cleaned, pa.float64())), failures


def _matrix(
    arrays: Sequence[Any], names: Sequence[str], dtype: np.dtype
) -> tuple[np.ndarray, dict[int, tuple[str, str]]]:
    n = len(arrays[0]) if arrays else 0
    X = np.empty((n, len(arrays)), dtype=dtype)
    failures: dict[int, tuple[str, str]] = {}
    with np.errstate(over="ignore"):  # beyond float32's range: inf, reported as a bad row
        for j, (arr, name) in enumerate(zip(arrays, names, strict=True)):
            values, bad = _to_float(arr, name)
            X[:, j] = values
            for i, what in bad.items():
                failures.setdefault(i, what)
    return X, failures


def _single(chunked: Any) -> Any:
    return chunked.chunk(0) if chunked.num_chunks == 1 else chunked.combine_chunks()


_NEWLINE, _CR, _QUOTE = 10, 13, 34
_SCAN = 1 << 20


def _last_newline(buf: Any) -> int:
    """Offset of the last ``\\n`` in an Arrow buffer, or -1 (scanned in 1 MiB windows)."""
    a = np.frombuffer(buf, dtype=np.uint8)
    end = len(a)
    while end > 0:
        start = max(0, end - _SCAN)
        hits = np.flatnonzero(a[start:end] == _NEWLINE)
        if hits.size:
            return start + int(hits[-1])
        end = start
    return -1


def _first_newline(buf: Any) -> int:
    a = np.frombuffer(buf, dtype=np.uint8)
    for start in range(0, len(a), _SCAN):
        hits = np.flatnonzero(a[start : start + _SCAN] == _NEWLINE)
        if hits.size:
            return start + int(hits[0])
    return -1


def _count_newlines(buf: Any) -> int:
    a = np.frombuffer(buf, dtype=np.uint8)
    return sum(
        int(np.count_nonzero(a[start : start + _SCAN] == _NEWLINE))
        for start in range(0, len(a), _SCAN)
    )


def _last_byte(buf: Any) -> int:
    return int(np.frombuffer(buf, dtype=np.uint8, count=1, offset=buf.size - 1)[0])


def _has_bare_cr(buf: Any) -> bool:
    """Whether a carriage return is followed by anything but a line feed (the end of the
    file's last line excepted)."""
    a = np.frombuffer(buf, dtype=np.uint8)
    for start in range(0, len(a), _SCAN):
        cr = np.flatnonzero(a[start : start + _SCAN] == _CR) + start
        cr = cr[cr + 1 < len(a)]
        if cr.size and (a[cr + 1] != _NEWLINE).any():
            return True
    return False


def _last_line_open(buf: Any, delimiter: int) -> bool:
    """Whether the block's last line leaves a quote open (a field cut at the block's end)."""
    end = buf.size - 1 if buf.size and _last_byte(buf) == _NEWLINE else buf.size
    start = _last_newline(buf.slice(0, end)) + 1
    line = buf.slice(start, end - start).to_pybytes()
    return b'"' in line and _line_problem(line, delimiter) is not None


def _line_problem(line: bytes, delimiter: int) -> tuple[int, str] | None:
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


def _first_broken_line(
    data: bytes, delimiter: int, columns: list[str]
) -> tuple[int, str | None, str]:
    """(1-based line in the block, column, reason) of the first line that is not whole records."""
    for number, line in enumerate(data.split(b"\n"), 1):
        problem = _line_problem(line, delimiter)
        if problem is not None:
            field, reason = problem
            return number, columns[field] if field < len(columns) else None, reason
    return 1, None, f"these lines do not parse into one record each; {_ONE_RECORD}"


def _is_utf8(buf: Any) -> bool:
    """Whether a buffer is valid UTF-8 (checked by Arrow, in C++)."""
    pa = _pyarrow()
    offsets = pa.py_buffer(np.array([0, buf.size], dtype=np.int64))
    try:
        pa.Array.from_buffers(pa.large_binary(), 1, [None, offsets, buf]).cast(pa.large_string())
    except pa.ArrowInvalid:
        return False
    return True


def _first_undecodable(data: bytes, part: _Part, plan: _Plan) -> tuple[int, str | None, str] | None:
    """(1-based line in the block, column, reason) of the first line with bytes that are
    not UTF-8 in a column the job reads, or anywhere in a line with a wrong number of
    fields; None when there is none."""
    try:
        data.decode("utf-8")
        return None
    except UnicodeDecodeError:
        pass
    read = {part.columns.index(name) for name in plan.needed}
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
                    reason = f"{_shown(raw)} is not UTF-8 text; expected a UTF-8 file"
                    if not whole:
                        reason += f" (in a line of {len(fields)} field(s), expected "
                        reason += f"{len(part.columns)})"
                    column = part.columns[j] if j < len(part.columns) else None
                    return number, column, reason
    return None


def _shown(value: Any, limit: int = 80) -> str:
    """``repr(value)``, cut to about ``limit`` characters for a message."""
    text = repr(value)
    if len(text) <= limit:
        return text
    size = len(value) if isinstance(value, str | bytes) else len(text)
    return f"{text[: limit - 3]}... ({size} characters)"


def _concat(pa: Any, head: Any, tail: Any) -> Any:
    if head is None or head.size == 0:
        return tail
    out = pa.allocate_buffer(head.size + tail.size)
    view = np.frombuffer(out, dtype=np.uint8)
    view[: head.size] = np.frombuffer(head, dtype=np.uint8)
    view[head.size :] = np.frombuffer(tail, dtype=np.uint8)
    return out


def _csv_blocks(part: _Part, block_bytes: int) -> Iterator[Any]:
    """Arrow buffers of whole lines, in order, after the header line.

    The bytes live in Arrow's memory pool (not Python's heap), so memory is given
    back between blocks whatever the allocator of the platform does.
    """
    pa = _pyarrow()
    with _open_input(part) as f:
        rest = None
        while True:  # skip the header line
            chunk = f.read_buffer(block_bytes)
            if chunk.size == 0:
                return
            nl = _first_newline(chunk)
            if nl >= 0:
                rest = chunk.slice(nl + 1)
                break
        while True:
            chunk = f.read_buffer(block_bytes)
            if chunk.size == 0:
                if rest is not None and rest.size:
                    yield rest  # the last line, without a newline
                return
            cut = _last_newline(chunk)
            if cut < 0:
                rest = _concat(pa, rest, chunk)
                continue
            yield _concat(pa, rest, chunk.slice(0, cut + 1))
            rest = chunk.slice(cut + 1)


def _prepare_csv(part: _Part, plan: _Plan, block: Any) -> _Chunk:
    pa = _pyarrow()
    import pyarrow.csv as pacsv

    internal = [f"c{i}" for i in range(len(part.columns))]
    index = {name: part.columns.index(name) for name in plan.needed}
    include = [internal[index[name]] for name in plan.needed]
    invalid: list[tuple[int, str, str | None, str]] = []

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
                {internal[index[f]]: pa.float64() for f in plan.features if f not in plan.kept}
            )
        return pacsv.read_csv(
            pa.BufferReader(block),
            read_options=pacsv.ReadOptions(
                column_names=internal, use_threads=False, block_size=block.size + 1
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

    newlines = _count_newlines(block)

    def failed(error: Exception | None, fatal: tuple[int, str | None, str] | None) -> _Chunk:
        return _Chunk(
            part,
            plan.features,
            np.empty((0, 0)),
            [],
            [],
            {},
            newlines=newlines,
            error=error,
            fatal=fatal,
        )

    delimiter = ord(part.fmt.delimiter)
    if not _is_utf8(block):  # before pyarrow, whose bad-row handler cannot decode such a line
        where = _first_undecodable(block.to_pybytes(), part, plan)
        if where is not None:
            return failed(None, where)
    if _has_bare_cr(block):  # pyarrow would end a record there: lines and rows would drift
        return failed(None, _first_broken_line(block.to_pybytes(), delimiter, part.columns))
    try:
        try:
            table = parse(typed=True)
        except pa.ArrowInvalid:
            # A value that is not a number: read the block again as text, which finds
            # each such value (slower, and only for this block).
            table = parse(typed=False)
    except pa.ArrowException as exc:
        return failed(exc, _first_undecodable(block.to_pybytes(), part, plan))
    # One record per line, or the row -> line mapping (line numbers, blank lines, the
    # records of bad rows) would be wrong: a quote left open swallows the next lines.
    lines = newlines + (0 if block.size and _last_byte(block) == _NEWLINE else 1)
    if table.num_rows + len(invalid) != lines or _last_line_open(block, delimiter):
        return failed(None, _first_broken_line(block.to_pybytes(), delimiter, part.columns))
    columns = {name: _single(table.column(internal[index[name]])) for name in plan.needed}
    feature_arrays = [columns[f] for f in plan.features]
    X, failures = _matrix(feature_arrays, plan.features, plan.dtype)
    return _Chunk(
        part=part,
        names=plan.features,
        X=X,
        kept=[columns[name] for name in plan.kept],
        feature_arrays=feature_arrays,
        failures=failures,
        invalid=sorted(invalid),
        raw=block,
        nbytes=block.size,
        newlines=newlines,
    )


def _parquet_chunks(part: _Part, plan: _Plan, rows: int) -> Iterator[_Chunk]:
    """The chunks of a Parquet file, read ``rows`` at a time (64 KiB column buffers)."""
    pa, pq = _pyarrow(), _parquet()
    pf = pq.ParquetFile(str(part.path), buffer_size=64 << 10, pre_buffer=False)
    first = 1
    try:
        batches = pf.iter_batches(batch_size=rows, columns=plan.needed, use_threads=True)
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                return
            except pa.ArrowException as exc:
                raise BatchError(f"cannot read it ({exc})", file=part.name, row=first) from exc
            yield _prepare_parquet(part, plan, first, batch)
            first += batch.num_rows
    finally:
        pf.close()


def _prepare_parquet(part: _Part, plan: _Plan, first_row: int, batch: Any) -> _Chunk:
    feature_arrays = [batch.column(f) for f in plan.features]
    X, failures = _matrix(feature_arrays, plan.features, plan.dtype)
    return _Chunk(
        part=part,
        names=plan.features,
        X=X,
        kept=[batch.column(name) for name in plan.kept],
        feature_arrays=feature_arrays,
        failures=failures,
        first_row=first_row,
        batch=batch,
        nbytes=batch.nbytes,
    )


def _prefetch(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    """Iterate ``items`` in a background thread, at most ``depth`` items ahead."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="linreg-read")
    pending: deque[Future[T]] = deque()
    done = object()

    def pull() -> Any:
        return next(items, done)

    try:
        while True:
            while len(pending) < depth:
                pending.append(pool.submit(pull))
            item = pending.popleft().result()
            if item is done:
                return
            yield item
    finally:
        for fut in pending:
            fut.cancel()
        pool.shutdown(wait=True)
        close = getattr(items, "close", None)
        if close is not None:
            close()


def _ordered_map(fn: Callable[[T], R], items: Iterable[T], workers: int) -> Iterator[R]:
    """``map(fn, items)`` on a thread pool, results in order, a few items ahead at most."""
    if workers <= 1:
        yield from map(fn, items)
        return
    depth = 2 * workers
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="linreg-batch")
    pending: deque[Future[R]] = deque()
    try:
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) > depth:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for fut in pending:
            fut.cancel()
        pool.shutdown(wait=True)


# --- bad rows -------------------------------------------------------------------
@dataclass
class _BadRow:
    file: str
    line: int | None
    row: int
    column: str | None
    reason: str
    record: str

    def error(self) -> BatchError:
        return BatchError(
            self.reason, file=self.file, line=self.line, row=self.row, column=self.column
        )


def _field_text(chunk: _Chunk, i: int, chunk_row: int, name: str) -> Any:
    """A value as it was written: the CSV field's text, or the Parquet value."""
    if chunk.raw is not None:
        line = chunk.line_text(chunk_row)
        try:
            fields = next(csv.reader([line], delimiter=chunk.part.fmt.delimiter), [])
        except csv.Error:  # a field longer than the csv module's limit: use the value read
            fields = []
        j = chunk.part.columns.index(name)
        if j < len(fields):
            return fields[j]
    return chunk.feature_arrays[chunk.names.index(name)][i].as_py()


def _describe_row(chunk: _Chunk, i: int, chunk_row: int, dtype: np.dtype) -> tuple[str | None, str]:
    """(column, reason) for table row ``i`` whose prediction is not finite."""
    if i in chunk.failures:
        return chunk.failures[i]
    for j, name in enumerate(chunk.names):
        if not chunk.feature_arrays[j][i].is_valid:
            return name, "missing value (an empty field)"
        if not np.isfinite(chunk.X[i, j]):
            shown = _field_text(chunk, i, chunk_row, name)
            try:
                extra = f" (beyond the range of {dtype})" if np.isfinite(float(shown)) else ""
            except (TypeError, ValueError):
                extra = ""
            return name, f"{_shown(shown)} is not a finite number{extra}"
    return None, f"the prediction overflowed {dtype} although every input is finite"


def _record(chunk: _Chunk, i: int, chunk_row: int) -> str:
    if chunk.raw is not None:
        return chunk.line_text(chunk_row)
    if chunk.batch is not None:
        return json.dumps(chunk.batch.slice(i, 1).to_pylist()[0], default=str)
    return ""


def _find_bad(chunk: _Chunk, ok: np.ndarray, dtype: np.dtype) -> tuple[list[_BadRow], np.ndarray]:
    """Bad rows of a chunk in file order, and the mask of rows to drop silently (blank lines)."""
    bad: list[_BadRow] = []
    blank = np.zeros(chunk.n, dtype=bool)
    rows = chunk.chunk_rows()
    for index in np.flatnonzero(~ok):
        i = int(index)
        chunk_row = int(rows[i])
        if chunk.raw is not None and chunk.line_text(chunk_row) == "":  # "\t\t" is not blank
            blank[i] = True
            continue
        column, reason = _describe_row(chunk, i, chunk_row, dtype)
        line, row = chunk.locate(chunk_row)
        bad.append(
            _BadRow(chunk.part.name, line, row, column, reason, _record(chunk, i, chunk_row))
        )
    for chunk_row, reason, column, text in chunk.invalid:
        line, row = chunk.locate(chunk_row)
        bad.append(_BadRow(chunk.part.name, line, row, column, reason, text))
    bad.sort(key=lambda b: b.row)
    return bad, blank


# --- writing ------------------------------------------------------------------
class _AtomicFile:
    """A temporary name beside ``dest``; :meth:`commit` fsyncs it and renames it into place."""

    def __init__(self, dest: Path) -> None:
        self.dest = dest
        remove_stale_temporaries(dest)
        name = f".{dest.name}.tmp-{writer_tag()}{secrets.token_hex(4)}"
        self.tmp = dest.parent / name

    def discard(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.tmp)

    def sync(self) -> None:
        """Flush the temporary to disk (fsync)."""
        fd = os.open(self.tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def commit(self) -> None:
        self.sync()
        os.replace(self.tmp, self.dest)
        _sync_directory(self.dest.parent)


def _commit_together(files: Sequence[_AtomicFile]) -> None:
    """Flush every temporary first, then rename them into place one right after the
    other: a kill lands between two renames only in that short window (each file is
    still whole, old or new; the set is not atomic)."""
    for f in files:
        f.sync()
    for f in files:
        os.replace(f.tmp, f.dest)
    for directory in dict.fromkeys(f.dest.parent for f in files):
        _sync_directory(directory)


def _sync_directory(directory: Path) -> None:
    try:
        dfd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - a directory that cannot be opened (Windows)
        return
    try:
        os.fsync(dfd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(dfd)


def remove_stale_temporaries(dest: Path) -> list[Path]:
    """Remove the temporaries of ``dest`` left by killed jobs: files named
    ``.<name>.tmp-<host>-<pid>-<random>`` of this host whose process no longer exists.
    A live process's temporary (this one's included) is never touched. Returns the
    paths removed."""
    pattern = re.compile(rf"\.{re.escape(dest.name)}\.tmp-([0-9a-f]{{8}})-(\d+)-[0-9a-f]{{8}}")
    host, removed = host_tag(), list[Path]()
    try:
        entries = list(os.scandir(dest.parent))
    except OSError:
        return removed
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match is None or match.group(1) != host:
            continue
        pid = int(match.group(2))
        if pid == os.getpid() or not process_gone(pid):
            continue
        try:
            if entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:  # gone already, or not ours to remove
            continue
    return removed


class _CsvWriter:
    """CSV text, values quoted only where needed; header written with the csv module."""

    def __init__(self, path: Path, schema: Any, fmt: FileFormat) -> None:
        pa = _pyarrow()
        import pyarrow.csv as pacsv

        self._pa, self._pacsv = pa, pacsv
        self._stream = pa.output_stream(str(path), compression=fmt.compression)
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
    pa = _pyarrow()
    import pyarrow.compute as pc

    special = "[" + re.escape(delimiter) + '"\r\n]'
    quote, empty, newline, sep = (_text(t) for t in ('"', "", "\n", delimiter))
    no = _arrow_mask(np.zeros(1, dtype=bool))[0]
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


class _ParquetWriter:
    """Chunks gathered into row groups of about ROW_GROUP_ROWS rows."""

    def __init__(self, path: Path, schema: Any, fmt: FileFormat) -> None:
        pa, pq = _pyarrow(), _parquet()
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


def open_writer(path: Path, schema: Any, fmt: FileFormat) -> _CsvWriter | _ParquetWriter:
    """A writer of record batches in ``fmt`` (``write(batch)``, ``close()``)."""
    if fmt.kind == "parquet":
        return _ParquetWriter(path, schema, fmt)
    return _CsvWriter(path, schema, fmt)


class _BadRowsFile:
    def __init__(self, path: Path) -> None:
        self._file = open(path, "w", encoding="utf-8", newline="")  # noqa: SIM115
        self._writer = csv.writer(self._file, lineterminator="\n")
        self._writer.writerow(BAD_ROWS_COLUMNS)

    def write(self, rows: Iterable[_BadRow]) -> None:
        for b in rows:
            line = "" if b.line is None else b.line
            self._writer.writerow([b.file, line, b.row, b.column or "", b.reason, b.record])

    def close(self) -> None:
        self._file.close()


# --- progress -----------------------------------------------------------------
class _Progress:
    """A tqdm bar counting rows (rate in rows/s), only when asked or on a terminal."""

    def __init__(self, enabled: bool | None, total_rows: int | None, total_bytes: int | None):
        if enabled is None:
            enabled = sys.stderr.isatty()
        self._bar = None
        self._total_bytes = total_bytes
        if enabled:
            try:
                from tqdm.auto import tqdm
            except ImportError:  # pragma: no cover - tqdm comes with the extras
                return
            self._bar = tqdm(
                total=total_rows,
                unit=" rows",
                unit_scale=True,
                file=sys.stderr,
                dynamic_ncols=True,
                desc="scoring",
            )

    def update(self, rows: int, rows_done: int, bytes_done: int) -> None:
        if self._bar is None:
            return
        if self._total_bytes and bytes_done:  # CSV: estimate the rows from the bytes read
            self._bar.total = max(rows_done, int(rows_done * self._total_bytes / bytes_done))
        self._bar.update(rows)

    def close(self, rows_done: int) -> None:
        if self._bar is not None:
            self._bar.total = rows_done
            self._bar.refresh()
            self._bar.close()


# --- the job ------------------------------------------------------------------
@dataclass(frozen=True)
class BatchReport:
    """What a batch job did. ``rows_read`` counts every data row (blank lines excepted),
    ``rows_written`` the rows scored, ``rows_bad`` the rows set aside."""

    input: str
    output: str
    parts: int
    rows_read: int
    rows_written: int
    rows_bad: int
    seconds: float
    bad_rows_file: str | None = None
    engine: str = "stream"

    @property
    def rows_per_second(self) -> float:
        return self.rows_written / self.seconds if self.seconds > 0 else float("inf")

    def summary(self) -> str:
        """One line, e.g. ``scored 5000000 rows in 12.3 s (406,000 rows/s)``."""
        text = (
            f"scored {self.rows_written} rows in {self.seconds:.1f} s "
            f"({self.rows_per_second:,.0f} rows/s)"
        )
        if self.rows_bad or self.bad_rows_file:
            where = f", written to {self.bad_rows_file}" if self.bad_rows_file else ""
            text += f"; {self.rows_bad} bad row(s) set aside{where}"
        return text


def check_destination(output: Path, inputs: Sequence[Path], *, overwrite: bool) -> None:
    """Usage checks on an output path (ValueError)."""
    if output.is_dir():
        raise ValueError(f"{output}: is a directory; expected an output file name")
    if output.exists() and not overwrite:
        raise ValueError(f"{output}: exists; pass overwrite=True (--overwrite) to replace it")
    if not output.parent.is_dir():
        raise ValueError(f"{output.parent}: no such directory for the output")
    target = output.resolve()
    for p in inputs:
        if p.resolve() == target:
            raise ValueError(f"{output}: is also the input; choose another output name")


def check_paths(
    src: Path, parts: Sequence[Path], dest: Path, bad_path: Path | None, *, overwrite: bool
) -> None:
    """Usage checks on the output and bad-rows paths (ValueError)."""
    check_destination(dest, parts, overwrite=overwrite)
    if src.is_dir() and dest.resolve().parent == src.resolve():
        raise ValueError(
            f"{dest}: is inside the input directory, where a later run would read it as a "
            "part; write it elsewhere"
        )
    if bad_path is not None:
        check_destination(bad_path, [*parts, dest], overwrite=overwrite)
        if bad_path.resolve() == dest.resolve():
            raise ValueError(f"{bad_path}: the bad-rows file cannot be the output")


def _bad_rows_mode(bad_rows: str | Path) -> tuple[str, Path | None]:
    if isinstance(bad_rows, str) and bad_rows in ("error", "skip"):
        return bad_rows, None
    return "file", Path(bad_rows)


def _check_interval(predictor: Predictor, interval: str | None, level: float) -> None:
    if interval is None:
        return
    if interval not in ("confidence", "prediction"):
        raise ValueError(f"interval must be None, 'confidence' or 'prediction', got {interval!r}")
    # Fails here, before any output, when the model has no statistics or the level
    # needs scipy.
    predictor.predict(
        np.zeros((1, predictor.n_features_in_), dtype=predictor.dtype),
        interval=interval,
        level=level,
    )


def _block_bytes(part: _Part, chunk_rows: int | None) -> int:
    if chunk_rows is None:
        return DEFAULT_CSV_BLOCK
    return int(min(max(chunk_rows * part.line_bytes, 1 << 10), _MAX_BLOCK))


def score_file(
    model: str | Path | Predictor,
    input: str | Path,
    output: str | Path,
    *,
    id_columns: Sequence[str] | None = None,
    keep_all: bool = False,
    interval: str | None = None,
    level: float = 0.95,
    prediction_column: str = "prediction",
    bad_rows: str | Path = "error",
    chunk_rows: int | None = None,
    progress: bool | None = None,
    overwrite: bool = False,
    input_format: str | None = None,
    providers: str | Sequence[Any] = "cpu",
    threads: int | None = 1,
    workers: int | None = None,
) -> BatchReport:
    """Score every row of a CSV, TSV or Parquet file (or directory of parts) into ``output``.

    Parameters
    ----------
    model : model directory, ``.onnx`` file, or a loaded :class:`Predictor`
    input : file, or directory of part files (read in sorted order)
    output : ``.csv``, ``.tsv`` (optionally ``.gz``, ``.bz2``, ``.zst``) or ``.parquet`` file
    id_columns : input columns copied beside the prediction, in this order
    keep_all : copy every input column (``id_columns`` is then ignored)
    interval : None, "confidence" or "prediction": add ``<prediction_column>_lower``
        and ``_upper`` columns at coverage ``level``
    prediction_column : name of the prediction column
    bad_rows : "error" (stop at the first bad row), "skip" (drop and count them), or a
        path: drop them and write them there as CSV (columns :data:`BAD_ROWS_COLUMNS`)
    chunk_rows : rows per chunk (CSV: about that many; default 2 MiB of text; Parquet:
        32,768)
    progress : a tqdm bar on stderr; None shows it only when stderr is a terminal
    overwrite : replace an existing output (else ValueError)
    input_format : "csv", "tsv" or "parquet" when the extension does not say
    providers, threads : passed to :meth:`Predictor.load` when ``model`` is a path
        (one intra-op thread by default: the other cores parse)
    workers : threads that parse and convert CSV chunks (default: the number of CPUs, at
        most 4)

    Returns
    -------
    BatchReport

    Raises
    ------
    BatchError
        A missing column (before any data is read), a bad row (``bad_rows="error"``),
        an unreadable file. No output file is left behind.
    ValueError
        A usage problem: an unknown extension, an existing output, a bad option.
    """
    started = time.perf_counter()
    src, dest = Path(input), Path(output)
    out_fmt = file_format(dest)
    mode, bad_path = _bad_rows_mode(bad_rows)
    if chunk_rows is not None and (isinstance(chunk_rows, bool) or int(chunk_rows) < 1):
        raise ValueError(f"chunk_rows must be a positive integer, got {chunk_rows!r}")
    if input_format is not None and input_format.lower() not in ("csv", "tsv", "parquet"):
        raise ValueError(f"input_format must be 'csv', 'tsv' or 'parquet', got {input_format!r}")
    parts_paths = input_parts(src, input_format)
    check_paths(src, parts_paths, dest, bad_path, overwrite=overwrite)
    predictor = (
        model
        if isinstance(model, Predictor)
        else Predictor.load(model, providers=providers, threads=threads)
    )
    _check_interval(predictor, interval, level)

    parts, plan = plan_job(
        parts_paths,
        input_format,
        predictor,
        id_columns=id_columns,
        keep_all=keep_all,
        prediction_column=prediction_column,
        interval=interval,
    )
    n_workers = workers if workers is not None else min(os.cpu_count() or 1, 4)

    pa = _pyarrow()
    out = _AtomicFile(dest)
    bad_out = _AtomicFile(bad_path) if bad_path is not None else None
    writer: Any = None
    bad_writer: _BadRowsFile | None = None
    csv_input = parts[0].fmt.kind == "csv"
    uncompressed = all(p.fmt.compression is None for p in parts)
    bar = _Progress(
        progress,
        total_rows=None if csv_input else sum(p.rows or 0 for p in parts),
        total_bytes=sum(p.size for p in parts) if csv_input and uncompressed else None,
    )
    rows_read = rows_written = rows_bad = bytes_done = chunks_done = 0
    pool = pa.default_memory_pool()
    try:
        writer = open_writer(out.tmp, plan.out_schema, out_fmt)
        if bad_out is not None:
            bad_writer = _BadRowsFile(bad_out.tmp)
        for part in parts:
            chunks: Iterator[_Chunk]
            if part.fmt.kind == "csv":
                blocks = _csv_blocks(part, _block_bytes(part, chunk_rows))
                chunks = _ordered_map(partial(_prepare_csv, part, plan), blocks, n_workers)
            else:
                # Decoding runs a batch ahead in a thread while this one predicts and writes.
                chunks = _prefetch(_parquet_chunks(part, plan, chunk_rows or DEFAULT_PARQUET_ROWS))
            line = 2
            for chunk in _closing(chunks):
                if part.fmt.kind == "csv":
                    chunk.first_line, chunk.first_row = line, line - 1
                    line += chunk.newlines
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
                batch, n_read, n_bad, bad = _score_chunk(
                    chunk, predictor, plan, interval, level, mode, pa
                )
                if bad_writer is not None and bad:
                    bad_writer.write(bad)
                writer.write(batch)
                rows_read += n_read
                rows_bad += n_bad
                rows_written += batch.num_rows
                bytes_done += chunk.nbytes
                bar.update(n_read, rows_read, bytes_done)
                chunks_done += 1
                if part.fmt.kind == "parquet" and chunks_done % RELEASE_EVERY == 0:
                    pool.release_unused()
        writer.close()
        writer = None
        if bad_writer is not None:
            bad_writer.close()
            bad_writer = None
        # The bad rows first: the output appears last, the sign that the job finished.
        _commit_together([bad_out, out] if bad_out is not None else [out])
    except BaseException:
        for w in (writer, bad_writer):
            if w is not None:
                with contextlib.suppress(Exception):  # already failing; the temporary goes
                    w.close()
        out.discard()
        if bad_out is not None:
            bad_out.discard()
        raise
    finally:
        bar.close(rows_read)
    return BatchReport(
        input=str(src),
        output=str(dest),
        parts=len(parts),
        rows_read=rows_read,
        rows_written=rows_written,
        rows_bad=rows_bad,
        seconds=time.perf_counter() - started,
        bad_rows_file=str(bad_path) if bad_path is not None else None,
    )


def _closing(chunks: Iterator[_Chunk]) -> Iterator[_Chunk]:
    """Iterate, and close the generator (its thread pool and file) however the loop ends."""
    try:
        yield from chunks
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


def _score_chunk(
    chunk: _Chunk,
    predictor: Predictor,
    plan: _Plan,
    interval: str | None,
    level: float,
    mode: str,
    pa: Any,
) -> tuple[Any, int, int, list[_BadRow]]:
    """Predict one chunk: (output batch, rows read, bad rows, bad rows' details)."""
    result = predictor.predict(chunk.X, interval=interval, level=level, allow_nonfinite=True)
    y = result.prediction if isinstance(result, IntervalPrediction) else result
    ok = np.isfinite(y)
    bad: list[_BadRow] = []
    n_read = chunk.n + len(chunk.invalid)
    keep = None
    if not ok.all() or chunk.invalid:
        bad, blank = _find_bad(chunk, ok, plan.dtype)
        if bad and mode == "error":
            raise bad[0].error()
        n_read -= int(blank.sum())
        keep = ok
    columns = list(chunk.kept) + [np.asarray(y, dtype=plan.dtype)]
    if isinstance(result, IntervalPrediction):
        columns += [result.lower, result.upper]
    if keep is not None:
        mask = _arrow_mask(keep)
        columns = [
            c.filter(mask) if isinstance(c, pa.Array) else np.asarray(c)[keep] for c in columns
        ]
    arrays = [
        c if isinstance(c, pa.Array) else _arrow(c, f.type)
        for c, f in zip(columns, plan.out_schema, strict=True)
    ]
    arrays = [
        a if a.type == f.type else a.cast(f.type)
        for a, f in zip(arrays, plan.out_schema, strict=True)
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=plan.out_schema), n_read, len(bad), bad
