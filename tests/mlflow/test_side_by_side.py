"""The side-by-side table of docs/guide/serving.md: the same requests to a real
``mlflow models serve`` and to ``linreg serve`` (both processes, the same model) get
the same status class, and where both answer 200 the same predictions. The rows are
``benchmarks/mlflow_side_by_side.py``'s, which prints the table; the docs must show it
as that script prints it now."""

from __future__ import annotations

import importlib.util

import pytest

from tests.mlflow.conftest import ROOT, needs_mlflow
from tests.serve.conftest import MISSING as SERVE_MISSING

pytestmark = [
    needs_mlflow,
    pytest.mark.skipif(bool(SERVE_MISSING), reason=f"linreg serve needs {SERVE_MISSING}"),
]


def _script():
    spec = importlib.util.spec_from_file_location(
        "mlflow_side_by_side", ROOT / "benchmarks" / "mlflow_side_by_side.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


side = _script()
CASES = {case.name: case for case in side.cases()}


@pytest.fixture(scope="module")
def rows(servers):
    ours, theirs = servers
    return {row["case"]: row for row in side.run(theirs.url, ours.url)}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
def test_same_status_class_and_predictions(servers, name):
    ours, theirs = servers
    case = CASES[name]
    a, b = side.send(theirs.url, case), side.send(ours.url, case)
    assert a.status // 100 == b.status // 100, (a, b)
    if case.content_type is None:
        assert a.content_type == b.content_type == "application/json"
    elif a.status == 200:
        assert side.same_predictions(a.body["predictions"], b.body["predictions"]), (a, b)
    else:  # an error of ours says what was wrong, with MLflow's error_code
        assert b.body["error_code"] and b.body["message"]


@pytest.mark.slow
def test_the_docs_show_the_table_as_generated(rows):
    assert all(r["same_class"] and r["same_answer"] for r in rows.values())
    assert side.docs_table() == side.table(list(rows.values())), (
        "docs/guide/serving.md's side-by-side table is stale: run "
        "benchmarks/mlflow_side_by_side.py --update-docs"
    )


def test_the_comparison_tells_different_predictions_apart():
    assert side.same_predictions([1.5, 2.25], [1.5, 2.25])
    assert side.same_predictions([0.1], [float.fromhex("0x1.99999a0000000p-4")])  # f32 of 0.1
    assert not side.same_predictions([1.5, 2.25], [1.5, 2.5])
    assert not side.same_predictions([1.5], [1.5, 2.0])
    records = [{"prediction": 1.0, "lower": 0.5, "upper": 1.5}]
    assert side.same_predictions(records, [dict(records[0])])
    assert not side.same_predictions(records, [{**records[0], "upper": 1.6}])
    assert not side.same_predictions(records, [{"prediction": 1.0, "lower": 0.5}])
