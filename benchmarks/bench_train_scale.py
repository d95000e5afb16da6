"""Training at scale: ``linreg train`` beside scikit-learn and statsmodels, and the streamed fit.

Run: ``.venv/bin/python benchmarks/bench_train_scale.py [--csv-rows 1000000]
[--parquet-rows 20000000] [--lre-rows 2000000] [--repeats 1] [--dir /tmp]``. Prints
Markdown tables. Every job is a separate process, timed from start to exit, with its
peak resident memory (``ru_maxrss`` of that child, from ``os.wait4`` in a small
launcher process, see :data:`LAUNCHER`); the jobs of one
table run interleaved, round after round, and the tables give medians over the rounds.

1. A CSV file of ``--csv-rows`` × 16 features (float32-precision values, as the
   162 MB file of the original report): ``linreg train`` (the engine it chooses by
   size, and each engine by name), scikit-learn (``pyarrow.csv.read_csv`` +
   ``LinearRegression().fit``) and statsmodels (``pandas.read_csv`` +
   ``OLS(...).fit().summary()``).
2. A Parquet file of ``--parquet-rows`` × 16: one plain ``pyarrow.dataset`` scan of it
   against the streamed fit (``training.chunked.streaming.fit_file``: a factor pass and two
   epochs). Its peak memory is also given above the process's own baseline (the
   memory after importing what the fit imports), since torch alone takes about 220 MB.
   Then the command a user runs, ``linreg train --data FILE --target y`` (which streams
   a file of 1 GiB or more), as a whole process.
3. Accuracy: the streamed fit of a ``--lre-rows`` × 16 Parquet file against
   ``numpy.linalg.lstsq`` on the data in memory, as the log relative error (LRE, the
   number of correct significant digits of the worst coefficient).

The files are written to ``--dir`` (free space checked first) and deleted at the end.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
LINREG = str(Path(PYTHON).with_name("linreg"))
K = 16
SCALES = np.linspace(0.5, 50.0, K)
OFFSETS = np.linspace(-20.0, 300.0, K)


def rows(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` rows: features of different scales and offsets, a linear target with noise."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, K)) * SCALES + OFFSETS
    beta = np.linspace(-2.0, 2.0, K)
    y = X @ beta + 7.0 + rng.standard_normal(n)
    return X, y


def write_table(path: Path, n: int, kind: str, float32: bool, block: int = 1_000_000) -> None:
    """Write ``n`` rows in blocks (memory bounded by the block)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    names = [f"x{j}" for j in range(K)] + ["y"]
    writer = None
    try:
        for i, lo in enumerate(range(0, n, block)):
            X, y = rows(min(block, n - lo), seed=1000 + i)
            dtype = np.float32 if float32 else np.float64
            cols = [X[:, j].astype(dtype) for j in range(K)] + [y.astype(dtype)]
            table = pa.table(dict(zip(names, cols, strict=True)))
            if writer is None:
                writer = (
                    pq.ParquetWriter(path, table.schema)
                    if kind == "parquet"
                    else pacsv.CSVWriter(path, table.schema)
                )
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()


#: Runs a command and reports its wall time and peak RSS on stderr. Linux carries a
#: process's peak RSS across ``exec`` (and a child made by ``vfork`` starts from its
#: parent's), so a job started straight from this benchmark, which holds the generated
#: data, would report at least this process's peak; started from this small launcher,
#: it reports its own.
LAUNCHER = """
import json, os, sys, time
t = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - t
code = os.waitstatus_to_exitcode(status)
print("RUSAGE " + json.dumps({"wall_s": wall, "rss_mb": usage.ru_maxrss / 1024, "status": code}),
      file=sys.stderr)
"""


