"""The parts of the design graph an exported scikit-learn pipeline needs: a numeric input's
``fill`` (SimpleImputer) and a factor's ``unknown: "zero"`` (OneHotEncoder's
handle_unknown="ignore"), run by ONNX Runtime and by onnx's reference evaluator on raw
columns with gaps and unseen values, against the prediction written out in numpy."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx.reference import ReferenceEvaluator  # noqa: E402

from inference.design import Design  # noqa: E402
from training.export.design_graph import build_design_onnx  # noqa: E402

SECTION = {
    "formula": None,
    "intercept": True,
    "inputs": [
        {"name": "x", "kind": "numeric", "fill": 2.5},
        {
            "name": "shop",
            "kind": "factor",
            "type": "str",
            "levels": ["east", "north", "south"],
            "reference": "east",
            "unknown": "zero",
        },
        {
            "name": "cyl",
            "kind": "factor",
            "type": "int",
            "levels": ["4", "6", "8"],
            "reference": None,
            "unknown": "zero",
        },
        {
            "name": "flag",
            "kind": "factor",
            "type": "bool",
            "levels": ["False", "True"],
            "reference": "False",
        },
    ],
    "columns": [
        # StandardScaler after a SimpleImputer
        {"name": "x", "expr": {"op": "div", "args": [
            {"op": "sub", "args": [{"op": "col", "input": "x"}, {"op": "const", "value": 1.0}]},
            {"op": "const", "value": 4.0},
        ]}},
        {"name": "shop_north", "expr": {"op": "level", "input": "shop", "level": "north"}},
        {"name": "shop_south", "expr": {"op": "level", "input": "shop", "level": "south"}},
        {"name": "cyl_4", "expr": {"op": "level", "input": "cyl", "level": "4"}},
        {"name": "cyl_6", "expr": {"op": "level", "input": "cyl", "level": "6"}},
        {"name": "cyl_8", "expr": {"op": "level", "input": "cyl", "level": "8"}},
        # a scaled indicator (a StandardScaler after the ColumnTransformer)
        {"name": "flag_True", "expr": {"op": "div", "args": [
            {"op": "sub", "args": [
                {"op": "level", "input": "flag", "level": "True"}, {"op": "const", "value": 0.5},
            ]},
            {"op": "const", "value": 0.5},
        ]}},
    ],
    "terms": [],
    "missing": "error",
    "rows_dropped": 0,
}  # fmt: skip
COEF = np.array([1.5, -2.0, 3.0, 0.25, -0.5, 0.75, 4.0])
INTERCEPT = 10.0


def _expected(x, shop, cyl, flag):
    """The prediction, written out: a gap is 2.5; an unseen shop or cyl has no column."""
    x = np.where(np.isnan(x), 2.5, x)
    shop, cyl, flag = np.asarray(shop), np.asarray(cyl), np.asarray(flag)
    return (
        INTERCEPT
        + COEF[0] * (x - 1.0) / 4.0
        + COEF[1] * (shop == "north")
        + COEF[2] * (shop == "south")
        + COEF[3] * (cyl == 4)
        + COEF[4] * (cyl == 6)
        + COEF[5] * (cyl == 8)
        + COEF[6] * ((flag == "True") - 0.5) / 0.5
    )


@pytest.mark.parametrize(("dtype", "rtol"), [("float64", 1e-13), ("float32", 2e-6)])
def test_gaps_are_filled_and_unseen_levels_add_nothing(dtype, rtol):
    design = Design.from_dict(SECTION)
    model = build_design_onnx(design, COEF, INTERCEPT, target="y", dtype=dtype)
    rng = np.random.default_rng(5)
    n = 200
    x = rng.normal(1, 3, n)
    x[::7] = np.nan
    shop = rng.choice(["east", "north", "south", "west", ""], n).astype(object)
    cyl = rng.choice([4, 6, 8, 12], n).astype(np.int64)
    flag = rng.choice(["False", "True"], n).astype(object)
    feeds = {"x": x.astype(dtype), "shop": shop, "cyl": cyl, "flag": flag}
    expected = _expected(x.astype(dtype).astype(np.float64), shop, cyl, flag)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    scale = rtol * np.abs(expected).max()
    np.testing.assert_allclose(session.run(None, feeds)[0], expected, rtol=rtol, atol=scale)
    reference = ReferenceEvaluator(model).run(None, feeds)[0]
    np.testing.assert_allclose(reference, expected, rtol=rtol, atol=scale)
    ops = [node.op_type for node in model.graph.node]
    assert ops.count("IsNaN") == 1 and ops.count("Where") == 1


def test_a_factor_without_the_zero_policy_still_fails_on_an_unseen_value():
    design = Design.from_dict(SECTION)
    model = build_design_onnx(design, COEF, INTERCEPT, target="y")
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    feeds = {
        "x": np.array([1.0, 2.0], np.float32),
        "shop": np.array(["east", "north"], dtype=object),
        "cyl": np.array([4, 6], np.int64),
        "flag": np.array(["True", "maybe"], dtype=object),
    }
    with pytest.raises(Exception, match="out of data bounds"):
        session.run(None, feeds)


def test_the_design_matrix_in_numpy_scores_as_the_graph():
    design = Design.from_dict(SECTION)
    x = np.array([np.nan, 3.0, 0.5])
    shop, cyl, flag = ["west", "north", None], [12, 6, 4], [True, False, True]
    with pytest.warns(Warning, match="not a level"):
        Z = design.matrix({"x": x, "shop": shop, "cyl": cyl, "flag": flag})
    np.testing.assert_allclose(
        Z @ COEF + INTERCEPT,
        _expected(x, ["west", "north", "none"], cyl, ["True", "False", "True"]),
        rtol=1e-15,
    )
