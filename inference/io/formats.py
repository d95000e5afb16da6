"""File formats told from extensions, and the part files of an input.

An input is a ``.csv``, ``.txt`` (comma-separated) or ``.tsv`` / ``.tab`` file
(optionally ``.gz``, ``.bz2`` or ``.zst``),
a ``.parquet`` / ``.pq`` file, or a directory of such part files in one format,
taken in sorted name order (names starting with ``.`` or ``_`` ignored).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inference.errors import BatchError, UsageError
from inference.io.arrow import import_pyarrow
from inference.io.limits import DEFAULT_MAX_LINE_BYTES

__all__ = [
    "COMPRESSIONS",
    "CSV_DELIMITERS",
    "PARQUET_SUFFIXES",
    "FileFormat",
    "Part",
    "file_format",
    "input_parts",
    "open_input",
]

CSV_DELIMITERS = {".csv": ",", ".txt": ",", ".tsv": "\t", ".tab": "\t"}
PARQUET_SUFFIXES = (".parquet", ".pq")
COMPRESSIONS = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd"}


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
    raise UsageError(
        f"{path}: cannot tell the format from {''.join(path.suffixes) or 'no extension'!r}; "
        "expected .csv, .txt or .tsv (optionally .gz, .bz2 or .zst) or .parquet, or name "
        "the format with input_format='csv', 'tsv' or 'parquet'"
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
class Part:
    """One input file: its format and header (Parquet: schema), read before any data."""

    path: Path
    fmt: FileFormat
    columns: list[str]
    types: dict[str, Any] = field(default_factory=dict)  # Parquet: name -> arrow type
    rows: int | None = None  # Parquet: rows in the file
    size: int = 0
    line_bytes: float = 0.0  # CSV: mean length of the first lines
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES  # CSV: the longest line the reader takes

    @property
    def name(self) -> str:
        return str(self.path)


def open_input(part: Part) -> Any:
    """An Arrow input stream of the part, decompressed on the fly."""
    pa = import_pyarrow()
    return pa.input_stream(str(part.path), compression=part.fmt.compression)
