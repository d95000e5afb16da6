"""The torch-free Predictor: inputs, errors, intervals, providers, threads."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from inference import InputError, IntervalPrediction, ModelLoadError, Predictor, ProviderError
from inference.errors import IgnoredColumnsWarning
from inference.inputs import as_matrix

ROOT = Path(__file__).resolve().parents[2]
LR = ROOT / "exported_models" / "plant_richness_lr"
MLR = ROOT / "exported_models" / "plant_richness_mlr"
FEATURES = ["area", "latitude", "dist_mainland"]


@pytest.fixture(scope="module")
def mlr():
    return Predictor.load(MLR, providers="cpu")


@pytest.fixture(scope="module")
def lr():
    return Predictor.load(LR, providers="cpu")


def reference(predictor, X):
    """Independent computation from the manifest's parameters (float64 numpy)."""
    params = predictor.manifest.data["parameters"]
    return np.asarray(X, dtype=np.float64) @ np.array(params["coef"]) + params["intercept"]


ROWS = np.array([[3.0, 42.0, 10.0], [1.5, 41.1, 0.3], [4.2, 44.9, 40.0]])


def test_two_d_arrays_of_any_real_dtype(mlr):
    expected = reference(mlr, ROWS)
    for dtype in (np.float32, np.float64, np.int64, np.int32, np.uint8):
        X = ROWS.astype(dtype)
        got = mlr.predict(X)
        assert got.shape == (3,) and got.dtype == np.float32
        np.testing.assert_allclose(got, reference(mlr, X), rtol=1e-6)
    np.testing.assert_allclose(mlr.predict(ROWS.tolist()), expected, rtol=1e-6)
    fortran = np.asfortranarray(ROWS.astype(np.float32))
    np.testing.assert_allclose(mlr.predict(fortran), expected, rtol=1e-6)
    strided = np.repeat(ROWS.astype(np.float32), 2, axis=0)[::2]
    np.testing.assert_allclose(mlr.predict(strided), expected, rtol=1e-6)


def test_no_copy_when_already_right(mlr):
    X = ROWS.astype(np.float32)
    assert as_matrix(X, mlr.features, mlr.dtype) is X


def test_one_d_array_is_one_row(mlr, lr):
    np.testing.assert_allclose(mlr.predict(ROWS[0]), reference(mlr, ROWS[:1]), rtol=1e-6)
    assert lr.predict(np.array([3.0]))[0] == pytest.approx(2.4032664, abs=1e-4)
    with pytest.raises(
        InputError, match=r"a 1-D input is one row: got 4 values, expected 1 .*pass shape \(n, 1\)"
    ):
        lr.predict(np.arange(4.0))


def test_dataframe_matched_by_name(mlr):
    frame = pd.DataFrame(ROWS, columns=FEATURES)
    shuffled = frame[["dist_mainland", "area", "latitude"]].assign(id=[7, 8, 9], note="x")
    np.testing.assert_allclose(mlr.predict(shuffled), reference(mlr, ROWS), rtol=1e-6)
    with pytest.raises(
        InputError, match=r"DataFrame columns: missing \['latitude'\]; the model expects"
    ):
        mlr.predict(frame.drop(columns="latitude"))
    bad = frame.astype(object)
    bad.loc[1, "area"] = "big"
    with pytest.raises(InputError, match=r"column 'area', row 1: 'big' \(str\) is not a number"):
        mlr.predict(bad)


