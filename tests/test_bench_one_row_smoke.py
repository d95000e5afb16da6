"""A smoke run of benchmarks/bench_one_row.py's child, so that it cannot rot.

No timing is asserted: the child checks each model's prediction (``predict`` and
``predict_one``) against float64 numpy on the manifest's parameters before timing,
and reports which ``inference`` package it imported.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime")

#: starts processes: not in the fast subset
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import bench_one_row  # noqa: E402  (after the skips)


def test_the_child_checks_and_times_each_model_of_the_tree_it_was_given():
    result = bench_one_row.run_tree(ROOT, calls=200)
    assert Path(result["code"]).resolve() == ROOT / "inference" / "__init__.py"
    for name in bench_one_row.MODELS:
        for call in ("predict", "predict_one"):
            p50, p90 = result[f"{name} {call}"]
            assert 0 < p50 <= p90
