"""The Parquet reader: record batches decoded a batch ahead in a thread.

The schema is read first (:func:`inspect_parquet`, no data); then the needed
columns are read ``rows`` at a time with small column buffers, so memory stays
flat, and a bad row is reported with its 1-based row number and the row as JSON.
Plain numeric files are decoded by a C reader straight into the model's matrix
(:mod:`inference.io.parquet.fast`), the others by pyarrow.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inference.errors import BatchError
from inference.io.arrow import import_parquet, import_pyarrow
from inference.io.chunks import Chunk, matrix
from inference.io.formats import FileFormat, Part
from inference.io.parquet import fast as parquet_fast
from inference.io.parquet.fast import ArrowReplay, DecodedBatch, NotPlain
from inference.io.threads import prefetch

if TYPE_CHECKING:
    from inference.io.spec import ReadSpec

__all__ = [
    "DEFAULT_PARQUET_ROWS",
    "ParquetChunk",
    "inspect_parquet",
    "read_parquet",
    "record_batches",
]

#: rows per Parquet chunk when ``chunk_rows`` is not given: a batch of 17 float64
#: columns is then about 9 MiB (a few are in flight); 32,768 rows took a fifth more
#: decoding CPU per row
DEFAULT_PARQUET_ROWS = 65_536


@dataclass
class ParquetChunk(Chunk):
    """A chunk of a Parquet file: its record batch, for the records of bad rows."""

    batch: Any = None

    def record(self, i: int, chunk_row: int) -> str:
        if self.batch is None:
            return ""
        return json.dumps(self.batch.slice(i, 1).to_pylist()[0], default=str)


@dataclass
class DecodedParquetChunk(ParquetChunk):
    """A chunk the C reader decoded: its record batch (and the features as read) come
    from pyarrow again, only when a bad row of the chunk is described."""

    replay: ArrowReplay | None = None

    def _read_batch(self) -> None:
        if self.batch is None and self.replay is not None:
            self.batch = self.replay.batch(self.first_row - 1, self.n)
            self.feature_arrays = [self.batch.column(f) for f in self.names]

    def value(self, i: int, chunk_row: int, name: str) -> Any:
        self._read_batch()
        return super().value(i, chunk_row, name)

    def record(self, i: int, chunk_row: int) -> str:
        self._read_batch()
        return super().record(i, chunk_row)


def inspect_parquet(path: Path, fmt: FileFormat) -> Part:
    """A Parquet part: its schema and row count, no data (BatchError if unreadable)."""
    pq = import_parquet()
    try:
        pf = pq.ParquetFile(str(path))
    except Exception as exc:  # pyarrow raises ArrowInvalid or OSError for a damaged file
        raise BatchError(f"not a readable Parquet file ({exc})", file=str(path)) from exc
    schema = pf.schema_arrow
    part = Part(
        path,
        fmt,
        list(schema.names),
        types={f.name: f.type for f in schema},
        rows=pf.metadata.num_rows,
        size=path.stat().st_size,
    )
    pf.close()
    return part


def read_parquet(part: Part, spec: ReadSpec, chunk_rows: int | None) -> Iterator[ParquetChunk]:
    """The chunks of a Parquet part in order, ``chunk_rows`` rows each (default
    :data:`DEFAULT_PARQUET_ROWS`). A thread decodes the record batches a few ahead
    (with Arrow's threads) while the caller converts, predicts and writes: the
    conversion runs in the caller, so the decoding never waits for it."""
    rows = chunk_rows or DEFAULT_PARQUET_ROWS
    first = 1
    replay: ArrowReplay | None = None
    batches = prefetch(_decoded(part, spec, rows), depth=3)
    try:
        for batch in batches:
            if isinstance(batch, DecodedBatch):
                if replay is None:
                    replay = ArrowReplay(part.path, spec.needed, rows)
                yield _decoded_chunk(part, spec, batch, replay)
                first += batch.X.shape[0]
            else:
                yield _prepare_parquet(part, spec, first, batch)
                first += batch.num_rows
    finally:
        batches.close()
        if replay is not None:
            replay.close()


def _decoded(part: Part, spec: ReadSpec, rows: int) -> Iterator[Any]:
    """The part's rows decoded by the C reader (:class:`DecodedBatch`) where it can, and
    from where it cannot on, pyarrow's record batches. When the C reader refused a
    chunk's footer metadata and pyarrow cannot read the rows either, the error names
    that row group and column."""
    pa = import_pyarrow()
    pf = import_parquet().ParquetFile(str(part.path), pre_buffer=False)
    try:
        columns = parquet_fast.fast_columns(pf, spec)
        metadata = pf.metadata
    except (pa.ArrowException, OSError, ValueError):  # metadata pyarrow cannot describe
        columns = None
    finally:
        pf.close()
    done = 0
    problem = None
    if columns is not None:
        try:
            for batch in parquet_fast.decoded_batches(part.path, metadata, columns, spec, rows):
                yield batch
                done += 1
            return
        except NotPlain as exc:
            problem = exc.problem
    try:
        yield from islice(record_batches(part, spec, rows), done, None)
    except BatchError as exc:
        if problem is None:
            raise
        raise BatchError(
            f"{exc.reason}; the footer's metadata is damaged: {problem}",
            file=exc.file,
            row=exc.row,
        ) from exc


def _decoded_chunk(
    part: Part, spec: ReadSpec, batch: DecodedBatch, replay: ArrowReplay
) -> DecodedParquetChunk:
    return DecodedParquetChunk(
        part=part,
        names=spec.features,
        X=batch.X,
        kept=batch.kept,
        feature_arrays=[],
        failures={},
        first_row=batch.start + 1,
        nbytes=batch.nbytes,
        replay=replay,
    )


def record_batches(part: Part, spec: ReadSpec, rows: int) -> Iterator[Any]:
    """pyarrow's record batches of the spec's ``needed`` columns, ``rows`` at a time, as
    stored (no conversion; 64 KiB column buffers). A read error is a
    :class:`BatchError` naming the first row of the batch that failed."""
    pa, pq = import_pyarrow(), import_parquet()
    try:
        pf = pq.ParquetFile(str(part.path), buffer_size=64 << 10, pre_buffer=False)
    except (pa.ArrowException, OSError) as exc:
        raise BatchError(f"not a readable Parquet file ({exc})", file=part.name) from exc
    first = 1
    try:
        batches = pf.iter_batches(batch_size=rows, columns=spec.needed, use_threads=True)
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                return
            except (pa.ArrowException, OSError) as exc:  # a damaged page header: OSError
                raise BatchError(f"cannot read it ({exc})", file=part.name, row=first) from exc
            yield batch
            first += batch.num_rows
    finally:
        pf.close()


def _prepare_parquet(part: Part, spec: ReadSpec, first_row: int, batch: Any) -> ParquetChunk:
    feature_arrays = [batch.column(f) for f in spec.features]
    X, failures = matrix(feature_arrays, spec.features, spec.dtype)
    return ParquetChunk(
        part=part,
        names=spec.features,
        X=X,
        kept=[batch.column(name) for name in spec.kept],
        feature_arrays=feature_arrays,
        failures=failures,
        first_row=first_row,
        batch=batch,
        nbytes=batch.nbytes,
    )