def run_measured(command: list[str]) -> dict[str, float]:
    """Run ``command`` (through :data:`LAUNCHER`): its wall time (s), its own peak RSS
    (MB) and the JSON object its last line of output holds, if any."""
    proc = subprocess.run(
        [PYTHON, "-c", LAUNCHER, *command], capture_output=True, cwd=ROOT, check=False
    )
    marker = [line for line in proc.stderr.decode().splitlines() if line.startswith("RUSAGE ")]
    if not marker:
        raise RuntimeError(f"{' '.join(command[:4])}: {proc.stderr.decode()[-2000:]}")
    result: dict[str, float] = json.loads(marker[-1][len("RUSAGE ") :])
    if result.pop("status") != 0:
        raise RuntimeError(f"{' '.join(command[:4])} failed: {proc.stderr.decode()[-2000:]}")
    out = proc.stdout.decode().strip().splitlines()
    if out and out[-1].startswith("{"):
        result.update(json.loads(out[-1]))
    return result


SKLEARN = """
import sys, numpy as np, pyarrow.csv as pacsv
from sklearn.linear_model import LinearRegression
t = pacsv.read_csv(sys.argv[1])
names = [c for c in t.column_names if c != "y"]
X = np.column_stack([t.column(c).to_numpy() for c in names]); y = t.column("y").to_numpy()
m = LinearRegression().fit(X, y); print(m.intercept_)
"""

STATSMODELS = """
import sys, pandas as pd, statsmodels.api as sm
df = pd.read_csv(sys.argv[1])
X = sm.add_constant(df.drop(columns=["y"])); r = sm.OLS(df["y"], X).fit(); print(r.summary())
"""

SCAN = """
import sys, json, time, pyarrow.dataset as ds
t = time.perf_counter(); n = 0
for batch in ds.dataset(sys.argv[1], format="parquet").to_batches():
    n += batch.num_rows
print(json.dumps({"rows": n, "scan_s": time.perf_counter() - t}))
"""

STREAM = """
import sys, json, time, resource, warnings
import torch, training.solver.sgd, training.pipeline, training.stats
from training.chunked.streaming import fit_file
warnings.simplefilter("ignore")
imported = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
run = fit_file(sys.argv[1], target="y", progress=False)
fit_s = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"fit_s": fit_s, "imports_rss_mb": imported / 1024,
    "fit_rss_above_imports_mb": (peak - imported) / 1024, "passes": run.data["passes"],
    "params": run.statistics.params.tolist(), "converged": run.report.converged}))
"""


def median_of(results: list[dict[str, float]], key: str) -> float:
    return float(statistics.median(r[key] for r in results))


