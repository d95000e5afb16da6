"""Batch scoring of an exported scikit-learn pipeline whose design fills gaps and scores
unseen levels as no level (``SimpleImputer``, ``OneHotEncoder(handle_unknown="ignore")``).

``score_file`` on CSV and Parquet, with the C readers on and off, is compared with the
fitted pipeline's own ``predict`` on the same rows: a gap in a filled column and an
unseen or missing value of a factor with ``unknown="zero"`` are scored, not bad rows
(one :class:`UnknownLevelWarning` per chunk names the first); text that is not a number,
inf, and an unseen level of a factor without that policy are still bad rows, named by
their own column even where the row also has a filled gap.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("torch")
pytest.importorskip("sklearn")

from sklearn.compose import ColumnTransformer  # noqa: E402
from sklearn.impute import SimpleImputer  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import OneHotEncoder, StandardScaler  # noqa: E402

from inference.batch import score_file  # noqa: E402
from inference.errors import UnknownLevelWarning  # noqa: E402
from training.export import export_model  # noqa: E402
from training.solver.estimator import LinearRegressionSGD  # noqa: E402

N = 400


def _frame(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "x1": rng.normal(10, 3, N),
            "x2": rng.uniform(-5, 50, N),
            "shop": rng.choice(["north", "south", "east", "west"], N).astype(object),
            "cyl": rng.choice([4, 6, 8], N),
        }
    )
    frame["y"] = 0.5 * frame.x1 - 0.1 * frame.x2 + 0.3 * frame.cyl + rng.normal(size=N)
    frame["y"] += frame.shop.map({"north": 1.0, "south": -1.0}).fillna(0.0)
    frame.loc[rng.random(N) < 0.08, "x1"] = np.nan
    frame.loc[rng.random(N) < 0.08, "x2"] = np.nan
    return frame


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    frame = _frame(3)
    transformer = ColumnTransformer(
        [
            ("shop", OneHotEncoder(drop="first", handle_unknown="ignore"), ["shop"]),
            ("cyl", OneHotEncoder(drop="first"), ["cyl"]),
            ("num", SimpleImputer(strategy="median"), ["x1", "x2"]),
        ]
    )
    pipe = Pipeline(
        [("prep", transformer), ("scale", StandardScaler()), ("model", LinearRegressionSGD())]
    )
    X, y = frame.drop(columns=["y"]), frame["y"]
    pipe.fit(X, y)
    directory = tmp_path_factory.mktemp("filled") / "m"
    out = export_model(pipe, directory, X=X, y=y, dtype="float64", plots=False)
    return pipe, out


def _new_rows() -> pd.DataFrame:
    """Fresh rows with gaps in both numbers, unseen and missing shops."""
    rows = _frame(5).drop(columns=["y"])
    rows.loc[[7, 150, 333], "shop"] = "Mars"
    rows.loc[[12, 260], "shop"] = None
    return rows


def _write(frame: pd.DataFrame, path):
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return path


def _expected(pipe, rows: pd.DataFrame) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # scikit-learn's unknown categories
        return pipe.predict(rows)


@pytest.mark.parametrize("native", ["0", "1"])
@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_gaps_filled_and_unseen_levels_scored_as_the_pipeline(
    fitted, suffix, native, tmp_path, monkeypatch
):
    monkeypatch.setenv("LINREG_NO_NATIVE", native)
    pipe, model = fitted
    rows = _new_rows()
    assert rows[["x1", "x2"]].isna().any(axis=1).sum() > 40
    source = _write(rows, tmp_path / f"in{suffix}")
    out = tmp_path / "out.csv"
    with pytest.warns(UnknownLevelWarning) as caught:
        report = score_file(model, source, out, bad_rows="skip", chunk_rows=100)
    assert (report.rows_read, report.rows_written, report.rows_bad) == (N, N, 0)
    got = pd.read_csv(out)["prediction"].to_numpy()
    np.testing.assert_allclose(got, _expected(pipe, rows), rtol=1e-12, atol=1e-12)
    # one warning per chunk with such a value (chunks hold about 100 rows), the first
    # naming row 8; their counts add up to the five rows (three 'Mars', two missing)
    messages = [str(w.message) for w in caught if w.category is UnknownLevelWarning]
    where = "row 8" if suffix == ".parquet" else "row 8 (line 9)"
    assert f"in{suffix}: {where}, column 'shop': the value 'Mars' is not a level" in messages[0]
    counts = [int(re.search(r"(\d+) row\(s\) of this chunk", m)[1]) for m in messages]
    assert sum(counts) == 5, messages


@pytest.mark.parametrize("native", ["0", "1"])
def test_text_inf_and_an_unseen_level_without_the_policy_are_bad_rows(
    fitted, native, tmp_path, monkeypatch
):
    monkeypatch.setenv("LINREG_NO_NATIVE", native)
    pipe, model = fitted
    rows = _new_rows().astype({"x1": object, "cyl": object})
    rows.loc[20, "x1"] = "abc"  # filled column: text is still not a number
    rows.loc[30, "x2"] = np.inf
    rows.loc[40, ["x1", "cyl"]] = [np.nan, 5]  # a filled gap beside an unseen cyl
    source = _write(rows, tmp_path / "in.csv")
    bad_file = tmp_path / "bad.csv"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnknownLevelWarning)
        report = score_file(model, source, tmp_path / "out.csv", bad_rows=bad_file)
    assert (report.rows_written, report.rows_bad) == (N - 3, 3)
    bad = pd.read_csv(bad_file, keep_default_na=False)
    assert bad["row"].tolist() == [21, 31, 41]
    assert bad["column"].tolist() == ["x1", "x2", "cyl"]
    assert bad["error"][0] == "'abc' is not a number"
    assert "not a finite number" in bad["error"][1]
    assert bad["error"][2].startswith("'5' is not a level this model knows (levels: ['4'")
    kept = rows.drop(index=[20, 30, 40]).astype({"x1": float, "cyl": int})
    got = pd.read_csv(tmp_path / "out.csv")["prediction"].to_numpy()
    np.testing.assert_allclose(got, _expected(pipe, kept), rtol=1e-12, atol=1e-12)