def test_dicts_records_and_predict_one(mlr, lr):
    expected = reference(mlr, ROWS)
    columns = {f: ROWS[:, j] for j, f in enumerate(FEATURES)}
    np.testing.assert_allclose(mlr.predict(columns), expected, rtol=1e-6)
    scalars = {"area": 3.0, "latitude": 42.0, "dist_mainland": 10}
    np.testing.assert_allclose(mlr.predict(scalars), expected[:1], rtol=1e-6)
    records = [dict(zip(FEATURES, map(float, r), strict=True)) for r in ROWS]
    np.testing.assert_allclose(mlr.predict(records), expected, rtol=1e-6)
    one = mlr.predict_one(area=3.0, latitude=42.0, dist_mainland=10.0)
    assert isinstance(one, float) and one == pytest.approx(expected[0], rel=1e-6)
    assert mlr.predict_one(scalars) == pytest.approx(expected[0], rel=1e-6)
    assert lr.predict_one(area=3.0) == pytest.approx(2.4032664, abs=1e-4)
    # an extra key is ignored and reported (issue 28: one rule for every named form),
    # and refused in strict mode
    with pytest.warns(IgnoredColumnsWarning, match=r"records: ignored \['lat'\]"):
        got = mlr.predict([records[0], {**records[1], "lat": 1.0}])
    np.testing.assert_allclose(got, expected[:2], rtol=1e-6)
    with pytest.raises(InputError, match=r"record 1: unknown \['lat'\]"):
        mlr.predict([records[0], {**records[1], "lat": 1.0}], strict_columns=True)
    with pytest.raises(InputError, match=r"dict keys: missing \['dist_mainland'\]"):
        mlr.predict({"area": 1.0, "latitude": 2.0})
    with pytest.raises(InputError, match=r"predict_one: missing \['area'\], unknown \['areaa'\]"):
        lr.predict_one(areaa=3.0)
    with pytest.raises(InputError, match=r"predict_one: area='3' \(str\) is not a number"):
        lr.predict_one(area="3")
    with pytest.raises(InputError, match=r"predict_one: area=True \(bool\) is not a number"):
        lr.predict_one(area=True)


def test_empty_batch(mlr):
    out = mlr.predict(np.empty((0, 3)))
    assert out.shape == (0,) and out.dtype == np.float32
    out = mlr.predict(np.empty((0, 3)), interval="confidence")
    assert out.lower.shape == (0,)


@pytest.mark.parametrize(
    ("X", "match"),
    [
        (np.ones((2, 2)), r"X has 2 features, but the model expects 3"),
        (np.ones((2, 3, 1)), r"input has shape \(2, 3, 1\) \(3-D\); expected \(n, 3\)"),
        (
            np.array([["1", "2", "3"]]),
            r"the input holds strings \(dtype <U1\); expected real numbers",
        ),
        (np.array([[1, 2, None]], dtype=object), r"the input holds Python objects"),
        (np.ones((2, 3), dtype=bool), r"the input holds booleans"),
        (np.ones((2, 3), dtype=complex), r"the input holds complex numbers"),
        ("1,2,3", r"got a str; expected an array of shape \(n, 3\)"),
        ([[1.0, 2.0], [1.0, 2.0, 3.0]], r"cannot read the input as an array"),
    ],
)
def test_bad_inputs(mlr, X, match):
    with pytest.raises(InputError, match=match):
        mlr.predict(X)


def test_nan_and_inf_are_refused_with_row_and_column(mlr):
    X = np.repeat(ROWS, 3, axis=0)
    X[5, 1] = np.nan
    X[7, 2] = np.inf
    with pytest.raises(
        InputError, match=r"row 5, column 'latitude': nan is not a finite number \(2 non-finite"
    ):
        mlr.predict(X)
    out = mlr.predict(X, allow_nonfinite=True)
    assert np.isnan(out[5]) and np.isinf(out[7]) and np.isfinite(np.delete(out, [5, 7])).all()
    permissive = Predictor.load(MLR, allow_nonfinite=True)
    assert np.isnan(permissive.predict(X)[5])


