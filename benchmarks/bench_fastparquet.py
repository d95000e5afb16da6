"""CPU time of decoding a Parquet file into a float32 matrix: ``inference.io.parquet.native``
beside ``pyarrow.parquet``.

Run: ``.venv/bin/python benchmarks/bench_fastparquet.py --rows 5000000``

Writes ``--rows`` rows of an ``id`` column (int64) and 16 float64 features drawn by
``numpy.random.default_rng(1).normal`` with ``pyarrow.parquet.write_table`` and its
defaults (snappy, 1,048,576-row row groups, dictionary pages, optional columns) to a
temporary file (or ``--path``, kept), reads it once to warm the page cache, then
decodes it 65,536 rows at a time into an (n, 16) float32 matrix and an (n,) int64 id
vector on this thread (CPU time by ``time.process_time``, the best of ``--repeats``):

- ``fastparquet``: one ``ColumnChunkReader`` per column chunk, all 17 filled by one
  ``read_columns`` call per batch (the id into a (n, 1) int64 matrix);
- ``fp-read``: the same readers, one ``ColumnChunkReader.read`` call per column;
- ``pyarrow``: ``ParquetFile.iter_batches(batch_size=65536, use_threads=False)``,
  then each feature column cast into the float32 matrix and the id taken as numpy.

Both results are checked equal (bit for bit) before anything is timed. OpenBLAS's
threads are limited to one (``OPENBLAS_NUM_THREADS``, unless set): numpy's import
starts them and their idle spinning would count as CPU time of either reader.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

FEATURES = 16
BATCH = 65_536


def generate(rows: int, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    X = np.random.default_rng(1).normal(size=(rows, FEATURES))
    columns = {f"x{i}": pa.array(X[:, i]) for i in range(FEATURES)}
    columns["id"] = pa.array(np.arange(rows, dtype=np.int64))
    pq.write_table(pa.table(columns), str(path))


def batches_fastparquet(
    path: Path, one_call: bool = True
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    import pyarrow.parquet as pq

    from inference.io.parquet import native as fp

    meta = pq.ParquetFile(str(path)).metadata
    fd = os.open(path, os.O_RDONLY)
    try:
        for g in range(meta.num_row_groups):
            group = meta.row_group(g)
            readers = []
            for j in range(group.num_columns):
                col = group.column(j)
                offset = (
                    col.dictionary_page_offset if col.has_dictionary_page else col.data_page_offset
                )
                readers.append(
                    fp.ColumnChunkReader(
                        fd,
                        offset,
                        col.total_compressed_size,
                        physical_type=fp.PHYSICAL_TYPES[col.physical_type],
                        codec=fp.CODECS[col.compression],
                        max_definition_level=1,
                        num_values=col.num_values,
                    )
                )
            columns = [*range(FEATURES), 0]
            for start in range(0, group.num_rows, BATCH):
                rows = min(BATCH, group.num_rows - start)
                X = np.empty((rows, FEATURES), dtype=np.float32)
                ids = np.empty((rows, 1), dtype=np.int64)
                outs = [X] * FEATURES + [ids]
                if one_call:
                    ok = fp.read_columns(readers, outs, columns, rows)
                else:
                    ok = all(
                        [r.read(o, c, rows) for r, o, c in zip(readers, outs, columns, strict=True)]
                    )
                if not ok:
                    raise RuntimeError(f"fastparquet bailed on row group {g}")
                yield X, ids[:, 0]
            for reader in readers:
                reader.close()
    finally:
        os.close(fd)


def batches_fp_read(path: Path) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    return batches_fastparquet(path, one_call=False)


def batches_pyarrow(path: Path) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(str(path))
    for batch in pf.iter_batches(batch_size=BATCH, use_threads=False):
        X = np.empty((batch.num_rows, FEATURES), dtype=np.float32)
        for j in range(FEATURES):
            X[:, j] = batch.column(j).to_numpy()
        yield X, batch.column(FEATURES).to_numpy()


def cpu_seconds(
    batches: Callable[[Path], Iterator[tuple[np.ndarray, np.ndarray]]], path: Path, repeats: int
) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.process_time()
        for _batch in batches(path):
            pass
        best = min(best, time.process_time() - t0)
    return best


def run(path: Path, rows: int, repeats: int) -> None:
    import pyarrow.parquet as pq

    t0 = time.perf_counter()
    if not path.exists():
        generate(rows, path)
    rows = pq.ParquetFile(str(path)).metadata.num_rows
    size = path.stat().st_size
    print(f"{path}: {size / 2**20:.0f} MiB, written in {time.perf_counter() - t0:.1f} s")
    path.read_bytes()  # the page cache, for both readers
    for (a, ida), (b, idb) in zip(batches_fastparquet(path), batches_pyarrow(path), strict=True):
        if not (np.array_equal(a.view(np.uint32), b.view(np.uint32)) and np.array_equal(ida, idb)):
            raise SystemExit("fastparquet and pyarrow differ")
    results = {}
    readers = [
        ("fastparquet", batches_fastparquet),
        ("fp-read", batches_fp_read),
        ("pyarrow", batches_pyarrow),
    ]
    for name, batches in readers:
        results[name] = cpu_seconds(batches, path, repeats)
        print(f"{name:11s} {results[name]:.3f} CPU s for {rows:,} rows")
    print(
        f"ratio       {results['pyarrow'] / results['fastparquet']:.2f}x less CPU for fastparquet"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--path", type=Path, help="the file to read (written there if absent)")
    args = parser.parse_args()
    from inference.io.parquet import native as fastparquet

    if not fastparquet.available():
        raise SystemExit("the C extension is not built: pip install -e .")
    if args.path is not None:
        run(args.path, args.rows, args.repeats)
        return
    with tempfile.TemporaryDirectory() as tmp:
        run(Path(tmp) / "bench.parquet", args.rows, args.repeats)


if __name__ == "__main__":
    main()
