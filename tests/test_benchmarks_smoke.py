"""Smoke runs of every benchmark (tiny sizes, few rounds), so that they cannot rot.

No timing is asserted: these check that every backend computes what numpy does on
the same input, that ``linreg bench`` writes its table, plot and pytest-benchmark
JSON (which ``pytest-benchmark compare`` reads), and that the pytest-benchmark suite
in benchmarks/ runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("pytest_benchmark")
pytest.importorskip("matplotlib")

from linreg.main import main  # noqa: E402
from training import bench  # noqa: E402  (after the skips)

ROOT = Path(__file__).resolve().parents[1]
GPU = ("ort-cuda", "torch-cuda")
CPU_BACKENDS = [b for b in bench.BACKENDS if b not in GPU]


def _backends(benchmarks: list[dict]) -> set[str]:
    return {b["extra_info"]["backend"] for b in benchmarks}


@pytest.fixture(scope="module")
def model_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench-models")
    bench.make_models(root, bench.FEATURES)
    return root


@pytest.mark.parametrize("k", bench.FEATURES)
def test_every_backend_equals_numpy_on_the_same_input(model_root, k):
    model = model_root / f"k{k}"
    w, b = bench.model_parameters(model)
    for n in (1, 64):
        x = bench.make_input(n, k)
        assert x.dtype == np.float32 and x.shape == (n, k) and x.flags.c_contiguous
        np.testing.assert_array_equal(x, bench.make_input(n, k))  # seeded: the same input
        expected = x.astype(np.float64) @ w.astype(np.float64) + float(b)
        for name in bench.BACKENDS:
            try:
                backend = bench.make_backend(name, model)
            except bench.Unavailable as exc:
                assert name in GPU, f"{name} should run on any CPU machine: {exc}"
                assert "cuda" in str(exc).lower()
                continue
            if not backend.supports(n):
                continue
            got = backend.to_array(backend.prepare(x)())
            assert got.shape == (n,), name
            np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5, err_msg=name)
            assert backend.provider and backend.device


def test_unknown_backend_is_a_value_error(model_root):
    with pytest.raises(ValueError, match="unknown backend 'nope'; expected one of"):
        bench.make_backend("nope", model_root / "k1")


@pytest.mark.slow
def test_cold_start_child_imports_nothing_before_its_clock():
    """``python -m training.bench.coldstart`` imports its packages first: they stay light."""
    heavy = ("numpy", "onnxruntime", "torch", "inference", "subprocess")
    code = f"import sys, training.bench.coldstart; print(sorted(set({heavy!r}) & set(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["numpy", "torchscript", "ort-session", "predictor"])
def test_cold_start_child_predicts_the_row_of_ones(model_root, backend):
    k = max(bench.FEATURES)
    model = model_root / f"k{k}"
    proc = subprocess.run(
        [sys.executable, "-m", "training.bench.coldstart", backend, str(model), str(k)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(out) == {"import_s", "load_s", "first_s", "maxrss_kb", "output"}
    w, b = bench.model_parameters(model)
    # numpy's child is given w = 1, b = 0.5; the others load the model
    expected = k + 0.5 if backend == "numpy" else float(w.astype(np.float64).sum() + b)
    assert out["output"] == pytest.approx(expected, rel=1e-5)
    assert out["maxrss_kb"] > 0 and min(out["import_s"], out["load_s"], out["first_s"]) >= 0


def test_bandwidth_and_bound():
    bw = bench.measure_bandwidth(8 << 20, repeats=2)
    assert bw["bytes_per_s"] > 1e8 and "np.copyto" in bw["method"]
    # 1,048,576 rows of 16 float32 in, one float32 out: 68 MiB at the measured rate
    assert bench.bound_seconds(1 << 20, 16, 1e9) == pytest.approx(17 * 4 * (1 << 20) / 1e9)


@pytest.mark.slow
def test_linreg_bench_quick_writes_table_plot_and_json(model_root, tmp_path):
    out = tmp_path / "out"
    argv = ["bench", "--quick", "--sizes", "1,64", "--rounds", "6", "--cold-repeats", "1"]
    assert main([*argv, "--models", str(model_root), "--out", str(out), "--no-progress"]) == 0

    data = json.loads((out / "bench.json").read_text())
    assert {"machine_info", "commit_info", "benchmarks", "datetime", "version"} <= set(data)
    timed = [b for b in data["benchmarks"] if not b["group"].startswith("cold start")]
    seen = {(b["params"]["backend"], b["params"]["batch"], b["params"]["k"]) for b in timed}
    for k in bench.FEATURES:
        for n in (1, 64):
            for name in CPU_BACKENDS:
                if name != "predict-one" or n == 1:
                    assert (name, n, k) in seen
    for b in timed:
        assert b["group"] == f"batch={b['params']['batch']} k={b['params']['k']}"
        assert b["stats"]["rounds"] == 6 and b["stats"]["min"] <= b["stats"]["median"]
        extra = b["extra_info"]
        assert extra["provider"] and extra["device"].startswith("cpu")
        assert extra["max_relative_error"] <= bench.RTOL
        assert extra["percent_of_bound"] > 0 and extra["p99"] >= b["stats"]["median"]
    cold = {b["params"]["backend"]: b for b in data["benchmarks"] if b["group"].startswith("cold")}
    assert set(cold) == set(bench.COLD_START_BACKENDS)
    for b in cold.values():
        assert 0 < b["extra_info"]["median_total_s"] <= b["extra_info"]["median_wall_s"]
        assert b["extra_info"]["median_rss_mb"] > 10
    skipped = data["machine_info"]["skipped"]
    for name in GPU:
        assert name in _backends(timed) or "cuda" in skipped[name].lower()

    table = (out / "bench.md").read_text()
    assert "| batch | backend | p50 | p90 | p99 | rows/s | % of bound | p50 ÷ numpy |" in table
    assert "| backend | provider | device | note |" in table
    assert "Cold start" in table and "Targets" in table and "GB/s" in table
    assert (out / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    compare = subprocess.run(
        [sys.executable, "-m", "pytest_benchmark", "compare", str(out / "bench.json")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert compare.returncode == 0, compare.stderr
    assert "predictor[batch=1-k=16]" in compare.stdout


@pytest.mark.slow
def test_pytest_benchmark_suite_runs(model_root, tmp_path):
    out = tmp_path / "suite.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(ROOT / "benchmarks"),
            "--smoke",
            "--bench-models",
            str(model_root),
            "-p",
            "no:cacheprovider",
            "-q",
            "-rs",
            "--benchmark-enable",
            "--benchmark-min-rounds=1",
            "--benchmark-max-time=0.0001",
            "--benchmark-warmup=off",
            f"--benchmark-json={out}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        # not an xdist worker's variables: pytest-benchmark would write no JSON under them
        env={k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")},
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    data = json.loads(out.read_text())
    names = {(b["extra_info"]["backend"], b["group"]) for b in data["benchmarks"]}
    for k in bench.FEATURES:
        for name in CPU_BACKENDS:
            assert (name, f"batch=1 k={k}") in names
    assert {b["extra_info"]["backend"] for b in data["benchmarks"] if "cold" in b["group"]} == set(
        bench.COLD_START_BACKENDS
    )
    for name in GPU:  # skipped with the reason, where there is no GPU
        assert name in _backends(data["benchmarks"]) or f"{name}: " in proc.stdout
