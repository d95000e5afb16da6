"""Scoring a file with a linear model: ``linreg predict`` beside polars, DuckDB and pandas.

Run: ``.venv/bin/python benchmarks/bench_batch.py --rows 1000000,5000000 --repeats 3``
(polars and DuckDB come with ``pip install 'linreg-onnx[bench]'``).

Generates, for each ``--rows``, a file of that many rows (an ``id`` column and
``--features`` float64 features) as CSV and as Parquet, fits a model with that many
features on a small sample, and runs each job as its own process, from a fresh
interpreter to exit with the output written:

- ``linreg``: ``linreg predict MODEL INPUT -o OUTPUT`` (``--id-columns id`` for Parquet)
- ``polars``: ``scan_csv`` / ``scan_parquet``, the model as an expression
  (``b + w0*x0 + ...``, weights from the model's manifest), ``sink_csv`` / ``sink_parquet``
- ``duckdb``: ``COPY (SELECT <expression> FROM read_csv / read_parquet(...)) TO ...``
- ``naive``: pandas ``read_csv`` / ``read_parquet``, ``Predictor.predict`` on the
  whole frame, ``to_csv`` / ``to_parquet``
- with ``--base ROOT``, ``base``: the same ``linreg predict`` command run with
  ``PYTHONPATH=ROOT``, the code checked out at ROOT (for example ``git worktree add
  /tmp/bw-base main``, its C readers built with ``python setup.py build_ext --inplace``),
  so that a change is timed against the previous commit in the same run

CSV in gives CSV out with the prediction only; Parquet in gives Parquet out with
``id`` and the prediction. The polars, DuckDB and pandas jobs are the scripts in
:data:`USER_JOBS`, written as a user would write them (defaults, every core).

``--text``: a table with two text columns (10 and 50 levels) beside ``--features``
numbers (14 by default there), a formula model with both as factors, and polars and
DuckDB doing the same encoding as an expression (``replace_strict``, ``CASE WHEN``):
:mod:`bench_batch_text`. Its files live in ``text/`` under the data directory.

Wall time is measured by this process, from spawning the job to reaping it; peak RSS
is the job's ``ru_maxrss`` from ``wait4`` (this process imports only the standard
library, so its own few MB cannot be the maximum). Jobs are interleaved: each repeat
runs every job once, in an order rotated from repeat to repeat, and the table gives
medians. Before each run, /proc/stat is read: "others" is the CPU (in cores) that
processes other than the job used while it ran, a measure of how busy the machine
was. Every job's output of the first repeat is checked against numpy on the same
data (``X @ w + b`` in float64, relative error at most 1e-4), and its row count and
ids, so that a wrong job cannot win.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_batch_text import TEXT_JOBS, make_text_inputs, make_text_model  # noqa: E402

JOBS = ("linreg", "polars", "duckdb", "naive")
FORMATS = ("csv", "parquet")
GENERATE_ROWS = 1 << 20  # rows generated (and written as one Parquet row group) at a time
#: the largest relative difference from numpy's float64 result (the model is float32)
RTOL = 1e-4

# Each script is run as ``python -c SCRIPT MODEL INPUT OUTPUT``.
_MODEL = """\
import json, sys
model, src, out = sys.argv[1:4]
with open(f"{model}/manifest.json") as f:
    manifest = json.load(f)
features = manifest["features"]
coef, intercept = manifest["parameters"]["coef"], manifest["parameters"]["intercept"]
"""
USER_JOBS = {
    ("polars", "csv"): _MODEL
    + """\
import polars as pl
prediction = sum((pl.col(f) * w for f, w in zip(features, coef)), pl.lit(intercept))
pl.scan_csv(src).select(prediction.alias("prediction")).sink_csv(out)
""",
    ("polars", "parquet"): _MODEL
    + """\
import polars as pl
prediction = sum((pl.col(f) * w for f, w in zip(features, coef)), pl.lit(intercept))
pl.scan_parquet(src).select("id", prediction.alias("prediction")).sink_parquet(out)
""",
    ("duckdb", "csv"): _MODEL
    + """\
import duckdb
prediction = " + ".join([repr(intercept)] + [f'{w!r} * "{f}"' for f, w in zip(features, coef)])
duckdb.sql(f"COPY (SELECT {prediction} AS prediction FROM read_csv('{src}')) TO '{out}' (HEADER)")
""",
    ("duckdb", "parquet"): _MODEL
    + """\
import duckdb
prediction = " + ".join([repr(intercept)] + [f'{w!r} * "{f}"' for f, w in zip(features, coef)])
duckdb.sql(
    f"COPY (SELECT id, {prediction} AS prediction FROM read_parquet('{src}')) "
    f"TO '{out}' (FORMAT parquet)"
)
""",
    ("naive", "csv"): """\