def test_overflow_is_not_a_silent_inf(mlr, tmp_path):
    with pytest.raises(
        InputError,
        match=r"row 0, column 'area': inf is not a finite number "
        r"\(or a value beyond ±3.4e\+38, the largest float32\)",
    ):
        mlr.predict(np.array([[1e39, 42.0, 10.0]]))
    from training.export import build_onnx

    huge = build_onnx(np.array([1e30]), 0.0, features=["x"], target="y")
    (tmp_path / "huge.onnx").write_bytes(huge.SerializeToString())
    p = Predictor.load(tmp_path / "huge.onnx")
    assert p.predict([[2.0]])[0] == pytest.approx(2e30, rel=1e-6)
    with pytest.raises(InputError, match="every input is finite but a prediction overflowed"):
        p.predict([[1e10]])
    with pytest.raises(InputError, match="every input is finite but a prediction overflowed"):
        p.predict_one(x=1e10)
    # a finite value beyond float32 is refused by predict_one as by predict, even where
    # non-finite inputs are allowed (it is not a NaN or inf the caller chose to send)
    permissive = Predictor.load(MLR, allow_nonfinite=True)
    for call in (permissive.predict_one, mlr.predict_one):
        with (
            pytest.warns(RuntimeWarning, match="overflow"),  # numpy's, at the cast
            pytest.raises(InputError, match=r"row 0, column 'latitude': .*1e\+39"),
        ):
            call(area=1.0, latitude=1e39, dist_mainland=10.0)
    assert math.isnan(permissive.predict_one(area=1.0, latitude=math.nan, dist_mainland=10.0))


def closed_form_intervals(predictor, X, level):
    """Prediction and confidence intervals computed from the training data, by hand."""
    from scipy import stats

    from training.data import load_dataset

    t = load_dataset(predictor.manifest.name)
    Z = np.column_stack([np.ones(len(t.y)), t.X])
    beta = np.r_[
        predictor.manifest.data["parameters"]["intercept"],
        predictor.manifest.data["parameters"]["coef"],
    ]
    e = t.y - Z @ beta
    df = len(t.y) - Z.shape[1]
    s2 = e @ e / df
    z = np.column_stack([np.ones(len(X)), X])
    h = np.einsum("ij,jk,ik->i", z, np.linalg.inv(Z.T @ Z), z)
    q = stats.t.ppf(0.5 + level / 2, df)
    fit = z @ beta
    return fit, q * np.sqrt(s2 * h), q * np.sqrt(s2 * (1 + h))


@pytest.mark.parametrize("level", [0.90, 0.95, 0.99, 0.8])
def test_intervals_equal_closed_form(mlr, level):
    fit, half_conf, half_pred = closed_form_intervals(mlr, ROWS, level)
    conf = mlr.predict(ROWS, interval="confidence", level=level)
    pred = mlr.predict(ROWS, interval="prediction", level=level)
    assert isinstance(conf, IntervalPrediction)
    np.testing.assert_allclose(conf.prediction, fit, rtol=1e-6)
    np.testing.assert_allclose(conf.upper - conf.prediction, half_conf, rtol=1e-6)
    np.testing.assert_allclose(conf.prediction - conf.lower, half_conf, rtol=1e-6)
    np.testing.assert_allclose(pred.upper - pred.prediction, half_pred, rtol=1e-6)


def test_intervals_match_statsmodels(lr):
    sm = pytest.importorskip("statsmodels.api")
    from training.data import load_dataset

    t = load_dataset("plant_richness_lr")
    ols = sm.OLS(t.y, sm.add_constant(t.X)).fit()
    x = np.array([[0.5], [3.0], [4.4]])
    frame = ols.get_prediction(sm.add_constant(x, has_constant="add")).summary_frame(alpha=0.05)
    pred = lr.predict(x, interval="prediction")
    conf = lr.predict(x, interval="confidence")
    # the SGD fit sits within 1e-7 of OLS, so the bounds agree to about that
    np.testing.assert_allclose(pred.lower, frame["obs_ci_lower"], atol=1e-5)
    np.testing.assert_allclose(pred.upper, frame["obs_ci_upper"], atol=1e-5)
    np.testing.assert_allclose(conf.lower, frame["mean_ci_lower"], atol=1e-5)


