"""``mlflow.pyfunc.load_model`` on a model directory: the Predictor's predictions, bit for
bit, its intervals and its error messages; logging and the registry on a local store."""

from __future__ import annotations

import numpy as np
import pytest

from inference import InputError, ModelLoadError, Predictor
from linreg.main import main
from tests.mlflow.conftest import BUNDLED, needs_mlflow

pytestmark = needs_mlflow


def _frame(features, rows, kind, seed=0):
    import pandas as pd

    rng = np.random.default_rng(seed)
    if kind == "int64":
        return pd.DataFrame(rng.integers(-1000, 1000, (rows, len(features))), columns=features)
    values = rng.normal(50, 30, (rows, len(features)))
    frame = pd.DataFrame(values.astype(kind), columns=features)
    frame["other"] = "carried"  # a column the model does not read
    return frame


def _message(predictor, frame, **kwargs):
    with pytest.raises(InputError) as caught:
        predictor.predict(frame, **kwargs)
    return str(caught.value)


@pytest.mark.parametrize("kind", ["float64", "float32", "int64"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_pyfunc_predict_is_the_predictors_bit_for_bit(exported, dtype, kind):
    import mlflow

    _, out = exported("plant_richness_mlr", dtype)
    predictor = Predictor.load(out)
    frame = _frame(predictor.features, 5000, kind)
    got = mlflow.pyfunc.load_model(str(out)).predict(frame)
    want = predictor.predict(frame)
    assert isinstance(got, np.ndarray) and got.dtype == np.dtype(dtype) and got.shape == (5000,)
    np.testing.assert_array_equal(got, want, strict=True)


@pytest.mark.parametrize("interval", ["confidence", "prediction"])
@pytest.mark.parametrize("level", [0.9, 0.95, 0.99])
def test_the_interval_params(interval, level):
    import mlflow

    model_dir = BUNDLED / "plant_richness_mlr"
    predictor = Predictor.load(model_dir)
    frame = _frame(predictor.features, 300, "int64", seed=3)
    got = mlflow.pyfunc.load_model(str(model_dir)).predict(
        frame, params={"interval": interval, "level": level}
    )
    want = predictor.predict(frame, interval=interval, level=level)
    assert list(got.columns) == ["prediction", "lower", "upper"]
    for name in got.columns:
        np.testing.assert_array_equal(got[name].to_numpy(), getattr(want, name), strict=True)
    assert (got["lower"] < got["prediction"]).all() and (got["prediction"] < got["upper"]).all()


def test_params_left_out_or_null_mean_no_interval():
    import mlflow

    model_dir = BUNDLED / "plant_richness_lr"
    frame = _frame(["area"], 10, "float64")
    model = mlflow.pyfunc.load_model(str(model_dir))
    want = Predictor.load(model_dir).predict(frame)
    for params in (None, {}, {"interval": None}, {"level": 0.9}):
        np.testing.assert_array_equal(model.predict(frame, params=params), want, strict=True)


@pytest.mark.parametrize(
    ("column", "value"), [("latitude", np.nan), ("area", np.inf), ("dist_mainland", "far")]
)
def test_errors_are_the_predictors_input_errors(column, value):
    import mlflow
    from mlflow.exceptions import MlflowException

    model_dir = BUNDLED / "plant_richness_mlr"
    predictor = Predictor.load(model_dir)
    frame = _frame(predictor.features, 20, "float64").drop(columns="other")
    frame = frame.astype(object) if isinstance(value, str) else frame
    frame.loc[7, column] = value
    expected = _message(predictor, frame)
    model = mlflow.pyfunc.load_model(str(model_dir))
    with pytest.raises(InputError) as caught:
        model.predict(frame)
    assert str(caught.value) == expected
    assert isinstance(caught.value, MlflowException) and caught.value.get_http_status_code() == 400


def test_a_missing_column_is_the_predictors_error_too():
    import mlflow

    model_dir = BUNDLED / "plant_richness_mlr"
    predictor = Predictor.load(model_dir)
    frame = _frame(predictor.features, 5, "float64").drop(columns="latitude")
    expected = _message(predictor, frame)
    assert "missing ['latitude']" in expected
    with pytest.raises(InputError) as caught:
        mlflow.pyfunc.load_model(str(model_dir)).predict(frame)
    assert str(caught.value) == expected


def test_bad_params_are_refused():
    import mlflow
    from mlflow.exceptions import MlflowException

    model = mlflow.pyfunc.load_model(str(BUNDLED / "plant_richness_lr"))
    frame = _frame(["area"], 3, "float64")
    with pytest.raises(InputError, match="interval must be one of"):
        model.predict(frame, params={"interval": "credible"})
    with pytest.raises(MlflowException, match="level"):  # MLflow's own check of the type
        model.predict(frame, params={"level": "high"})


def test_two_models_in_one_process_keep_their_own_predictions():
    """MLflow's code_paths import each model's modules by name, so two models shipping a
    same-named module share whichever came first; here the loader is the installed package
    and each directory only holds data."""
    import mlflow

    lr, mlr = BUNDLED / "plant_richness_lr", BUNDLED / "plant_richness_mlr"
    a, b = mlflow.pyfunc.load_model(str(lr)), mlflow.pyfunc.load_model(str(mlr))
    frame = _frame(["area", "latitude", "dist_mainland"], 50, "float64")
    np.testing.assert_array_equal(a.predict(frame), Predictor.load(lr).predict(frame))
    np.testing.assert_array_equal(b.predict(frame), Predictor.load(mlr).predict(frame))
    assert not np.array_equal(a.predict(frame), b.predict(frame))


def test_logged_and_registered_models_load_from_the_registry(tracking):
    import mlflow

    from inference.mlflow_model import log_model

    model_dir = BUNDLED / "plant_richness_mlr"
    first = log_model(model_dir, registered_model_name="plants")
    second = log_model(model_dir, registered_model_name="plants")
    assert (first.registered_model_version, second.registered_model_version) == (1, 2)
    frame = _frame(Predictor.load(model_dir).features, 1000, "int64")
    want = Predictor.load(model_dir).predict(frame)
    got = mlflow.pyfunc.load_model("models:/plants/1").predict(frame)
    np.testing.assert_array_equal(got, want, strict=True)
    # the registry holds the directory byte for byte: its hashes still check out
    local = mlflow.artifacts.download_artifacts("models:/plants/2")
    np.testing.assert_array_equal(Predictor.load(local).predict(frame), want, strict=True)
    run = mlflow.get_run(mlflow.MlflowClient().get_logged_model(first.model_id).source_run_id)
    assert run.data.params == {
        "model": "plant_richness_mlr",
        "dtype": "float32",
        "target": "ntv_rich",
    }


def test_the_command_logs_and_registers(tracking, tmp_path, capsys):
    import mlflow

    store = (tmp_path / "cli-store").as_uri()
    model_dir = BUNDLED / "plant_richness_lr"
    args = ["mlflow", "log", str(model_dir), "--registered-model-name", "lr", "--tracking-uri"]
    assert main([*args, store, "--experiment", "plants"]) == 0
    assert "registered models:/lr/1" in capsys.readouterr().out
    frame = _frame(["area"], 100, "float64")
    mlflow.set_tracking_uri(store)
    got = mlflow.pyfunc.load_model("models:/lr/1").predict(frame)
    np.testing.assert_array_equal(got, Predictor.load(model_dir).predict(frame), strict=True)
    assert mlflow.get_experiment_by_name("plants") is not None


def test_a_directory_without_mlflow_files_is_refused(tracking, tmp_path, capsys):
    from inference.manifest import MLFLOW_FILES, Manifest
    from inference.mlflow_model import log_model

    old = tmp_path / "old"
    old.mkdir()
    manifest = Manifest.read(BUNDLED / "plant_richness_lr")
    for name in ("model.onnx", "model.pt"):
        (old / name).write_bytes((BUNDLED / "plant_richness_lr" / name).read_bytes())
    data = dict(manifest.data)
    data["artifacts"] = {
        k: v for k, v in manifest.artifacts.items() if k in ("model.onnx", "model.pt")
    }
    Manifest(data).write(old)
    Predictor.load(old)  # a model directory of an earlier version: still a linreg model
    assert not any((old / name).exists() for name in MLFLOW_FILES)
    with pytest.raises(ModelLoadError, match="no MLmodel among its artifacts"):
        log_model(old)
    assert main(["mlflow", "log", str(old)]) == 1
    assert "export it again" in capsys.readouterr().err
