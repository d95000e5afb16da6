"""What a batch job is asked to do, and the checks that need no data.

:class:`ScoreOptions` is the one description of a job's options, frozen, checked
when built; :func:`job_files` checks the input and output paths. The streaming
engine (:func:`inference.batch.score_file`) and the Dask engine
(:func:`inference.dask.score_file_dask`) both start with them, so they refuse the
same usage errors with the same words, before any data is read. Usage errors are
:class:`~inference.errors.UsageError` (a ``ValueError``), worded with the keyword
arguments' names (the command line words them as its flags).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inference.errors import UsageError
from inference.intervals import KINDS
from inference.io import (
    DEFAULT_MAX_LINE_BYTES,
    FileFormat,
    check_max_line_bytes,
    file_format,
    input_parts,
)

__all__ = [
    "JobFiles",
    "ScoreOptions",
    "check_destination",
    "check_interval_kind",
    "check_paths",
    "job_files",
]

_INPUT_FORMATS = ("csv", "tsv", "parquet")


def check_interval_kind(interval: str | None) -> None:
    """UsageError unless ``interval`` is None or one of :data:`inference.intervals.KINDS`."""
    if interval is not None and interval not in KINDS:
        raise UsageError(f"interval must be None, 'confidence' or 'prediction', got {interval!r}")


@dataclass(frozen=True)
class ScoreOptions:
    """The options of a batch job (see :func:`inference.batch.score_file` for each).

    ``bad_rows``, ``chunk_rows``, ``workers`` and ``max_line_bytes`` are the streaming
    engine's; the Dask engine leaves them at their defaults (it checks only the
    header line against ``max_line_bytes``). Raises :class:`~inference.errors.UsageError`
    for a value no job could use.
    """

    id_columns: Sequence[str] | None = None  # kept as a tuple
    keep_all: bool = False
    interval: str | None = None
    level: float = 0.95
    prediction_column: str = "prediction"
    overwrite: bool = False
    input_format: str | None = None
    providers: str | Sequence[Any] = "cpu"
    threads: int | None = 1
    progress: bool | None = None
    bad_rows: str | Path = "error"
    chunk_rows: int | None = None
    workers: int | None = None
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES

    def __post_init__(self) -> None:
        if self.id_columns is not None:
            object.__setattr__(self, "id_columns", tuple(self.id_columns))
        check_interval_kind(self.interval)
        chunk_rows = self.chunk_rows
        if chunk_rows is not None and (isinstance(chunk_rows, bool) or int(chunk_rows) < 1):
            raise UsageError(f"chunk_rows must be a positive integer, got {chunk_rows!r}")
        check_max_line_bytes(self.max_line_bytes)
        if self.input_format is not None and self.input_format.lower() not in _INPUT_FORMATS:
            raise UsageError(
                f"input_format must be 'csv', 'tsv' or 'parquet', got {self.input_format!r}"
            )

    @property
    def bad_rows_mode(self) -> str:
        """ "error", "skip" or "file" (``bad_rows`` is then the file's path)."""
        if isinstance(self.bad_rows, str) and self.bad_rows in ("error", "skip"):
            return self.bad_rows
        return "file"

    @property
    def bad_rows_path(self) -> Path | None:
        return Path(self.bad_rows) if self.bad_rows_mode == "file" else None

    @property
    def load_options(self) -> dict[str, Any]:
        """What :meth:`inference.Predictor.load` is given when the model is a path."""
        return {"providers": self.providers, "threads": self.threads}


@dataclass(frozen=True)
class JobFiles:
    """The files of a job, checked: the input (a file or a directory of ``parts``), the
    output and its format, the bad-rows file (or None)."""

    src: Path
    parts: list[Path]
    dest: Path
    out_fmt: FileFormat
    bad_path: Path | None


def check_destination(output: Path, inputs: Sequence[Path], *, overwrite: bool) -> None:
    """Usage checks on an output path (UsageError)."""
    if output.is_dir():
        raise UsageError(f"{output}: is a directory; expected an output file name")
    if output.exists() and not overwrite:
        raise UsageError(f"{output}: exists; pass overwrite=True to replace it")
    if not output.parent.is_dir():
        raise UsageError(f"{output.parent}: no such directory for the output")
    target = output.resolve()
    for p in inputs:
        if p.resolve() == target:
            raise UsageError(f"{output}: is also the input; choose another output name")


def check_paths(
    src: Path, parts: Sequence[Path], dest: Path, bad_path: Path | None, *, overwrite: bool
) -> None:
    """Usage checks on the output and bad-rows paths (UsageError)."""
    if bad_path is not None and bad_path.resolve() == dest.resolve():
        raise UsageError(
            f"{bad_path}: is both the output and the bad-rows file; give them different names"
        )
    check_destination(dest, parts, overwrite=overwrite)
    if src.is_dir() and dest.resolve().parent == src.resolve():
        raise UsageError(
            f"{dest}: is inside the input directory, where a later run would read it as a "
            "part; write it elsewhere"
        )
    if bad_path is not None:
        check_destination(bad_path, parts, overwrite=overwrite)


def job_files(input: str | Path, output: str | Path, options: ScoreOptions) -> JobFiles:
    """The job's files, checked before anything is read: the output's format, the
    input's parts (BatchError when there are none), and the output and bad-rows paths
    (UsageError when they exist, clash, or lie inside the input directory)."""
    src, dest = Path(input), Path(output)
    try:
        out_fmt = file_format(dest)
    except ValueError:
        shown = "".join(dest.suffixes) or "no extension"
        raise UsageError(
            f"{dest}: cannot tell the format from {shown!r} (the output's); expected .csv, "
            ".tsv (optionally .gz, .bz2 or .zst) or .parquet"
        ) from None
    parts = input_parts(src, options.input_format)
    bad_path = options.bad_rows_path
    check_paths(src, parts, dest, bad_path, overwrite=options.overwrite)
    return JobFiles(src, parts, dest, out_fmt, bad_path)
