"""CPU time of parsing CSV blocks: ``inference.io.csv.native`` beside ``pyarrow.csv``.

Run: ``.venv/bin/python benchmarks/bench_fastcsv.py --rows 1000000``

Generates ``--rows`` rows of an ``id`` column (int) and 16 float64 features drawn by
``numpy.random.default_rng(1).normal``, written by ``pyarrow.csv.write_csv``
(17 significant digits, e.g. ``-0.38314749049542376``), in memory. The text after
the header is cut into blocks of whole lines of about 2 MiB (the batch reader's
default), and each parser turns every block into an (n, 16) float32 matrix on this
thread (CPU time by ``time.process_time``, the best of ``--repeats``):

- ``fastcsv``: ``fastcsv.parse_block`` into a float32 matrix sized by the block's
  newline count (counted beforehand, as the batch reader does for both paths).
- ``pyarrow``: ``pyarrow.csv.read_csv`` with ``use_threads=False``, ``block_size``
  512 KiB and the 16 features as float64 columns (what the batch reader asks for),
  then each column cast into the float32 matrix.

Both results are checked equal (bit for bit) before anything is timed.
"""

from __future__ import annotations

import argparse
import io
import time
from collections.abc import Callable
from typing import Any

import numpy as np

FEATURES = 16
BLOCK = 2 << 20


def generate(rows: int) -> bytes:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    X = np.random.default_rng(1).normal(size=(rows, FEATURES))
    columns = {"id": pa.array(np.arange(rows))}
    columns.update({f"x{i}": pa.array(X[:, i]) for i in range(FEATURES)})
    sink = io.BytesIO()
    pacsv.write_csv(pa.table(columns), sink)
    return sink.getvalue()


def blocks_of(text: bytes, size: int) -> list[tuple[Any, int]]:
    """(Arrow buffer of whole lines, newline count) for each block after the header."""
    import pyarrow as pa

    body = pa.py_buffer(text)
    start = text.index(b"\n") + 1
    out = []
    while start < len(text):
        cut = text.rfind(b"\n", start, start + size)
        end = len(text) if cut < 0 or start + size >= len(text) else cut + 1
        out.append((body.slice(start, end - start), text.count(b"\n", start, end)))
        start = end
    return out


def parse_fastcsv(block: Any, lines: int) -> np.ndarray:
    from inference.io.csv import native as fastcsv

    out = np.empty((lines + 1, FEATURES), dtype=np.float32)
    rows = fastcsv.parse_block(block, FEATURES + 1, ",", [-1, *range(FEATURES)], out)
    if rows is None:
        raise RuntimeError("fastcsv bailed on a plain block")
    return out[:rows]


def parse_pyarrow(block: Any, lines: int) -> np.ndarray:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    names = ["id"] + [f"x{i}" for i in range(FEATURES)]
    table = pacsv.read_csv(
        pa.BufferReader(block),
        read_options=pacsv.ReadOptions(column_names=names, use_threads=False, block_size=512 << 10),
        convert_options=pacsv.ConvertOptions(
            include_columns=names[1:], column_types=dict.fromkeys(names[1:], pa.float64())
        ),
    )
    out = np.empty((table.num_rows, FEATURES), dtype=np.float32)
    for j, name in enumerate(names[1:]):
        start = 0
        for chunk in table.column(name).chunks:
            values = chunk.to_numpy()
            out[start : start + len(values), j] = values
            start += len(values)
    return out


def cpu_seconds(parse: Callable[[Any, int], np.ndarray], blocks: list, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.process_time()
        for block, lines in blocks:
            parse(block, lines)
        best = min(best, time.process_time() - t0)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    from inference.io.csv import native as fastcsv

    if not fastcsv.available():
        raise SystemExit("the C extension is not built: pip install -e .")
    t0 = time.perf_counter()
    text = generate(args.rows)
    blocks = blocks_of(text, BLOCK)
    print(
        f"{args.rows:,} rows x ({FEATURES} float64 + id), {len(text) / 2**20:.0f} MiB, "
        f"{len(blocks)} blocks, generated in {time.perf_counter() - t0:.1f} s"
    )
    for block, lines in blocks[:3] + blocks[-1:]:
        a, b = parse_fastcsv(block, lines), parse_pyarrow(block, lines)
        if not np.array_equal(a.view(np.uint32), b.view(np.uint32)):
            raise SystemExit("fastcsv and pyarrow differ")
    per_million = 1e6 / args.rows
    results = {}
    for name, parse in [("fastcsv", parse_fastcsv), ("pyarrow", parse_pyarrow)]:
        results[name] = cpu_seconds(parse, blocks, args.repeats) * per_million
        print(f"{name:8s} {results[name]:.3f} CPU s per million rows")
    print(f"ratio    {results['pyarrow'] / results['fastcsv']:.2f}x less CPU for fastcsv")


if __name__ == "__main__":
    main()
