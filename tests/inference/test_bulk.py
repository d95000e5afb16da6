"""The Predictor's bulk session: large batches on every core, checked, and idle at rest.

Predictions are compared with float64 numpy on the model's own parameters (the
manifest's, or the ones a bare model was built from) and with the same Predictor
loaded with ``bulk_rows=None`` (one session, the behaviour before the bulk
session).
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from inference import InputError, Predictor
from inference.session import available_cpus

ROOT = Path(__file__).resolve().parents[2]
LR = ROOT / "exported_models" / "plant_richness_lr"
MLR = ROOT / "exported_models" / "plant_richness_mlr"


def reference(predictor, X):
    params = predictor.manifest.data["parameters"]
    return np.asarray(X, dtype=np.float64) @ np.array(params["coef"]) + params["intercept"]


def bare_model(tmp_path, coef, intercept, dtype="float32", name="model.onnx"):
    """A bare .onnx of ``x @ coef + intercept``, written by the exporter's graph builder."""
    from training.export import build_onnx

    features = [f"x{j}" for j in range(len(coef))]
    model = build_onnx(np.asarray(coef), intercept, features=features, target="y", dtype=dtype)
    path = tmp_path / name
    path.write_bytes(model.SerializeToString())
    return path


def rows(n, k, seed=0):
    return np.random.default_rng(seed).normal(size=(n, k)) * 10