import sys
import pandas as pd
from inference import Predictor
model, src, out = sys.argv[1:4]
predictor = Predictor.load(model, providers="cpu")
frame = pd.read_csv(src)
pd.DataFrame({"prediction": predictor.predict(frame)}).to_csv(out, index=False)
""",
    ("naive", "parquet"): """\
import sys
import pandas as pd
from inference import Predictor
model, src, out = sys.argv[1:4]
predictor = Predictor.load(model, providers="cpu")
frame = pd.read_parquet(src)
scored = pd.DataFrame({"id": frame["id"], "prediction": predictor.predict(frame)})
scored.to_parquet(out, index=False)
""",
}


def job_command(
    job: str, fmt: str, model: Path, source: Path, output: Path, text: bool = False
) -> list[str]:
    """The command line of one job (``text``: the text-columns mode's scripts; "base":
    ``linreg predict`` of the checkout given by ``--base``)."""
    if job in ("linreg", "base"):
        linreg = Path(sys.executable).with_name("linreg")
        cmd = [str(linreg), "predict", str(model), str(source), "-o", str(output)]
        return cmd + ["--no-progress"] + (["--id-columns", "id"] if fmt == "parquet" else [])
    script = TEXT_JOBS[job, fmt] if text and job != "naive" else USER_JOBS[job, fmt]
    return [sys.executable, "-c", script, str(model), str(source), str(output)]


# --- measuring ------------------------------------------------------------------
def _busy_seconds() -> float:
    """CPU seconds (user, nice, system, irq, softirq, steal) of the whole machine so far."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    busy = fields[0] + fields[1] + fields[2] + sum(fields[5:8])
    return busy / os.sysconf("SC_CLK_TCK")


def run_measured(cmd: list[str], log: Path, root: Path = ROOT) -> dict:
    """Run ``cmd`` to exit, with the code at ``root`` first on ``PYTHONPATH``: wall
    seconds, peak RSS (MB), CPU seconds, others' CPU (cores)."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])),
    }
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_DUP2, fd, 1),
            (os.POSIX_SPAWN_DUP2, fd, 2),
        ]
        busy = _busy_seconds()
        started = time.perf_counter()
        pid = os.posix_spawn(cmd[0], cmd, env, file_actions=actions)
        _, status, usage = os.wait4(pid, 0)
        wall = time.perf_counter() - started
        busy = _busy_seconds() - busy
    finally:
        os.close(fd)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"{' '.join(cmd[:2])}... exited with {code}:\n{log.read_text()[-3000:]}")
    cpu = usage.ru_utime + usage.ru_stime
    return {
        "seconds": wall,
        "peak_mb": usage.ru_maxrss / 1024,
        "cpu": cpu,
        "others": max(busy - cpu, 0.0) / wall,
    }


# --- children: generating and checking (run in their own processes) ----------------
def make_model(directory: Path, features: list[str]) -> Path:
    import numpy as np

    from training.data import Table
    from training.export import export_model
    from training.pipeline import train

    rng = np.random.default_rng(0)
    X = rng.normal(size=(2_000, len(features)))
    y = X @ rng.normal(size=len(features)) + 1.0 + rng.normal(scale=0.1, size=len(X))
    run = train(Table(X, y, features, "y", "synthetic"), progress=False)
    return export_model(run, directory, plots=False)


def make_inputs(directory: Path, rows: int, features: list[str]) -> None:
    """``input-<rows>.csv`` and ``.parquet`` (the same values), and the reference
    prediction ``reference-<rows>.npy`` (numpy, float64) from ``directory/model``."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    manifest = json.loads((directory / "model" / "manifest.json").read_text())
    coef = np.array(manifest["parameters"]["coef"], dtype=np.float64)
    intercept = float(manifest["parameters"]["intercept"])
    rng = np.random.default_rng(1)
    schema = pa.schema([("id", pa.int64())] + [(f, pa.float64()) for f in features])
    stem = directory / f"input-{rows}"
    csv_writer = pacsv.CSVWriter(f"{stem}.csv", schema)
    pq_writer = pq.ParquetWriter(f"{stem}.parquet", schema)
    reference = np.empty(rows)
    for start in range(0, rows, GENERATE_ROWS):
        n = min(GENERATE_ROWS, rows - start)
        X = rng.normal(size=(n, len(features)))
        reference[start : start + n] = X @ coef + intercept
        columns = [pa.array(np.arange(start, start + n))] + [pa.array(c) for c in X.T]
        chunk = pa.Table.from_arrays(columns, schema=schema)
        csv_writer.write_table(chunk)
        pq_writer.write_table(chunk)
    csv_writer.close()
    pq_writer.close()
    np.save(directory / f"reference-{rows}.npy", reference)


