"""The manifest's coefficients against the graph's initializers (inference.coefficients).

The security review's attack, replayed: a coefficient changed in ``model.onnx`` and
the manifest's sha256 and size rewritten to match. ONNX Runtime, run directly on the
tampered bytes, shows what the model would have predicted; ``Predictor.load`` must
refuse it, without any key. The graph reader is compared with the ``onnx`` package's
own reading of the same files.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from inference import Predictor
from inference.coefficients import check_coefficients, read_graph
from inference.errors import ModelLoadError
from inference.manifest import Manifest, file_digest
from tests.signing.conftest import BUNDLED


def _rewrite_manifest(directory: Path, change=None) -> None:
    """What the attacker did: the manifest's size and sha256 of model.onnx made to match
    (and ``change`` applied to the manifest's data)."""
    path = directory / "manifest.json"
    data = json.loads(path.read_text())
    data["artifacts"]["model.onnx"] = file_digest(directory / "model.onnx")
    if change is not None:
        change(data)
    path.write_text(json.dumps(data))


def _replace_float(data: bytes, old: float, new: float, dtype: str) -> bytes:
    old_bytes = np.asarray([old], dtype=dtype).tobytes()
    assert data.count(old_bytes) == 1, "the value must appear once in the file"
    return data.replace(old_bytes, np.asarray([new], dtype=dtype).tobytes())


def _ort_predict(onnx_bytes: bytes, X: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    return session.run(None, {"features": X})[0]


@pytest.mark.parametrize("which", ["coef", "intercept"])
def test_the_security_reviews_attack_is_refused_without_keys(model: Path, which: str) -> None:
    manifest = Manifest.read(model)
    params = manifest.parameters
    assert params is not None
    old = params["coef"][1] if which == "coef" else params["intercept"]
    x = np.array([[1.0, 40.0, 100.0]], dtype=np.float32)
    genuine = _ort_predict((model / "model.onnx").read_bytes(), x)
    tampered = _replace_float((model / "model.onnx").read_bytes(), old, old + 1000.0, "float32")
    (model / "model.onnx").write_bytes(tampered)
    _rewrite_manifest(model)
    # what the tampered graph computes (ONNX Runtime directly): far from the card's numbers
    shifted = _ort_predict(tampered, x)
    assert abs(float(shifted[0]) - float(genuine[0])) > 500
    where = "parameters.coef\\[1\\] \\(latitude\\)" if which == "coef" else "parameters.intercept"
    with pytest.raises(ModelLoadError, match=f"manifest's {where} is .* the graph computes with"):
        Predictor.load(model)


@pytest.mark.parametrize(
    "change, where",
    [
        (lambda d: d["parameters"]["coef"].__setitem__(2, 0.5), r"parameters.coef\[2\]"),
        (lambda d: d["parameters"].__setitem__("intercept", 6.0), "parameters.intercept"),
        (lambda d: d["statistics"]["params"].__setitem__(1, 9.0), r"statistics.params \(area\)"),
        (
            lambda d: d["statistics"]["params"].__setitem__(0, 9.0),
            r"statistics.params \(intercept\)",
        ),
    ],
)
def test_a_manifest_that_shows_other_numbers_is_refused(model: Path, change, where) -> None:
    """The graph genuine, the manifest (not covered by its own hashes) edited."""
    _rewrite_manifest(model, change)
    with pytest.raises(ModelLoadError, match=where):
        Predictor.load(model)


def test_the_smallest_float32_change_is_seen(model: Path) -> None:
    manifest = Manifest.read(model)
    old = np.float32(manifest.parameters["coef"][0])
    new = float(np.nextafter(old, np.float32(np.inf)))
    (model / "model.onnx").write_bytes(
        _replace_float((model / "model.onnx").read_bytes(), float(old), new, "float32")
    )
    _rewrite_manifest(model)
    with pytest.raises(ModelLoadError, match=r"parameters.coef\[0\]"):
        Predictor.load(model)


def _onnx_model(directory: Path):
    onnx = pytest.importorskip("onnx")
    return onnx, onnx.load(str(directory / "model.onnx"))


def test_a_graph_of_another_form_is_refused(model: Path) -> None:
    """Same initializers, one more node scaling the prediction: the coefficients match,
    the function does not."""
    onnx, m = _onnx_model(model)
    from onnx import helper, numpy_helper

    m.graph.node[-1].output[0] = "unscaled"
    m.graph.initializer.append(numpy_helper.from_array(np.array([1000.0], np.float32), "scale"))
    m.graph.node.append(helper.make_node("Mul", ["unscaled", "scale"], ["prediction"]))
    (model / "model.onnx").write_bytes(m.SerializeToString())
    _rewrite_manifest(model)
    with pytest.raises(ModelLoadError, match="not one linreg exports"):
        Predictor.load(model)


@pytest.mark.parametrize("attr", [("alpha", 2.0), ("transA", 1)])
def test_gemm_attributes_that_change_the_function_are_refused(model: Path, attr) -> None:
    onnx, m = _onnx_model(model)
    from onnx import helper

    m.graph.node[0].attribute.append(helper.make_attribute(*attr))
    (model / "model.onnx").write_bytes(m.SerializeToString())
    _rewrite_manifest(model)
    with pytest.raises(ModelLoadError):
        Predictor.load(model)


@pytest.mark.parametrize("name", ["plant_richness_lr", "plant_richness_mlr"])
def test_read_graph_equals_the_onnx_packages_reading(name: str) -> None:
    onnx, m = _onnx_model(BUNDLED / name)
    from onnx import numpy_helper

    graph = read_graph((BUNDLED / name / "model.onnx").read_bytes())
    assert [n.op for n in graph.nodes] == [n.op_type for n in m.graph.node]
    assert [n.inputs for n in graph.nodes] == [list(n.input) for n in m.graph.node]
    theirs = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    assert graph.initializers.keys() == theirs.keys()
    for key, value in theirs.items():
        assert graph.initializers[key] is not None
        assert graph.initializers[key].dtype == value.dtype
        assert np.array_equal(graph.initializers[key], value)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_typed_data_initializers_are_read_too(model: Path, tmp_path: Path, dtype: str) -> None:
    """Initializers in float_data / double_data (not raw_data), as other writers store
    them, give the same check."""
    onnx, m = _onnx_model(model)
    from onnx import TensorProto, helper, numpy_helper

    code = TensorProto.FLOAT if dtype == "float32" else TensorProto.DOUBLE
    params = Manifest.read(model).parameters
    values = {"weight": np.asarray(params["coef"]), "bias": np.asarray([params["intercept"]])}
    for i, t in enumerate(m.graph.initializer):
        if t.name in values:
            shape = numpy_helper.to_array(t).shape
            typed = values[t.name].astype(dtype).reshape(shape)
            m.graph.initializer[i].CopyFrom(
                helper.make_tensor(t.name, code, shape, typed.ravel(), raw=False)
            )
            assert not m.graph.initializer[i].raw_data
    data = m.SerializeToString()
    manifest = Manifest.read(model)
    manifest.data["dtype"] = dtype
    found = check_coefficients(data, manifest, source="typed")
    assert found is not None
    assert np.array_equal(found.coef, np.asarray(manifest.parameters["coef"], dtype=dtype))


def test_exports_of_every_kind_pass(exported, tmp_path: Path) -> None:
    """float64, one feature, no intercept, a two-feature Gemm: what export writes loads."""
    from training.data import load_dataset
    from training.export import export_model
    from training.pipeline import train
    from training.solver.estimator import LinearRegressionSGD

    for dataset in ("plant_richness_lr", "plant_richness_mlr"):
        _, directory = exported(dataset, "float64")
        data = (directory / "model.onnx").read_bytes()
        assert check_coefficients(data, Manifest.read(directory), source="x") is not None
    table = load_dataset("plant_richness_mlr")
    run = train(table, fit_intercept=False, progress=False)
    out = export_model(run, tmp_path / "no-intercept", plots=False)
    found = check_coefficients((out / "model.onnx").read_bytes(), Manifest.read(out), source="x")
    assert found is not None and float(found.intercept) == 0.0
    Predictor.load(out)
    X2 = table.X[:, :2]
    est = LinearRegressionSGD().fit(X2, table.y)
    out = export_model(
        est, tmp_path / "two", X=X2, y=table.y, features=table.features[:2], target="y", plots=False
    )
    found = check_coefficients((out / "model.onnx").read_bytes(), Manifest.read(out), source="x")
    assert found is not None and found.coef.shape == (2,)
    assert np.array_equal(found.coef, np.asarray(est.coef_, dtype=Manifest.read(out).dtype))


def test_a_manifest_without_coefficients_is_not_checked(model: Path) -> None:
    shutil.copy(BUNDLED / "plant_richness_lr" / "model.onnx", model / "other.onnx")

    def strip(d):
        del d["parameters"]
        for key in ("params", "names"):
            d["statistics"].pop(key)

    _rewrite_manifest(model, strip)
    data = (model / "model.onnx").read_bytes()
    assert check_coefficients(data, Manifest.read(model), source="x") is None
