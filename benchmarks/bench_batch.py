"""Streaming batch scoring against a naive pandas job: rows per second and peak RSS.

Run: ``.venv/bin/python benchmarks/bench_batch.py [--rows 5000000] [--features 16]``.
Generates a file of ``--rows`` rows (an ``id`` column and ``--features`` float
features) in a temporary directory, as CSV and as Parquet, fits a model with that
many features on a small sample, and runs, each in a fresh Python process:

- stream: ``inference.batch.score_file(model, input, output, id_columns=["id"])``
- naive: pandas ``read_csv`` (``read_parquet``), ``Predictor.predict`` on the whole
  frame, then ``to_csv`` (``to_parquet``) of ``id`` and the prediction

Each child times its own job (interpreter start-up and imports excluded, the same
for both; loading the model included) and reports its peak RSS (``VmHWM`` from
``/proc/self/status``: imports, model and data). Prints a Markdown table; the
speed column is the streaming job's rows/s over the naive job's on the same file in
the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

GENERATE_ROWS = 1 << 20  # rows generated (and written as one Parquet row group) at a time


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM): unlike ``ru_maxrss``, it starts afresh
    at exec, so it does not inherit the parent's peak."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    import resource  # not Linux: the closest thing

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(job: str, model: str, source: str, output: str) -> None:
    """Run one job in this (fresh) process and print its time and peak RSS as JSON."""
    if job == "stream":
        from inference.batch import score_file

        started = time.perf_counter()
        report = score_file(model, source, output, id_columns=["id"], progress=False)
        rows = report.rows_written
    else:
        import pandas as pd

        from inference import Predictor

        started = time.perf_counter()
        predictor = Predictor.load(model, providers="cpu")
        parquet = source.endswith(".parquet")
        frame = pd.read_parquet(source) if parquet else pd.read_csv(source)
        out = pd.DataFrame({"id": frame["id"], "prediction": predictor.predict(frame)})
        if parquet:
            out.to_parquet(output, index=False)
        else:
            out.to_csv(output, index=False)
        rows = len(out)
    seconds = time.perf_counter() - started
    print(json.dumps({"rows": rows, "seconds": seconds, "peak_mb": peak_rss_mb()}))


def make_model(directory: Path, features: list[str]) -> Path:
    from training.data import Table
    from training.export import export_model
    from training.pipeline import train

    rng = np.random.default_rng(0)
    X = rng.normal(size=(2_000, len(features)))
    y = X @ rng.normal(size=len(features)) + 1.0 + rng.normal(scale=0.1, size=len(X))
    run = train(Table(X, y, features, "y", "synthetic"), progress=False)
    return export_model(run, directory / "model", plots=False)


def make_inputs(directory: Path, rows: int, features: list[str], formats: list[str]) -> dict:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    rng = np.random.default_rng(1)
    schema = pa.schema([("id", pa.int64())] + [(f, pa.float64()) for f in features])
    paths = {fmt: directory / f"input.{fmt}" for fmt in formats}
    csv_writer = pacsv.CSVWriter(str(paths["csv"]), schema) if "csv" in paths else None
    pq_writer = pq.ParquetWriter(str(paths["parquet"]), schema) if "parquet" in paths else None
    for start in range(0, rows, GENERATE_ROWS):
        n = min(GENERATE_ROWS, rows - start)
        columns = [pa.array(np.arange(start, start + n))]
        columns += [pa.array(rng.normal(size=n)) for _ in features]
        chunk = pa.Table.from_arrays(columns, schema=schema)
        if csv_writer is not None:
            csv_writer.write_table(chunk)
        if pq_writer is not None:
            pq_writer.write_table(chunk)
    for w in (csv_writer, pq_writer):
        if w is not None:
            w.close()
    return paths


def run_child(job: str, model: Path, source: Path, output: Path) -> dict:
    output.unlink(missing_ok=True)
    cmd = [sys.executable, __file__, "--child", job, str(model), str(source), str(output)]
    root = Path(__file__).resolve().parents[1]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])),
    }
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{job} on {source.name} failed:\n{done.stderr}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    output.unlink(missing_ok=True)
    return result


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(*sys.argv[2:6])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--features", type=int, default=16)
    parser.add_argument("--formats", default="csv,parquet", help="comma-separated: csv, parquet")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each job (median kept)")
    parser.add_argument("--tmpdir", help="where to generate the files (default: the system's)")
    args = parser.parse_args()
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    features = [f"x{j}" for j in range(args.features)]

    with tempfile.TemporaryDirectory(prefix="bench_batch-", dir=args.tmpdir) as tmp:
        directory = Path(tmp)
        started = time.perf_counter()
        model = make_model(directory, features)
        paths = make_inputs(directory, args.rows, features, formats)
        sizes = {fmt: p.stat().st_size / 2**20 for fmt, p in paths.items()}
        print(
            f"generated {args.rows:,} rows x {args.features} features in "
            f"{time.perf_counter() - started:.1f} s: "
            + ", ".join(f"{fmt} {size:,.0f} MiB" for fmt, size in sizes.items()),
            file=sys.stderr,
        )
        rows = []
        for fmt in formats:
            source = paths[fmt]
            output = directory / f"output.{fmt}"
            results: dict[str, list[dict]] = {"naive": [], "stream": []}
            for _ in range(args.repeats):
                for job in ("naive", "stream"):
                    results[job].append(run_child(job, model, source, output))
                    r = results[job][-1]
                    print(
                        f"{fmt} {job}: {r['seconds']:.1f} s, peak RSS {r['peak_mb']:.0f} MB",
                        file=sys.stderr,
                    )
            summary = {}
            for job, runs in results.items():
                seconds = statistics.median(r["seconds"] for r in runs)
                summary[job] = {
                    "seconds": seconds,
                    "rate": runs[0]["rows"] / seconds,
                    "peak": max(r["peak_mb"] for r in runs),
                }
            for job in ("naive", "stream"):
                s = summary[job]
                speed = s["rate"] / summary["naive"]["rate"]
                rows.append(
                    f"| {fmt} | {job} | {args.rows:,} | {s['seconds']:.1f} | {s['rate']:,.0f} "
                    f"| {speed:.2f}× | {s['peak']:.0f} |"
                )

    import pandas as pd
    import pyarrow as pa

    print(
        f"\n{args.rows:,} rows × {args.features} features; {os.cpu_count()} CPUs, "
        f"{platform.python_implementation()} {platform.python_version()}, pyarrow "
        f"{pa.__version__}, pandas {pd.__version__}; median of {args.repeats} run(s)\n"
    )
    print("| input | job | rows | seconds | rows/s | speed vs naive | peak RSS (MB) |")
    print("|---|---|---:|---:|---:|---:|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
