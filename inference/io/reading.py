"""Reading any supported file: its header first, then its rows in chunks.

The one place that picks the CSV or the Parquet reader for a part, so that callers
(the batch job, the Dask engine, the training loader) never do.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from inference.io.chunks import Chunk
from inference.io.csv.reader import inspect_csv, read_csv
from inference.io.formats import Part, file_format
from inference.io.limits import DEFAULT_MAX_LINE_BYTES, check_max_line_bytes
from inference.io.parquet.reader import inspect_parquet, read_parquet
from inference.io.spec import ReadSpec

__all__ = ["inspect_part", "read_chunks", "read_parts"]


def inspect_part(
    path: str | Path,
    input_format: str | None = None,
    *,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> Part:
    """One file's format and header (Parquet: schema and row count), no data.

    ``input_format`` ("csv", "tsv" or "parquet") overrides the extension.
    ``max_line_bytes``: the longest line a CSV or TSV part may have (the header's is
    checked here, the others as they are read). Raises
    :class:`~inference.errors.BatchError` when the header cannot be read
    (:class:`~inference.errors.LineTooLongError` when it is too long), and
    ``ValueError`` when the format cannot be told or the limit is not a positive int.
    """
    path = Path(path)
    fmt = file_format(path, input_format)
    limit = check_max_line_bytes(max_line_bytes)
    if fmt.kind == "csv":
        return inspect_csv(path, fmt, limit)
    return inspect_parquet(path, fmt)


def read_chunks(
    part: Part, spec: ReadSpec, chunk_rows: int | None = None, workers: int = 1
) -> Iterator[Chunk]:
    """The chunks of one part, in order: about ``chunk_rows`` rows each (``None``: the
    reader's default), CSV blocks parsed on ``workers`` threads."""
    if part.fmt.kind == "csv":
        return read_csv(part, spec, chunk_rows, workers)
    return read_parquet(part, spec, chunk_rows)


def read_parts(
    parts: Sequence[Part], spec: ReadSpec, chunk_rows: int | None = None, workers: int = 1
) -> Iterator[Chunk]:
    """Every part's chunks, part after part."""
    for part in parts:
        yield from read_chunks(part, spec, chunk_rows, workers)