def csv_section(path: Path, repeats: int) -> list[str]:
    jobs = {
        "`linreg train` (auto: by file size)": [
            LINREG, "train", "--data", str(path), "--target", "y",
        ],
        "`linreg train --engine chunked`": [
            LINREG, "train", "--data", str(path), "--target", "y", "--engine", "chunked",
        ],
        "`linreg train --streaming`": [
            LINREG, "train", "--data", str(path), "--target", "y", "--streaming",
        ],
        "scikit-learn: `pyarrow.csv.read_csv` + `LinearRegression().fit`": [
            PYTHON, "-c", SKLEARN, str(path),
        ],
        "statsmodels: `pandas.read_csv` + `OLS(...).fit().summary()`": [
            PYTHON, "-c", STATSMODELS, str(path),
        ],
    }  # fmt: skip
    results: dict[str, list[dict[str, float]]] = {name: [] for name in jobs}
    for _ in range(repeats):
        for name, command in jobs.items():
            results[name].append(run_measured(command))
    sk = median_of(results[list(jobs)[3]], "wall_s")
    sm = median_of(results[list(jobs)[4]], "rss_mb")
    lines = [
        f"CSV {path.stat().st_size / 1e6:.0f} MB, medians of {repeats} interleaved round(s)",
        "",
        "| job | wall time (s) | peak RSS (MB) | time / scikit-learn's | RSS / statsmodels' |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in jobs:
        wall, rss = median_of(results[name], "wall_s"), median_of(results[name], "rss_mb")
        lines.append(f"| {name} | {wall:.2f} | {rss:.0f} | {wall / sk:.2f} | {rss / sm:.2f} |")
    return lines


def parquet_section(path: Path, n: int, repeats: int) -> list[str]:
    scans, fits, cli = [], [], []
    command = [LINREG, "train", "--data", str(path), "--target", "y"]  # auto: streams
    for _ in range(repeats):
        scans.append(run_measured([PYTHON, "-c", SCAN, str(path)]))
        fits.append(run_measured([PYTHON, "-c", STREAM, str(path)]))
        cli.append(run_measured(command))
    scan = median_of(scans, "scan_s")
    fit = median_of(fits, "fit_s")
    last = fits[-1]
    passes = ", ".join(f"{p['pass']} {p['seconds']:.1f} s" for p in last["passes"])  # type: ignore[index]
    size = path.stat().st_size / 1e9
    imports = median_of(fits, "imports_rss_mb")
    above = median_of(fits, "fit_rss_above_imports_mb")
    return [
        f"Parquet {n:,} rows × {K} ({size:.2f} GB), medians of {repeats} round(s)",
        "",
        "| measure | value |",
        "|---|---:|",
        f"| one `pyarrow.dataset` scan (s) | {scan:.2f} |",
        f"| streamed fit (s; {passes}) | {fit:.2f} |",
        f"| fit / scan | {fit / scan:.2f} |",
        f"| fit process peak RSS (MB) | {median_of(fits, 'rss_mb'):.0f} |",
        f"| of which after its imports (torch, scipy) (MB) | {imports:.0f} |",
        f"| fit's peak above its imports (MB) | {above:.0f} |",
        f"| converged | {last['converged']} |",
        f"| `linreg train --data FILE --target y` (streams): wall time, start to exit (s) | "
        f"{median_of(cli, 'wall_s'):.2f} |",
        f"| its peak RSS (MB) | {median_of(cli, 'rss_mb'):.0f} |",
        f"| scan process wall time, start to exit (s) | {median_of(scans, 'wall_s'):.2f} |",
    ]  # fmt: skip


def lre_section(path: Path, n: int) -> list[str]:
    fit = run_measured([PYTHON, "-c", STREAM, str(path)])
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    X = np.column_stack([table.column(f"x{j}").to_numpy() for j in range(K)])
    y = table.column("y").to_numpy()
    del table
    ref = np.linalg.lstsq(np.column_stack([np.ones(n), X]), y, rcond=None)[0]
    got = np.asarray(fit["params"])
    lre = float(np.min(-np.log10(np.abs(got - ref) / np.abs(ref))))
    return [
        f"Accuracy, {n:,} rows × {K} Parquet: streamed fit vs `numpy.linalg.lstsq` in memory",
        "",
        f"- smallest LRE over the {K + 1} coefficients: **{lre:.1f}** digits",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv-rows", type=int, default=1_000_000)
    parser.add_argument("--parquet-rows", type=int, default=20_000_000)
    parser.add_argument("--lre-rows", type=int, default=2_000_000)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--skip", nargs="*", default=[], choices=["csv", "parquet", "lre"])
    args = parser.parse_args()
    need = (args.csv_rows * 170 + args.parquet_rows * 140 + args.lre_rows * 140) * 1.2
    free = shutil.disk_usage(args.dir).free
    if free < need:
        print(f"{args.dir}: {free / 1e9:.1f} GB free, the files need {need / 1e9:.1f} GB")
        return 1
    from bench_batch import compile_bytecode  # this directory is sys.path[0]

    compile_bytecode()
    work = Path(tempfile.mkdtemp(prefix="bench-train-scale-", dir=args.dir))
    try:
        if "csv" not in args.skip:
            csv = work / "big.csv"
            write_table(csv, args.csv_rows, "csv", float32=True)
            print("\n".join(csv_section(csv, args.repeats)), "\n", flush=True)
            csv.unlink()
        if "parquet" not in args.skip:
            big = work / "big.parquet"
            write_table(big, args.parquet_rows, "parquet", float32=False)
            print(
                "\n".join(parquet_section(big, args.parquet_rows, args.repeats)), "\n", flush=True
            )
            big.unlink()
        if "lre" not in args.skip:
            small = work / "small.parquet"
            write_table(small, args.lre_rows, "parquet", float32=False)
            print("\n".join(lre_section(small, args.lre_rows)), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
