"""Smoke run of benchmarks/bench_factor_row.py at its smallest size (no timing asserted):
its agreement checks between the one-row paths and ``predict`` pass, and it times the
four calls."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime")
ROOT = Path(__file__).resolve().parents[1]


def test_bench_factor_row_runs(capsys) -> None:
    spec = importlib.util.spec_from_file_location(
        "bench_factor_row", ROOT / "benchmarks" / "bench_factor_row.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    best = module.main(["--runs", "1", "--calls", "5"])
    assert set(best) == {
        "predict_one, factor model",
        "predict_one, numeric model",
        "predict of one row, factor model",
        "predict of one row, numeric model",
    }
    assert all(value > 0 for value in best.values())
    assert "factor / numeric" in capsys.readouterr().out