@pytest.mark.parametrize("model", [LR, MLR], ids=["k=1", "k=3"])
def test_bulk_batches_equal_numpy_and_the_one_session_predictor(model):
    bulk = Predictor.load(model, providers="cpu", bulk_rows=500)
    one = Predictor.load(model, providers="cpu", bulk_rows=None)
    for n in (2, 499, 500, 501, 5000):
        X = rows(n, bulk.n_features_in_, seed=n)
        got = bulk.predict(X)
        assert got.shape == (n,) and got.dtype == np.float32
        np.testing.assert_allclose(got, reference(bulk, X), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(got, one.predict(X), rtol=1e-6)
    assert bulk.bulk_session is not None and one.bulk_session is None


def test_float64_bare_model_on_the_bulk_session(tmp_path):
    coef, intercept = [1.5, -2.25], 0.125
    p = Predictor.load(bare_model(tmp_path, coef, intercept, "float64"), bulk_rows=10)
    X = rows(1000, 2)
    got = p.predict(X)
    assert got.dtype == np.float64 and p.bulk_session is not None
    np.testing.assert_allclose(got, X @ np.array(coef) + intercept, rtol=1e-12)


def test_bulk_session_options():
    p = Predictor.load(MLR, providers="cpu")
    app, bulk = p.session.get_session_options(), p.bulk_session.get_session_options()
    assert p.bulk_rows == 65536
    assert bulk.intra_op_num_threads == available_cpus()
    for options in (app, bulk):  # an idle Predictor takes no CPU: no thread spins
        assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
        assert options.inter_op_num_threads == 1
    one = Predictor.load(MLR, providers="cpu", threads=1, bulk_rows=4096)
    assert (
        one.bulk_rows == 4096 and one.bulk_session.get_session_options().intra_op_num_threads == 1
    )
    spin = Predictor.load(MLR, providers="cpu", spinning=True)
    assert (
        spin.bulk_session.get_session_options().get_session_config_entry(
            "session.intra_op.allow_spinning"
        )
        == "1"
    )  # spinning=True asks for threads that spin between calls, in both sessions


def test_the_bulk_session_opens_at_the_first_large_batch():
    p = Predictor.load(MLR, providers="cpu", bulk_rows=100)
    p.predict(rows(99, 3))
    assert "_bulk_session" not in p.__dict__
    p.predict(rows(100, 3))
    assert p.__dict__["_bulk_session"][0] is p.bulk_session


def test_a_design_model_keeps_to_one_session():
    """A model fitted on raw columns (text factors) has several inputs, which the bulk
    path does not feed: its batches stay on its one session, whatever bulk_rows says."""
    pd = pytest.importorskip("pandas")
    model = ROOT / "exported_models" / "penguins"
    p = Predictor.load(model, bulk_rows=10)
    one = Predictor.load(model, bulk_rows=None)
    assert p.bulk_rows is None and p.bulk_session is None
    frame = pd.read_csv(ROOT / "training" / "data" / "bundled" / "penguins.csv").dropna()
    assert len(frame) > 10
    np.testing.assert_array_equal(p.predict(frame[p.features]), one.predict(frame[p.features]))


@pytest.mark.parametrize("value", [0, -5, True, 2.5, "65536"])
def test_bulk_rows_must_be_a_positive_integer_or_none(value):
    with pytest.raises(ValueError, match="bulk_rows must be a positive integer or None"):
        Predictor.load(LR, bulk_rows=value)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_nonfinite_input_in_a_bulk_batch_is_named_as_before(bad):
    bulk = Predictor.load(MLR, providers="cpu", bulk_rows=100)
    one = Predictor.load(MLR, providers="cpu", bulk_rows=None)
    X = rows(3000, 3).astype(np.float32)
    X[2718, 1] = bad
    with pytest.raises(InputError, match=r"row 2718, column 'latitude'") as raised:
        bulk.predict(X)
    with pytest.raises(InputError) as before:
        one.predict(X)
    assert str(raised.value) == str(before.value)
    scored = bulk.predict(X, allow_nonfinite=True)
    assert not np.isfinite(scored[2718])
    keep = np.arange(3000) != 2718
    np.testing.assert_allclose(scored[keep], reference(bulk, X)[keep], rtol=1e-5, atol=1e-5)
    permissive = Predictor.load(MLR, providers="cpu", bulk_rows=100, allow_nonfinite=True)
    np.testing.assert_array_equal(permissive.predict(X), scored)


def test_finite_predictions_whose_sum_overflows_are_not_an_error(tmp_path):
    coef, intercept = [1.0], 0.0
    p = Predictor.load(bare_model(tmp_path, coef, intercept), bulk_rows=100)
    X = np.full((1000, 1), 1e36, dtype=np.float32)
    # the case under test: 1000 × 1e36 is beyond float32's 3.4e38, so the sum the
    # check takes first is inf although every prediction is finite
    assert np.isinf(np.einsum("i->", X[:, 0]))
    got = p.predict(X)
    np.testing.assert_allclose(got, np.full(1000, 1e36), rtol=1e-6)


def test_a_prediction_that_overflows_from_finite_inputs_is_refused(tmp_path):
    p = Predictor.load(bare_model(tmp_path, [4.0, 4.0], 0.0), bulk_rows=100)
    X = rows(500, 2).astype(np.float32)
    X[321] = 3e38
    with pytest.raises(InputError, match="every input is finite but a prediction overflowed"):
        p.predict(X)
    assert np.isinf(p.predict(X, allow_nonfinite=True)[321])


def test_a_bulk_session_that_cannot_open_leaves_one_session(tmp_path, monkeypatch):
    import onnxruntime as ort

    path = bare_model(tmp_path, [2.0, 3.0], 1.0)
    p = Predictor.load(path, bulk_rows=10)
    real = ort.InferenceSession

    def refuse(*args, **kwargs):
        raise RuntimeError("no second session here")

    monkeypatch.setattr(ort, "InferenceSession", refuse)
    X = rows(1000, 2)
    np.testing.assert_allclose(p.predict(X), X @ [2.0, 3.0] + 1.0, rtol=1e-5, atol=1e-4)
    monkeypatch.setattr(ort, "InferenceSession", real)
    assert p.bulk_session is None  # not retried: the Predictor keeps to one session


def test_threads_racing_to_the_first_large_batch_share_one_bulk_session():
    p = Predictor.load(MLR, providers="cpu", bulk_rows=1000)
    batches = [rows(2000 + 10 * i, 3, seed=i) for i in range(8)]
    results: dict[int, np.ndarray] = {}
    sessions: set[int] = set()
    start = threading.Barrier(8)

    def work(i):
        start.wait()
        results[i] = p.predict(batches[i])
        sessions.add(id(p.bulk_session))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(sessions) == 1
    for i, X in enumerate(batches):
        np.testing.assert_allclose(results[i], reference(p, X), rtol=1e-5, atol=1e-5)


IDLE_SCRIPT = """
import os, sys, threading, time
import numpy as np
from inference import Predictor
p = Predictor.load(sys.argv[1])
X = np.random.default_rng(0).normal(size=(1 << 20, p.n_features_in_)).astype(np.float32)
for _ in range(10):
    p.predict(X)
assert p.bulk_session is not None and "_bulk_session" in p.__dict__

def cpu():
    t = os.times()
    return t.user + t.system

before = cpu()
time.sleep(float(sys.argv[2]))
idle = cpu() - before

# the control: CPU time that another thread of this process uses is counted
def busy():
    start = time.thread_time()
    while time.thread_time() - start < 0.3:
        pass

before = cpu()
worker = threading.Thread(target=busy)
worker.start()
worker.join()
print(idle, cpu() - before)
"""


@pytest.mark.slow
def test_an_idle_predictor_takes_no_cpu_after_a_large_batch():
    """CPU seconds (user + system, every thread) of a fresh process in the 5 idle seconds
    after ten million-row batches on the bulk session, whose threads do not spin. A
    bound on CPU time used, not on speed: a busy machine slows the batches but adds no
    CPU time to an idle process. The control shows that the measure sees a thread that
    is not the main one (0.3 CPU seconds of a busy thread)."""
    proc = subprocess.run(
        [sys.executable, "-c", IDLE_SCRIPT, str(MLR), "5"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    idle, control = map(float, proc.stdout.split())
    assert control >= 0.25  # os.times counts in clock ticks (10 ms)
    assert idle < 0.1
