"""``linreg bench`` names the CPU model and the load average around each backend's timing.

The recorded values are compared with what /proc and ``os.getloadavg`` say in this
process; no timing is asserted.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from training.bench.backends import Backend
from training.bench.benchjson import to_json
from training.bench.machine import cpu_description, cpu_model, load_average
from training.bench.report import markdown
from training.bench.run import BenchRun
from training.bench.timing import time_group


def test_cpu_model_is_the_one_proc_cpuinfo_names():
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists():
        pytest.skip("no /proc/cpuinfo on this OS")
    names = [
        line.split(":", 1)[1].strip()
        for line in cpuinfo.read_text().splitlines()
        if line.startswith("model name")
    ]
    if not names:
        pytest.skip("/proc/cpuinfo names no model here")
    assert cpu_model() == names[0]
    assert cpu_description().startswith(f"{names[0]}, {os.cpu_count()} cores")


def test_load_average_is_the_os_one():
    if not hasattr(os, "getloadavg"):
        pytest.skip("no load average on this OS")
    low, got, high = os.getloadavg()[0], load_average(), os.getloadavg()[0]
    assert got is not None and min(low, high) - 0.5 <= got <= max(low, high) + 0.5


def _run() -> BenchRun:
    w = np.array([2.0, -1.0], dtype=np.float32)
    backends = [
        Backend("numpy", "numpy", "cpu", lambda x: lambda: x @ w + np.float32(0.5)),
        Backend("predictor", "fake", "cpu", lambda x: lambda: x @ w + np.float32(0.5)),
    ]
    x = np.random.default_rng(0).normal(size=(64, 2)).astype(np.float32)
    reference = x.astype(np.float64) @ w.astype(np.float64) + 0.5
    results = time_group(backends, x, reference, rounds=6, passes=3)
    bandwidth = {"bytes_per_s": 1e10, "method": "given", "bytes_per_s (one thread)": 1e10}
    settings = {"sizes": [64], "features": [2], "rounds": 6, "seed": 0, "cold_repeats": 0}
    load = {"start": load_average(), "end of the timed groups": load_average()}
    return BenchRun(results, {}, bandwidth, {}, 2, settings, "2026-01-01T00:00:00", load)


def test_each_backend_records_the_load_before_and_after_its_blocks():
    run = _run()
    for r in run.results:
        assert len(r.times) == 6 and len(r.loads) == 3  # one (before, after) per pass
        if hasattr(os, "getloadavg"):
            assert all(isinstance(v, float) and v >= 0 for pair in r.loads for v in pair)
            assert r.load_before == r.loads[0][0] and r.load_after == r.loads[-1][1]


def test_report_and_json_carry_cpu_model_and_load():
    run = _run()
    table = markdown(run)
    assert f"CPU model `{cpu_model()}`" in table
    assert (
        "| batch | backend | p50 | p90 | p99 | rows/s | % of bound | p50 ÷ numpy | load |" in table
    )
    r = run.results[0]
    row = next(line for line in table.splitlines() if line.startswith("| 64 | numpy |"))
    assert row.endswith(f"| {r.load_before:.2f} → {r.load_after:.2f} |")
    assert "Load average (1 minute, all cores together):" in table
    data = to_json(run)
    assert data["machine_info"]["cpu"]["model"] == cpu_model()
    assert data["machine_info"]["load_average_1min"] == run.load
    for entry, result in zip(data["benchmarks"], run.results, strict=True):
        extra = entry["extra_info"]
        assert extra["cpu"] == cpu_model()
        assert extra["load_before"] == result.load_before
        assert extra["load_after"] == result.load_after
        assert extra["loads"] == [list(pair) for pair in result.loads]


@pytest.mark.slow
def test_bench_bulk_runs_on_tiny_sizes():
    """benchmarks/bench_bulk.py end to end (it checks each Predictor against numpy)."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    argv = ["--sizes", "64,128", "--repeats", "5", "--idle", "0.2", "--idle-rows", "256"]
    proc = subprocess.run(
        [sys.executable, str(root / "benchmarks" / "bench_bulk.py"), *argv],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=root,
    )
    assert proc.returncode == 0, proc.stderr
    assert "| 128 |" in proc.stdout and "CPU seconds in the 0.2 s after" in proc.stdout
    assert f"CPU: {cpu_description()}" in proc.stdout
