"""benchmarks/bench_serve.py runs (tiny: one server, one load, 1 s), so that it cannot rot.

Needs wrk, which the benchmark's instructions install (``apt-get install wrk``);
skipped without it. No timing is asserted: the benchmark itself checks every
server's answers against the Predictor before timing, and exits non-zero if one
differs.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.serve.conftest import ROOT, needs_serve

pytestmark = [
    pytest.mark.slow,
    needs_serve,
    pytest.mark.skipif(shutil.which("wrk") is None, reason="needs wrk (apt-get install wrk)"),
]


def test_bench_serve_smoke(tmp_path):
    out = tmp_path / "bench.json"
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "bench_serve.py"),
            "--duration",
            "1",
            "--rounds",
            "1",
            "--servers",
            "linreg serve",
            "--concurrency",
            "2",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "| linreg serve | 2 |" in run.stdout
    data = json.loads(out.read_text())
    single = data["results"]["linreg serve"]["c2"][0]
    bulk = data["results"]["linreg serve"]["bulk10000"][0]
    assert single["requests"] > 0 and single["non2xx"] == 0 and single["socket_errors"] == 0
    assert bulk["requests"] > 0 and bulk["non2xx"] == 0


@pytest.mark.skipif(
    not Path("/proc/self/clear_refs").exists(), reason="the benchmark reads /proc (Linux)"
)
def test_bench_serve_hostile_smoke(tmp_path):
    """benchmarks/bench_serve_hostile.py runs at a tiny scale (1 MiB bodies, 20,000 rows)."""
    out = tmp_path / "hostile.json"
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "bench_serve_hostile.py"),
            "--mib",
            "1",
            "--max-rows",
            "20000",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    cases = json.loads(out.read_text())["results"]["this tree"]
    assert cases["/v2 binary"]["statuses"] == [413]  # 1 MiB of FP64 rows: over 20,000
    assert cases["/v2 binary, 20,000 rows"]["statuses"] == [200]
    assert all(c["health_failures"] == 0 and c["health_checks"] > 0 for c in cases.values())


@pytest.mark.skipif(
    shutil.which("h2load") is None, reason="needs h2load (apt-get install nghttp2-client)"
)
def test_bench_serve_grpc_smoke(tmp_path):
    """The gRPC columns: the server's gRPC answers are checked against the Predictor
    before timing (the benchmark exits non-zero otherwise), and no call failed."""
    pytest.importorskip("grpc")
    out = tmp_path / "bench.json"
    args = ["--duration", "1", "--rounds", "1", "--servers", "linreg serve + gRPC"]
    run = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_serve.py"), *args, "--concurrency", "2"]
        + ["--json", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    results = json.loads(out.read_text())["results"]["linreg serve + gRPC"]
    for key in ("grpc_c2", "grpc_bulk10000"):
        assert results[key][0]["rps"] > 0 and results[key][0]["errors"] == 0, results[key]
    assert "V2 over gRPC beside HTTP" in run.stdout
