"""The cost of a compressed output: ``score_file`` to ``.csv`` and to ``.csv.gz``.

Run: ``.venv/bin/python benchmarks/bench_gzip.py --rows 1000000 --repeats 5``
(``--interval`` adds the prediction interval's two columns to the output)

Scores the same CSV input (``--rows`` rows of three features, the bundled
``plant_richness_mlr`` model) in this process into:

- ``.csv``: no compression (the reference for the cost of compressing);
- ``.csv.gz`` as before: pyarrow's compressed stream, zlib at Arrow's default level 9;
- ``.csv.gz`` with Arrow's gzip codec at level 1, one member per chunk (the fallback);
- ``.csv.gz`` with python-isal at level 2 (what ``linreg predict`` uses when ``isal``
  is installed).

Jobs are interleaved (each repeat runs every job once, in a rotated order); the table
gives median wall and CPU seconds (``time.process_time``, every thread of this
process) and the output's size, and each job's ratio to the old ``.csv.gz``. Every
output is decompressed and compared with the ``.csv`` one, byte for byte. Record
``uptime`` before and after: the machine may be shared.
"""

from __future__ import annotations

import argparse
import gzip
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from inference.batch import score_file, writers

GZIP = writers.GzipStream
MODEL = Path(__file__).resolve().parents[1] / "exported_models" / "plant_richness_mlr"


class _OldGzip:
    """What ``.csv.gz`` outputs were written with before: pyarrow's stream, level 9."""

    def __init__(self, path: Path, **_: Any) -> None:
        import pyarrow as pa

        self._stream = pa.output_stream(str(path), compression="gzip")

    def write(self, data: Any) -> None:
        self._stream.write(data)

    def close(self) -> None:
        self._stream.close()


def _arrow_level1(path: Path, **_: Any) -> writers.GzipStream:
    return GZIP(path, use_isal=False)


JOBS = {
    ".csv": (".csv", GZIP),
    ".csv.gz before (pyarrow stream, level 9)": (".csv.gz", _OldGzip),
    ".csv.gz Arrow codec level 1": (".csv.gz", _arrow_level1),
    ".csv.gz python-isal level 2": (".csv.gz", GZIP),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--interval", action="store_true", help="add interval bounds")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    n = args.rows
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        frame = pd.DataFrame(
            {
                "area": rng.uniform(0, 5, n),
                "latitude": rng.uniform(40, 45, n),
                "dist_mainland": rng.uniform(0, 50, n),
            }
        )
        frame.to_csv(d / "in.csv", index=False)
        times: dict[str, list[tuple[float, float]]] = {k: [] for k in JOBS}
        sizes: dict[str, int] = {}
        names = list(JOBS)
        for rep in range(args.repeats):
            for name in names[rep % len(names) :] + names[: rep % len(names)]:
                suffix, stream = JOBS[name]
                out = d / f"out{suffix}"
                writers.GzipStream = stream  # type: ignore[misc,assignment]
                try:
                    t0, c0 = time.perf_counter(), time.process_time()
                    score_file(
                        MODEL,
                        d / "in.csv",
                        out,
                        overwrite=True,
                        progress=False,
                        interval="prediction" if args.interval else None,
                    )
                    times[name].append((time.perf_counter() - t0, time.process_time() - c0))
                finally:
                    writers.GzipStream = GZIP  # type: ignore[misc]
                sizes[name] = out.stat().st_size
                if suffix == ".csv":
                    plain = out.read_bytes()
                else:
                    assert gzip.decompress(out.read_bytes()) == plain, name
    ref = statistics.median(w for w, _ in times[".csv.gz before (pyarrow stream, level 9)"])
    ref_cpu = statistics.median(c for _, c in times[".csv.gz before (pyarrow stream, level 9)"])
    what = " with --interval" if args.interval else ""
    print(f"{n:,} rows{what}; {platform.machine()}, {os.cpu_count()} CPUs")
    print("| output | wall s | CPU s | size MB | wall / before | CPU / before |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, runs in times.items():
        wall = statistics.median(w for w, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        print(
            f"| {name} | {wall:.3f} | {cpu:.3f} | {sizes[name] / 1e6:.2f} | "
            f"{wall / ref:.3f} | {cpu / ref_cpu:.3f} |"
        )


if __name__ == "__main__":
    main()