def test_standard_levels_need_no_scipy_and_others_say_so(mlr, monkeypatch):
    with_scipy = mlr.predict(ROWS, interval="prediction", level=0.99)
    monkeypatch.setitem(sys.modules, "scipy", None)
    without = mlr.predict(ROWS, interval="prediction", level=0.99)
    np.testing.assert_array_equal(with_scipy.lower, without.lower)
    with pytest.raises(
        ImportError,
        match=r"level=0.8 needs scipy .*levels available are \['0.90', '0.95', '0.99'\]",
    ):
        mlr.predict(ROWS, interval="prediction", level=0.8)
    with pytest.raises(ValueError, match="interval must be one of"):
        mlr.predict(ROWS, interval="credible")


def test_bare_onnx_has_no_intervals(tmp_path):
    p = Predictor.load(LR / "model.onnx")
    assert p.features == ["area"] and p.target == "ntv_rich"
    with pytest.raises(ValueError, match="a bare .onnx file has none"):
        p.predict([[1.0]], interval="confidence")


def test_threads_share_one_predictor(mlr):
    rng = np.random.default_rng(0)
    batches = [
        rng.normal(size=(rng.integers(1, 300), 3)) * [1, 2, 10] + [2, 42, 15] for _ in range(64)
    ]
    serial = [mlr.predict(b) for b in batches]
    results: dict[int, np.ndarray] = {}
    errors: list[BaseException] = []

    def work(i):
        try:
            for j in range(i, len(batches), 8):
                results[j] = mlr.predict(batches[j])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for j, expected in enumerate(serial):
        np.testing.assert_array_equal(results[j], expected)


