"""training.export.design_graph: the graph of a design, run by ONNX Runtime and by onnx's
reference evaluator, against the design matrix evaluated in numpy times the coefficients."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pd = pytest.importorskip("pandas")

from onnx.reference import ReferenceEvaluator  # noqa: E402

from training.export.design_graph import build_design_onnx  # noqa: E402
from training.formula import design_table  # noqa: E402


@pytest.fixture(scope="module")
def table():
    rng = np.random.default_rng(3)
    n = 300
    frame = pd.DataFrame(
        {
            "x1": rng.normal(size=n),
            "x2": rng.uniform(1, 4, size=n),
            "region": rng.choice(["north", "south", "east", "west"], size=n),
            "flag": rng.random(n) < 0.5,
            "cyl": rng.choice([4, 6, 8], size=n),
        }
    )
    frame["y"] = 3 + frame.x1 - 2 * np.log(frame.x2) + rng.normal(size=n)
    formula = (
        "y ~ x1 * C(region) + np.log(x2) + I(x1 ** 2) + flag + C(cyl) + C(region):flag"
        " + np.sqrt(x2)"
    )
    dt = design_table(frame, formula)
    Z = np.column_stack([np.ones(len(dt.y)), dt.Z])
    beta = np.linalg.lstsq(Z, dt.y, rcond=None)[0]
    return frame, dt, beta


def _feeds(frame, design, dtype):
    feeds = {}
    for spec in design.inputs:
        column = frame[spec.name]
        if spec.kind == "numeric":
            feeds[spec.name] = column.to_numpy(dtype=dtype)
        elif spec.type == "int":
            feeds[spec.name] = column.to_numpy(dtype=np.int64)
        else:
            feeds[spec.name] = column.astype(str).to_numpy(dtype=object)
    return feeds


@pytest.mark.parametrize(("dtype", "rtol"), [("float64", 1e-13), ("float32", 2e-6)])
def test_the_graph_equals_the_design_times_the_coefficients(table, dtype, rtol):
    frame, dt, beta = table
    model = build_design_onnx(dt.design, beta[1:], beta[0], target="y", dtype=dtype)
    feeds = _feeds(frame, dt.design, dtype)
    expected = dt.Z @ beta[1:] + beta[0]
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = session.run(None, feeds)[0]
    assert got.dtype == np.dtype(dtype) and got.shape == expected.shape
    scale = rtol * np.abs(expected).max()  # float32 rounds relative to the largest terms
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=scale)
    reference = ReferenceEvaluator(model).run(None, feeds)[0]
    np.testing.assert_allclose(reference, expected, rtol=rtol, atol=scale)


def test_one_input_per_raw_column_with_its_type(table):
    _, dt, beta = table
    model = build_design_onnx(dt.design, beta[1:], beta[0], target="y")
    inputs = {i.name: i.type.tensor_type.elem_type for i in model.graph.input}
    assert inputs == {"x1": 1, "x2": 1, "region": 8, "flag": 8, "cyl": 7}  # FLOAT, STRING, INT64


def test_an_unknown_level_fails_the_run_instead_of_scoring_the_reference(table):
    frame, dt, beta = table
    model = build_design_onnx(dt.design, beta[1:], beta[0], target="y")
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    for column, value in (("region", "mars"), ("cyl", 12), ("flag", "maybe")):
        feeds = _feeds(frame.head(5), dt.design, "float32")
        feeds[column] = feeds[column].copy()
        feeds[column][2] = value
        with pytest.raises(Exception, match="out of data bounds"):
            session.run(None, feeds)


def test_the_same_model_gives_the_same_bytes(table):
    _, dt, beta = table
    first = build_design_onnx(dt.design, beta[1:], beta[0], target="y").SerializeToString()
    assert build_design_onnx(dt.design, beta[1:], beta[0], target="y").SerializeToString() == first
