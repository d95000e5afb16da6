"""The ``linreg`` command line: train, info, regenerate."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from inference import Predictor
from linreg.main import main
from training.data import load_dataset
from training.pipeline import train


def test_train_prints_a_summary_and_exports(tmp_path, capsys):
    out = tmp_path / "m"
    assert main(["train", "--dataset", "plant_richness_mlr", "--out", str(out), "--show", "2"]) == 0
    text = capsys.readouterr().out
    for needle in (
        "R-squared:",
        "0.915464",
        "latitude",
        "P>|t|",
        "Least-squares optimum",
        "converged",
    ):
        assert needle in text
    assert "first 2 rows, 95% prediction interval" in text
    p = Predictor.load(out)
    assert p.features == ["area", "latitude", "dist_mainland"]


def test_train_from_a_file_with_a_split(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2))
    frame = pd.DataFrame({"id": range(200), "a": X[:, 0], "b": X[:, 1]})
    frame["y"] = 2 * frame.a - frame.b + 0.5 + 0.1 * rng.normal(size=200)
    path = tmp_path / "data.parquet"
    frame.to_parquet(path)
    main(
        ["train", "--data", str(path), "--target", "y", "--features", "a,b", "--test-size", "0.25"]
    )
    text = capsys.readouterr().out
    assert "Held-out: 50 rows: MSE" in text


def test_train_errors_are_clear(tmp_path, capsys):
    path = tmp_path / "bad.csv"
    path.write_text("a,y\n1,2\n2,x\n3,4\n4,5\n")
    # bad data and a diverged fit exit 1 (issue 28: 2 is for usage errors only)
    assert main(["train", "--data", str(path), "--target", "y"]) == 1
    assert "column 'y', row 2 (line 3): the value 'x' is not numeric" in capsys.readouterr().err
    assert main(["train", "--dataset", "plant_richness_mlr", "--preset", "tutorial"]) == 1
    assert "training diverged" in capsys.readouterr().err


def test_info_errors_exit_1_with_the_path(tmp_path, capsys):
    missing = tmp_path / "nowhere"
    assert main(["info", str(missing)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("linreg info: error: ") and str(missing) in err


def test_heldout_metrics_are_computed_on_the_heldout_rows():
    table = load_dataset("plant_richness_mlr")
    run = train(table, test_size=0.25, progress=False)
    assert run.data["n_heldout"] == 6 and len(run.y_train) == 16
    held = [i for i in range(22) if not any(np.array_equal(table.X[i], r) for r in run.X_train)]
    pred = run.estimator.predict(table.X[held])
    err = table.y[held] - pred
    h = run.metrics["heldout"]
    assert h["mse"] == pytest.approx(np.mean(err**2), rel=1e-9)
    assert h["mae"] == pytest.approx(np.mean(np.abs(err)), rel=1e-9)
    assert run.statistics.n_samples == 16


def test_info_prints_the_manifest(capsys):
    assert main(["info", "exported_models/plant_richness_lr"]) == 0
    text = capsys.readouterr().out
    assert "predicts    ntv_rich from area" in text and "sha256" in text and "R² 0.827786" in text
    main(["info", "exported_models/plant_richness_lr", "--json"])
    assert json.loads(capsys.readouterr().out)["features"] == ["area"]


@pytest.mark.slow
def test_info_and_predict_need_no_torch():
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from linreg.main import main\n"
        "main(['info', 'exported_models/plant_richness_mlr'])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "dist_mainland" in out.stdout


def test_progress_bar_shows_epochs_and_loss(capsys):
    from training.solver.estimator import LinearRegressionSGD

    t = load_dataset("plant_richness_lr")
    LinearRegressionSGD(progress=True, max_epochs=120, early_stop=False).fit(t.X, t.y)
    err = capsys.readouterr().err
    assert "epochs" in err and "loss=" in err
    LinearRegressionSGD(max_epochs=120).fit(t.X, t.y)  # not a terminal: quiet
    assert capsys.readouterr().err == ""


def test_regenerate(tmp_path, capsys):
    assert main(["regenerate", "--dir", str(tmp_path)]) == 0
    bundled = {"plant_richness_lr", "plant_richness_mlr", "penguins"}  # penguins: issue 23
    assert {p.name for p in tmp_path.iterdir()} == bundled
    assert "R² 0.9154639" in capsys.readouterr().out


def test_unconverged_fit_is_not_exported_without_the_flag(tmp_path, capsys):
    out = tmp_path / "tut"
    args = ["train", "--preset", "tutorial", "--epochs", "50", "--out", str(out), "--no-plots"]
    assert main(args) == 1  # a run that failed, not a usage error (issue 28, docs/guide/cli.md)
    captured = capsys.readouterr()
    assert "NOT CONVERGED" in captured.out and "SGD did not converge in 50 epochs" in captured.out
    assert "--allow-unconverged" in captured.err and not out.exists()
    assert main([*args, "--allow-unconverged"]) == 0
    training = json.loads((out / "manifest.json").read_text())["training"]
    assert training["converged"] is False and training["allow_unconverged"] is True


def test_no_intercept_and_export_dtype_flags(tmp_path, capsys):
    out = tmp_path / "m"
    args = ["train", "--dataset", "plant_richness_lr", "--no-intercept", "--dtype", "float64"]
    assert main([*args, "--out", str(out), "--no-plots"]) == 0
    assert "R-squared (uncentered):" in capsys.readouterr().out
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["dtype"] == "float64" and manifest["parameters"]["intercept"] == 0.0
    t = load_dataset("plant_richness_lr")
    w = np.linalg.lstsq(t.X, t.y, rcond=None)[0]
    np.testing.assert_allclose(Predictor.load(out).predict(t.X), t.X @ w, rtol=1e-12)


BLAS_PROBE = (
    "import os, sys\n"
    "from linreg.main import main\n"
    "try:\n"
    "    main([sys.argv[1], '--help'])\n"
    "except SystemExit:\n"
    "    pass\n"
    "from threadpoolctl import threadpool_info\n"
    "blas = [p['num_threads'] for p in threadpool_info() if p['internal_api'] == 'openblas']\n"
    "print(os.environ.get('OPENBLAS_NUM_THREADS'), blas)\n"
)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("command", "preset", "expected"),
    [("predict", None, "1 [1]"), ("predict", "2", "2 [2]"), ("train", None, "None")],
)
def test_predict_runs_numpys_blas_on_one_thread_unless_told(command, preset, expected):
    pytest.importorskip("threadpoolctl")
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    if preset is not None:
        env["OPENBLAS_NUM_THREADS"] = preset
    out = subprocess.run(
        [sys.executable, "-c", BLAS_PROBE, command],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1].startswith(expected), out.stdout[-500:]


def test_version_says_whether_the_native_readers_are_active(capsys, monkeypatch):
    from inference.io import native_status
    from linreg.main import main

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("linreg-onnx ")
    assert f"csv {native_status()['csv']}" in out
    monkeypatch.setenv("LINREG_NO_NATIVE", "1")
    assert set(native_status().values()) <= {
        "disabled (LINREG_NO_NATIVE=1)",
        "not built (pyarrow decodes)",
    }