@pytest.mark.slow
def test_inference_runs_where_torch_cannot_be_imported():
    code = f"""
import sys
sys.modules["torch"] = None  # any "import torch" now raises ImportError
sys.modules["sklearn"] = None  # scikit-learn is the training extra's, never the runtime's
import inference
p = inference.Predictor.load({str(MLR)!r})
print(p.predict_one(area=3.0, latitude=42.0, dist_mainland=10.0))
loaded = [m for m in sys.modules if sys.modules[m] is not None]
assert not any(m == "torch" or m.startswith("torch.") for m in loaded)
assert "training" not in sys.modules and "pandas" not in sys.modules
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert float(out.stdout) == pytest.approx(
        reference(Predictor.load(MLR), [[3.0, 42.0, 10.0]])[0], rel=1e-6
    )


def test_providers(monkeypatch):
    import onnxruntime as ort

    p = Predictor.load(LR, providers="cpu", threads=1)
    assert p.providers == ["CPUExecutionProvider"]
    so = p.session.get_session_options()
    assert so.intra_op_num_threads == 1
    assert so.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    auto = Predictor.load(LR, providers="auto")
    has_cuda = "CUDAExecutionProvider" in ort.get_available_providers()
    assert auto.providers[0] == ("CUDAExecutionProvider" if has_cuda else "CPUExecutionProvider")
    with pytest.raises(ProviderError, match="expected 'auto', 'cpu', 'cuda'"):
        Predictor.load(LR, providers="tpu")
    with pytest.raises(
        ProviderError,
        match=r"Asked to use NopeExecutionProvider .* available execution providers are \[",
    ):
        Predictor.load(LR, providers=["NopeExecutionProvider"])


def test_cuda_fallback_warns_and_strict_raises(monkeypatch):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA; the fallback path needs a CPU-only build")
    with pytest.warns(RuntimeWarning, match="Running on CPU"):
        p = Predictor.load(LR, providers="cuda")
    assert p.providers == ["CPUExecutionProvider"]
    with pytest.raises(ProviderError, match=r"Asked to use \['CUDAExecutionProvider'\]"):
        Predictor.load(LR, providers="cuda", strict=True)


CPU_ONLY = ["CPUExecutionProvider"]


@pytest.mark.parametrize(
    ("asked", "available", "expected"),
    [
        ("auto", CPU_ONLY, CPU_ONLY),
        ("AUTO", ["CUDAExecutionProvider", *CPU_ONLY], ["CUDAExecutionProvider", *CPU_ONLY]),
        ("cpu", ["CUDAExecutionProvider", *CPU_ONLY], CPU_ONLY),
        ("cuda", ["CUDAExecutionProvider", *CPU_ONLY], ["CUDAExecutionProvider", *CPU_ONLY]),
        (
            [("CPUExecutionProvider", {"arena": "1"})],
            CPU_ONLY,
            [("CPUExecutionProvider", {"arena": "1"})],
        ),
    ],
)
def test_resolve_providers_expands_shorthands_and_keeps_lists(asked, available, expected):
    from inference.providers import resolve_providers

    assert resolve_providers(asked, available, strict=True) == expected


def test_resolve_providers_has_one_rule_for_what_is_missing():
    from inference.providers import resolve_providers

    # a shorthand falls back to CPU with a warning, or is refused when strict
    with pytest.warns(RuntimeWarning, match=r"\['CUDAExecutionProvider'\] .*Running on CPU"):
        assert resolve_providers("cuda", CPU_ONLY) == CPU_ONLY
    with pytest.raises(ProviderError, match="install the 'cuda' extra"):
        resolve_providers("cuda", CPU_ONLY, strict=True)
    # an explicit list is refused whatever strict says, naming every missing entry
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ProviderError, match=r"Asked to use AExecutionProvider, B\S* as"):
            resolve_providers(["AExecutionProvider", "BExecutionProvider", *CPU_ONLY], CPU_ONLY)
    with pytest.raises(ProviderError, match=r"an empty providers list; the available ones"):
        resolve_providers([], CPU_ONLY)


def test_silent_gpu_fallback_is_caught(monkeypatch):
    """ONNX Runtime logs and runs on CPU when CUDA libraries fail to load: simulate it."""
    import onnxruntime as ort

    monkeypatch.setattr(
        ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"]
    )
    real = ort.InferenceSession

    def fake_session(data, sess_options=None, providers=None):
        return real(data, sess_options=sess_options, providers=["CPUExecutionProvider"])

    monkeypatch.setattr(ort, "InferenceSession", fake_session)
    with pytest.warns(RuntimeWarning, match="the GPU provider failed to load"):
        Predictor.load(LR, providers="cuda")
    with pytest.raises(ProviderError, match="the GPU provider failed to load"):
        Predictor.load(LR, providers="cuda", strict=True)


def test_model_load_errors(tmp_path):
    with pytest.raises(ModelLoadError, match="no such model directory or .onnx file"):
        Predictor.load(tmp_path / "absent")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"this is not a model")
    with pytest.raises(ModelLoadError, match=r"junk\.onnx"):
        Predictor.load(junk)
    copy = tmp_path / "copy"
    shutil.copytree(MLR, copy)
    data = (copy / "model.onnx").read_bytes()
    (copy / "model.onnx").write_bytes(data[: len(data) // 2])
    with pytest.raises(
        ModelLoadError, match=r"model\.onnx: size is \d+ bytes, the manifest says \d+ \(truncated"
    ):
        Predictor.load(copy)
    (copy / "model.onnx").write_bytes(data)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["format_version"] = 99
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(
        ModelLoadError,
        match=r"manifest\.json: format_version 99 is not supported; this loader reads version 1",
    ):
        Predictor.load(copy)
    (copy / "manifest.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="not valid JSON"):
        Predictor.load(copy)


def test_predictor_cannot_be_pickled(lr):
    import pickle

    with pytest.raises(TypeError, match="ship the model path"):
        pickle.dumps(lr)


def test_no_warnings_on_the_happy_path(mlr):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mlr.predict(ROWS)
        Predictor.load(MLR, providers="cpu")
