"""One rule for every input form of ``Predictor.predict`` (issue 28): named columns
the model does not read are ignored and reported (refused with strict_columns),
booleans are refused, an empty batch gives an empty array. Predictions are checked
against numpy with the manifest's parameters."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from inference import InputError, Predictor
from inference.errors import IgnoredColumnsWarning
from inference.inputs import as_matrix

MLR = Path(__file__).resolve().parents[2] / "exported_models" / "plant_richness_mlr"
FEATURES = ["area", "latitude", "dist_mainland"]
ROWS = np.array([[3.0, 42.0, 10.0], [1.5, 40.0, 2.0]])


@pytest.fixture(scope="module")
def mlr() -> Predictor:
    return Predictor.load(MLR, providers="cpu")


def reference(p: Predictor, X: np.ndarray) -> np.ndarray:
    params = p.manifest.data["parameters"]
    return X @ np.asarray(params["coef"]) + params["intercept"]


def forms_with(extra: dict[str, list[float]]) -> dict[str, object]:
    columns = {f: ROWS[:, j].tolist() for j, f in enumerate(FEATURES)} | extra
    rows = zip(*columns.values(), strict=True)
    records = [dict(zip(columns, values, strict=True)) for values in rows]
    return {
        "DataFrame": pd.DataFrame(columns),
        "dict of lists": columns,
        "dict of arrays": {k: np.asarray(v) for k, v in columns.items()},
        "records": records,
    }


@pytest.mark.parametrize("form", list(forms_with({})))
def test_extra_columns_are_ignored_and_reported_in_every_form(mlr, form):
    X = forms_with({"comment": [7.0, 8.0], "id": [1.0, 2.0]})[form]
    with pytest.warns(IgnoredColumnsWarning, match=r"ignored \['comment', 'id'\]") as record:
        got = mlr.predict(X)
    np.testing.assert_allclose(got, reference(mlr, ROWS), rtol=1e-6)
    assert record[0].filename == __file__  # the warning points at the caller
    with pytest.raises(InputError, match=r"unknown \['comment', 'id'\] \(strict_columns=True\)"):
        mlr.predict(X, strict_columns=True)
    strict = Predictor.load(MLR, providers="cpu", strict_columns=True)
    with pytest.raises(InputError, match=r"unknown"):
        strict.predict(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning without extra columns
        np.testing.assert_allclose(strict.predict(forms_with({})[form]), got, rtol=0)


def test_predict_one_follows_the_same_rule(mlr):
    row = dict(zip(FEATURES, ROWS[0], strict=True))
    with pytest.warns(IgnoredColumnsWarning, match=r"predict_one: ignored \['note'\]"):
        got = mlr.predict_one({**row, "note": 1.0})
    assert got == pytest.approx(reference(mlr, ROWS[:1])[0], rel=1e-6)
    strict = Predictor.load(MLR, providers="cpu", strict_columns=True)
    with pytest.raises(InputError, match=r"predict_one: missing \[\], unknown \['note'\]"):
        strict.predict_one({**row, "note": 1.0})


def test_as_matrix_can_collect_the_ignored_names_instead(mlr):
    ignored: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        X = as_matrix(
            forms_with({"x": [0.0, 0.0]})["records"], FEATURES, np.dtype("f8"), ignored=ignored
        )
    assert ignored == ["x"] and X.shape == (2, 3)


@pytest.mark.parametrize(
    ("X", "where"),
    [
        ([[True, 42.0, 10.0]], r"row 0, column 'area'"),
        ([[3.0, 42.0, 10.0], [1.0, 40.0, False]], r"row 1, column 'dist_mainland'"),
        ([True, 42.0, 10.0], r"row 0, column 'area'"),
        (((3.0, np.bool_(True), 10.0),), r"row 0, column 'latitude'"),
        ({"area": [True], "latitude": [42.0], "dist_mainland": [1.0]}, r"column 'area', row 0"),
        ({"area": True, "latitude": 42.0, "dist_mainland": 1.0}, r"column 'area'"),
        ([{"area": 1.0, "latitude": True, "dist_mainland": 1.0}], r"column 'latitude'"),
        (np.ones((2, 3), dtype=bool), r"booleans"),
        (pd.DataFrame({"area": [True], "latitude": [1.0], "dist_mainland": [1.0]}), r"'area'"),
    ],
)
def test_booleans_are_refused_in_every_form(mlr, X, where):
    with pytest.raises(InputError, match=where) as info:
        mlr.predict(X)
    assert "bool" in str(info.value)


@pytest.mark.parametrize(
    "X",
    [
        [],
        (),
        np.empty(0),
        np.empty((0, 3)),
        np.empty((0, 3), dtype=np.int64),
        pd.DataFrame(),
        pd.DataFrame(columns=FEATURES),
        pd.DataFrame({f: pd.Series([], dtype="float64") for f in [*FEATURES, "id"]}),
        {},
        {f: [] for f in FEATURES},
    ],
    ids=lambda x: type(x).__name__,
)
def test_an_empty_batch_gives_an_empty_array_in_every_form(mlr, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IgnoredColumnsWarning)
        got = mlr.predict(X)
        both = mlr.predict(X, interval="prediction")
    assert got.shape == (0,) and got.dtype == mlr.dtype
    assert both.lower.shape == (0,)


def test_an_empty_batch_still_checks_the_columns_it_names(mlr):
    with pytest.raises(InputError, match=r"missing \['dist_mainland'\]"):
        mlr.predict(pd.DataFrame(columns=["area", "latitude"]))
    with pytest.raises(InputError, match=r"X has 2 features"):
        mlr.predict(np.empty((0, 2)))
