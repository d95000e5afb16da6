"""``bench.json``: a run in pytest-benchmark's JSON layout.

The statistics follow pytest-benchmark's definitions, so ``pytest-benchmark compare``
reads the file and sets it beside a run of the suite in ``benchmarks/``.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
from pathlib import Path
from typing import Any

from training.bench.coldstart import COLD_NOTES
from training.bench.machine import cpu_description, cpu_model, versions
from training.bench.run import BenchRun
from training.bench.timing import Result, bound_seconds
from training.bench.workload import SEED

__all__ = ["to_json"]


def _quartiles(s: list[float]) -> tuple[float, float]:
    """pytest-benchmark's first and third quartiles of the sorted ``s``."""
    n = len(s)
    if n == 1:
        return s[0], s[0]
    if n % 2 == 0:
        return statistics.median(s[: n // 2]), statistics.median(s[n // 2 :])
    m, r = n // 4, n % 4
    if r == 1:
        return 0.25 * s[m - 1] + 0.75 * s[m], 0.75 * s[3 * m] + 0.25 * s[3 * m + 1]
    return 0.75 * s[m] + 0.25 * s[m + 1], 0.25 * s[3 * m + 1] + 0.75 * s[3 * m + 2]


def _stats(data: list[float]) -> dict[str, Any]:
    """pytest-benchmark's statistics of ``data`` (seconds), same definitions."""
    s = sorted(data)
    n = len(s)
    mean = statistics.fmean(s)
    stddev = statistics.stdev(s) if n > 1 else 0.0
    q1, q3 = _quartiles(s)
    iqr = q3 - q1
    low = [v for v in s if v >= q1 - 1.5 * iqr]
    high = [v for v in s if v <= q3 + 1.5 * iqr]
    std_out = sum(1 for v in s if v < mean - stddev or v > mean + stddev)
    iqr_out = sum(1 for v in s if v < q1 - 1.5 * iqr or v > q3 + 1.5 * iqr)
    total = sum(s)
    return {
        "min": s[0],
        "max": s[-1],
        "mean": mean,
        "stddev": stddev,
        "rounds": n,
        "median": statistics.median(s),
        "iqr": iqr,
        "q1": q1,
        "q3": q3,
        "iqr_outliers": iqr_out,
        "stddev_outliers": std_out,
        "outliers": f"{std_out};{iqr_out}",
        "ld15iqr": low[0] if low else s[0],
        "hd15iqr": high[-1] if high else s[-1],
        "ops": n / total if total else 0.0,
        "total": total,
        "iterations": 1,
    }


def _commit_info() -> dict[str, Any]:
    root = Path(__file__).resolve().parents[2]

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()

    try:
        return {
            "id": git("rev-parse", "HEAD"),
            "time": git("show", "-s", "--pretty=format:%cI"),
            "author_time": git("show", "-s", "--pretty=format:%aI"),
            "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
            "project": "linreg-onnx",
            "branch": git("rev-parse", "--abbrev-ref", "HEAD"),
        }
    except Exception as exc:
        return {"id": "unknown", "time": None, "author_time": None, "dirty": False,
                "project": "linreg-onnx", "branch": "(unknown)", "error": repr(exc)}  # fmt: skip


def _timed_entry(r: Result, bw: float) -> dict[str, Any]:
    params = {"backend": r.backend.name, "batch": r.n, "k": r.k}
    return {
        "group": r.group,
        "name": f"{r.backend.name}[batch={r.n}-k={r.k}]",
        "fullname": f"linreg bench::{r.backend.name}[batch={r.n}-k={r.k}]",
        "params": params,
        "param": f"{r.backend.name}-{r.n}-{r.k}",
        "extra_info": {
            **params,
            "provider": r.backend.provider,
            "device": r.backend.device,
            "p90": r.percentile(90),
            "p99": r.percentile(99),
            "rows_per_s": r.n / r.p50,
            "bound_s": bound_seconds(r.n, r.k, bw),
            "percent_of_bound": 100 * bound_seconds(r.n, r.k, bw) / r.p50,
            "bandwidth_bytes_per_s": bw,
            "max_relative_error": r.error,
            "seed": SEED,
            "cpu": cpu_model(),
            "load_before": r.load_before,
            "load_after": r.load_after,
            "loads": [list(pair) for pair in r.loads],
        },
        "options": {"disable_gc": True, "timer": "perf_counter_ns", "warmup": True},
        "stats": _stats(r.times),
    }


def _cold_entry(run: BenchRun, name: str) -> dict[str, Any]:
    return {
        "group": f"cold start k={run.cold_k}",
        "name": f"cold-start[{name}]",
        "fullname": f"linreg bench::cold-start[{name}]",
        "params": {"backend": name, "k": run.cold_k},
        "param": name,
        "extra_info": {
            "backend": name,
            "what": COLD_NOTES[name],
            "device": "cpu",
            **{f"median_{key}": val for key, val in run.cold_median(name).items()},
            "measure": "import + load + first prediction (s), in a fresh process",
        },
        "options": {"disable_gc": False, "timer": "perf_counter", "warmup": False},
        "stats": _stats([s["total_s"] for s in run.cold[name]]),
    }


def _machine_info(run: BenchRun) -> dict[str, Any]:
    return {
        "node": platform.node(),
        "processor": platform.processor(),
        "machine": platform.machine(),
        "python_compiler": platform.python_compiler(),
        "python_implementation": platform.python_implementation(),
        "python_implementation_version": platform.python_version(),
        "python_version": platform.python_version(),
        "python_build": list(platform.python_build()),
        "release": platform.release(),
        "system": platform.system(),
        "cpu": {"brand_raw": cpu_description(), "model": cpu_model(), "count": os.cpu_count()},
        "load_average_1min": run.load,
        "memory_bandwidth": run.bandwidth,
        "versions": versions(),
        "skipped": run.skipped,
        "settings": run.settings,
    }


def to_json(run: BenchRun) -> dict[str, Any]:
    """pytest-benchmark's JSON layout, so ``pytest-benchmark compare`` reads it."""
    bw = run.bandwidth["bytes_per_s"]
    benchmarks = [_timed_entry(r, bw) for r in run.results]
    benchmarks += [_cold_entry(run, name) for name in run.cold]
    try:
        from pytest_benchmark import __version__ as pb_version
    except ImportError:
        pb_version = "5.1.0"
    return {
        "machine_info": _machine_info(run),
        "commit_info": _commit_info(),
        "benchmarks": benchmarks,
        "datetime": run.started,
        "version": pb_version,
    }