def check_output(output: Path, reference: Path, fmt: str) -> str:
    """'' when ``output`` holds the reference prediction (and, for Parquet, the ids in
    order), else what is wrong."""
    import numpy as np
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    table = pq.read_table(output) if fmt == "parquet" else pacsv.read_csv(output)
    expected = np.load(reference)
    if table.num_rows != len(expected):
        return f"{table.num_rows} rows, expected {len(expected)}"
    if fmt == "parquet":
        if table.column_names != ["id", "prediction"]:
            return f"columns {table.column_names}, expected ['id', 'prediction']"
        ids = np.asarray(table.column("id").to_numpy())
        if not np.array_equal(ids, np.arange(len(expected))):
            return "the ids are not 0, 1, 2, ... in order"
    elif table.column_names != ["prediction"]:
        return f"columns {table.column_names}, expected ['prediction']"
    got = table.column("prediction").to_numpy().astype(np.float64)
    error = np.abs(got - expected) / (1.0 + np.abs(expected))
    worst = int(np.argmax(error))
    if not error[worst] <= RTOL:
        return f"row {worst}: {got[worst]!r}, numpy gives {expected[worst]!r}"
    return ""


def child(argv: list[str]) -> None:
    task, directory = argv[0], Path(argv[1])
    if task == "model":
        make_model(directory / "model", [f"x{j}" for j in range(int(argv[2]))])
    elif task == "inputs":
        make_inputs(directory, int(argv[2]), [f"x{j}" for j in range(int(argv[3]))])
    elif task == "text-model":
        make_text_model(directory / "model", [f"x{j}" for j in range(int(argv[2]))])
    elif task == "text-inputs":
        features = [f"x{j}" for j in range(int(argv[3]))]
        make_text_inputs(directory, int(argv[2]), features, GENERATE_ROWS)
    elif task == "check":
        problem = check_output(Path(argv[2]), directory / argv[3], argv[4])
        print(json.dumps({"problem": problem}))
    else:
        raise SystemExit(f"unknown child task {task!r}")


