"""Smoke run of benchmarks/bench_signing.py at its smallest size (no timing asserted):
it prepares a signed model, checks every cold start's prediction against numpy and
reports both kinds."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from tests.signing.conftest import ROOT

pytestmark = pytest.mark.slow  # starts Python processes


def test_bench_signing_runs(tmp_path: Path, capsys) -> None:
    spec = importlib.util.spec_from_file_location(
        "bench_signing", ROOT / "benchmarks" / "bench_signing.py"
    )
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "figures.json"
    assert bench.main(["--rounds", "1", "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    for kind in ("without", "with"):
        assert figures[f"{kind}_inside_s"] > 0 and figures[f"{kind}_wall_s"] > 0
    printed = capsys.readouterr().out
    assert "machine:" in printed and "cold start, whole process" in printed
