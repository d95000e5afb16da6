"""The Python API as loud as the command line (issue 28): ``train`` takes a DataFrame,
``run.summary()``, ``export_model`` refuses an unconverged fit, errors of our classes
with the Python spelling."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from inference.errors import LinregError, UsageError
from training.data import load_dataset, load_table
from training.errors import DataError, ExportError
from training.export import export_model
from training.pipeline import train

from ..conftest import lstsq


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 2)) * [1.0, 1e3]
    out = pd.DataFrame({"id": np.arange(120), "a": X[:, 0], "b": X[:, 1]})
    out["y"] = 2.0 * out.a - 0.001 * out.b + 0.5 + 0.1 * rng.normal(size=120)
    return out


def test_train_takes_a_dataframe_like_a_file(frame, tmp_path):
    run = train(frame, target="y", features=["a", "b"], progress=False)
    assert run.features == ["a", "b"] and run.target == "y"
    np.testing.assert_allclose(
        [run.estimator.intercept_, *run.estimator.coef_],
        lstsq(frame[["a", "b"]].to_numpy(), frame.y.to_numpy()),
        rtol=1e-9,
    )
    frame.to_csv(tmp_path / "t.csv", index=False)
    from_file = train(load_table(tmp_path / "t.csv", target="y", features=["a", "b"]))
    np.testing.assert_allclose(from_file.statistics.params, run.statistics.params, rtol=1e-12)
    every = train(frame, target="y", progress=False)  # features: all but the target
    assert every.features == ["id", "a", "b"]


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda f: train(f), UsageError, r"train\(DataFrame\) needs target='column'"),
        (lambda f: train(f.to_numpy()), TypeError, r"got ndarray: .*load_table\(path"),
        (lambda f: train((f[["a"]], f.y)), TypeError, r"load_table"),
        (lambda f: train(f, target="nope"), DataError, r"missing column\(s\) \['nope'\]"),
        (lambda f: train(f, target="y", features=["a", "y"]), DataError, r"also listed"),
        (
            lambda f: train(load_dataset("plant_richness_lr"), target="y"),
            UsageError,
            r"target= and features= are for a DataFrame",
        ),
        (lambda f: train(f, target="y", test_size=1.5), UsageError, r"test_size must be in"),
    ],
)
def test_train_refuses_what_it_cannot_use(frame, call, error, match):
    with pytest.raises(error, match=match):
        call(frame)


def test_dataframe_faults_name_the_column_and_row(frame):
    bad = frame.astype({"b": object})
    bad.loc[7, "b"] = "n/a"
    with pytest.raises(DataError, match=r"column 'b', row 7 \(index 7\): 'n/a' is not a number"):
        train(bad, target="y", progress=False)
    # a gap is dropped and counted (R's na.omit), or named with missing="error" (issue 23)
    missing = frame.copy()
    missing.loc[3, "a"] = np.nan
    assert train(missing, target="y", progress=False).design.rows_dropped == 1
    with pytest.raises(DataError, match=r"column 'a', row 4: a missing value"):
        train(missing, target="y", missing="error", progress=False)
    # booleans are a factor (issue 23): one parameter for True
    flags = frame.assign(flag=frame.a > 0)
    assert "flag[T.True]" in train(flags, target="y", progress=False).features


def test_a_split_that_leaves_too_few_rows_says_so():
    with pytest.raises(DataError, match=r"test_size=0.999 holds out 22 of 22 rows, leaving 0"):
        train(load_dataset("plant_richness_mlr"), test_size=0.999)


def test_summary_and_print_give_the_table(frame, capsys):
    run = train(frame, target="y", test_size=0.25, progress=False)
    text = run.summary()
    assert text == str(run)
    print(run)
    assert capsys.readouterr().out == text + "\n"
    for needle in ("Dep. Variable:", "R-squared:", "P>|t|", "Held-out: 30 rows", "converged"):
        assert needle in text
    assert "TrainingRun(target='y'" in repr(run) and "\n" not in repr(run)


def test_export_refuses_an_unconverged_fit_unless_allowed(tmp_path):
    run = train(load_dataset("plant_richness_lr"), preset="tutorial", max_epochs=50, progress=False)
    assert not run.report.converged
    with pytest.raises(ExportError, match=r"pass allow_unconverged=True") as info:
        export_model(run, tmp_path / "m", plots=False)
    assert "--" not in str(info.value)  # the Python spelling only
    assert not (tmp_path / "m").exists()
    out = export_model(run, tmp_path / "m", plots=False, allow_unconverged=True)
    assert (out / "model.onnx").is_file()


def test_batch_usage_errors_are_ours_with_the_python_spelling(tmp_path):
    from inference.batch import score_file

    model = "exported_models/plant_richness_mlr"
    data = "training/data/bundled/plant_richness_mlr.tsv"
    (tmp_path / "o.csv").write_text("x\n")
    with pytest.raises(UsageError, match=r"exists; pass overwrite=True to replace it$") as info:
        score_file(model, data, tmp_path / "o.csv")
    assert isinstance(info.value, LinregError | ValueError) and "--" not in str(info.value)
    (tmp_path / "o.xyz").write_text("a\n1\n")
    with pytest.raises(UsageError, match=r"input_format='csv', 'tsv' or 'parquet'$"):
        score_file(model, tmp_path / "o.xyz", tmp_path / "p.csv")
    rej = tmp_path / "rej.csv"
    with pytest.raises(UsageError, match="is both the output and the bad-rows file"):
        score_file(model, data, rej, bad_rows=rej)