def run_child(*args: str) -> str:
    import subprocess

    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    cmd = [sys.executable, __file__, "--child", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done.stdout


# --- the benchmark ------------------------------------------------------------
def available(job: str) -> bool:
    import importlib.util

    module = {"polars": "polars", "duckdb": "duckdb", "naive": "pandas"}.get(job)
    return module is None or importlib.util.find_spec(module) is not None


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo ("?" where absent)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


def versions() -> str:
    script = (
        "import importlib.metadata as m\n"
        "for p in ('pyarrow', 'onnxruntime', 'polars', 'duckdb', 'pandas', 'numpy'):\n"
        "    try: print(p, m.version(p), end='; ')\n"
        "    except m.PackageNotFoundError: pass\n"
    )
    import subprocess

    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    return done.stdout.strip().rstrip(";")


def compile_bytecode(root: Path = ROOT) -> None:
    """Write the project's ``.pyc`` files, as ``pip install`` does for an installed
    package (and Python on first import, unless PYTHONDONTWRITEBYTECODE is set, as it
    is on some CI machines: every run would then compile our modules from source,
    about 70 ms of a job's start-up, while the peers' wheels come compiled)."""
    import compileall

    for package in ("inference", "training"):
        compileall.compile_dir(str(root / package), quiet=1)


def bench(args: argparse.Namespace, directory: Path) -> list[dict]:
    jobs = [j for j in args.jobs.split(",") if j]
    missing = [j for j in jobs if not available(j)]
    if missing:
        print(
            f"skipping {missing}: not installed (pip install 'linreg-onnx[bench]')", file=sys.stderr
        )
        jobs = [j for j in jobs if j not in missing]
    formats = [f for f in args.formats.split(",") if f]
    sizes = [int(r) for r in args.rows.split(",") if r]
    compile_bytecode()
    text = getattr(args, "text", False)
    if text:
        directory = directory / "text"
        directory.mkdir(exist_ok=True)
    prefix = "text-" if text else ""
    base = getattr(args, "base", None)
    if base:
        compile_bytecode(base)
        jobs.insert(jobs.index("linreg") + 1 if "linreg" in jobs else 0, "base")
    model = directory / "model"
    if not (model / "manifest.json").exists():
        run_child(f"{prefix}model", str(directory), str(args.features))
    results = []
    for rows in sizes:
        if not all((directory / f"input-{rows}.{fmt}").exists() for fmt in FORMATS):
            started = time.perf_counter()
            run_child(f"{prefix}inputs", str(directory), str(rows), str(args.features))
            print(
                f"generated {rows:,} rows in {time.perf_counter() - started:.1f} s", file=sys.stderr
            )
        for fmt in formats:
            source = directory / f"input-{rows}.{fmt}"
            runs: dict[str, list[dict]] = {j: [] for j in jobs}
            for repeat in range(args.repeats):
                shift = repeat % len(jobs)
                for job in jobs[shift:] + jobs[:shift]:
                    output = directory / f"output-{job}.{fmt}"
                    output.unlink(missing_ok=True)
                    cmd = job_command(job, fmt, model, source, output, text)
                    root = base if job == "base" else ROOT
                    r = run_measured(cmd, directory / f"{job}.log", root)
                    if repeat == 0:
                        verdict = json.loads(
                            run_child(
                                "check", str(directory), str(output), f"reference-{rows}.npy", fmt
                            )
                        )
                        if verdict["problem"]:
                            raise SystemExit(
                                f"{job} on {source.name}: wrong output: {verdict['problem']}"
                            )
                    output.unlink(missing_ok=True)
                    runs[job].append(r)
                    print(
                        f"{rows:>9,} {fmt:<7} {job:<6} {r['seconds']:6.2f} s  "
                        f"{r['peak_mb']:5.0f} MB  cpu {r['cpu']:5.2f} s  "
                        f"others {r['others']:.2f} cores",
                        file=sys.stderr,
                    )
            for job, rs in runs.items():
                results.append(
                    {
                        "rows": rows,
                        "format": fmt,
                        "job": job,
                        "seconds": statistics.median(r["seconds"] for r in rs),
                        "min": min(r["seconds"] for r in rs),
                        "max": max(r["seconds"] for r in rs),
                        "cpu": statistics.median(r["cpu"] for r in rs),
                        "peak_mb": max(r["peak_mb"] for r in rs),
                        "others": statistics.median(r["others"] for r in rs),
                        "runs": rs,
                    }
                )
    return results


def table(results: list[dict]) -> str:
    """Markdown: one line per job, the ratio to the faster of polars and DuckDB, and the
    job's own CPU time (user + system, every thread; median), which a busy machine
    disturbs less than the wall time."""
    lines = [
        "| rows | format | job | seconds (median) | range | vs best of polars/DuckDB "
        "| CPU seconds | peak RSS (MB) |",
        "|---:|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        rivals = [
            q["seconds"]
            for q in results
            if q["rows"] == r["rows"]
            and q["format"] == r["format"]
            and q["job"] in ("polars", "duckdb")
        ]
        ratio = f"{r['seconds'] / min(rivals):.2f}×" if rivals else "–"
        job = {"linreg": "`linreg predict`", "base": "base: `linreg predict`"}.get(
            r["job"], r["job"]
        )
        lines.append(
            f"| {r['rows']:,} | {r['format']} | {job} | {r['seconds']:.2f} | "
            f"{r['min']:.2f}–{r['max']:.2f} | {ratio} | {r['cpu']:.2f} | {r['peak_mb']:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="1000000,5000000", help="comma-separated row counts")
    parser.add_argument(
        "--features", type=int, default=None, help="numeric features (default 16; 14 with --text)"
    )
    parser.add_argument(
        "--text",
        action="store_true",
        help="two text columns (10 and 50 levels) as factors beside the numbers",
    )
    parser.add_argument("--formats", default="csv,parquet", help="comma-separated: csv, parquet")
    parser.add_argument(
        "--jobs", default=",".join(JOBS), help=f"comma-separated: {', '.join(JOBS)}"
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs of each job (median kept)")
    parser.add_argument(
        "--data",
        help="keep the model and files here and reuse them (default: a temporary directory)",
    )
    parser.add_argument("--json", help="also write every run here")
    parser.add_argument(
        "--base",
        type=lambda v: Path(v).resolve(),
        help="also run `linreg predict` from the code checked out at this directory",
    )
    args = parser.parse_args()
    if args.features is None:
        args.features = 14 if args.text else 16

    started = time.perf_counter()
    with open("/proc/loadavg") as f:
        load_start = f.read().split()[:3]
    if args.data:
        Path(args.data).mkdir(parents=True, exist_ok=True)
        results = bench(args, Path(args.data))
    else:
        with tempfile.TemporaryDirectory(prefix="bench_batch-") as tmp:
            results = bench(args, Path(tmp))
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    others = [r["others"] for r in results]
    columns = f"{args.features} float features" + (
        " and 2 text columns (10 and 50 levels)" if args.text else ""
    )
    print(
        f"\n{columns} plus an id; {os.cpu_count()} CPUs; "
        f"{platform.python_implementation()} {platform.python_version()}; {versions()}; "
        f"median of {args.repeats} interleaved run(s); whole process, start to exit; "
        f"other processes used {min(others):.2f}–{max(others):.2f} cores (median per job), "
        f"load average {' '.join(load_start)} at the start, {' '.join(load)} at the end; "
        f"CPU {cpu_model()}; {time.perf_counter() - started:.0f} s in all\n"
    )
    print(table(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
