"""Collinearity diagnostics (issue 28): Belsley-Kuh-Welsch's scaled condition number
and the variance inflation factors, against independent computations (numpy on the
design with unit-length columns; statsmodels' ``variance_inflation_factor``)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from training.data import load_dataset
from training.data.nist import load_nist
from training.errors import CollinearityWarning, DataError
from training.pipeline import train
from training.solver.estimator import LinearRegressionSGD
from training.stats import regression_statistics, summary_table
from training.stats.collinearity import CONDITION_THRESHOLD, VIF_THRESHOLD

sm = pytest.importorskip("statsmodels.api")
from statsmodels.stats.outliers_influence import variance_inflation_factor  # noqa: E402


def statistics_of(X, fit_intercept=True):
    """The statistics at the least-squares optimum, and the collinearity warnings."""
    Z = np.column_stack([np.ones(len(X)), X]) if fit_intercept else X
    y = Z @ np.arange(1.0, Z.shape[1] + 1) + np.random.default_rng(1).normal(size=len(X))
    params = np.linalg.lstsq(Z, y, rcond=None)[0]
    coef, intercept = (params[1:], params[0]) if fit_intercept else (params, 0.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        st = regression_statistics(X, y, coef, intercept, fit_intercept=fit_intercept)
    return st, [w for w in caught if issubclass(w.category, CollinearityWarning)]


def designs():
    rng = np.random.default_rng(0)
    n = 200
    a, b = rng.normal(size=n), rng.normal(size=n)
    yield "independent", np.column_stack([a, 1e4 * b, rng.uniform(size=n)])
    yield "correlated", np.column_stack([a, a + 0.3 * b, b + 0.1 * rng.normal(size=n)])
    yield "plant_richness_mlr", load_dataset("plant_richness_mlr").X
    yield "Longley", load_nist("Longley").X
    yield "Pontius", load_nist("Pontius").X
    yield "Wampler1", load_nist("Wampler1").X


@pytest.mark.parametrize(("name", "X"), list(designs()), ids=[n for n, _ in designs()])
def test_vif_equals_statsmodels(name, X):
    st, _ = statistics_of(X)
    Z = sm.add_constant(X, has_constant="add")
    expected = [variance_inflation_factor(Z, j) for j in range(1, Z.shape[1])]
    np.testing.assert_allclose(st.vif, expected, rtol=1e-10)


def test_vif_without_an_intercept_is_statsmodels_on_the_raw_design():
    """Without an intercept a coefficient's variance is ``s² / (‖x_j‖² (1 - R²_j))``
    with the uncentred R²: statsmodels' figure on the design as it is
    (``standardize=False``; its default centres the columns, as for a model with an
    intercept)."""
    rng = np.random.default_rng(2)
    a = rng.normal(3, 1, 100)
    X = np.column_stack([a, a + rng.normal(size=100), rng.normal(size=100)])
    st, _ = statistics_of(X, fit_intercept=False)
    try:
        expected = [variance_inflation_factor(X, j, standardize=False) for j in range(3)]
    except TypeError:  # statsmodels before 0.15 does not standardize
        expected = [variance_inflation_factor(X, j) for j in range(3)]
    np.testing.assert_allclose(st.vif, expected, rtol=1e-10)


@pytest.mark.parametrize(("name", "X"), list(designs()), ids=[n for n, _ in designs()])
def test_scaled_condition_number_is_that_of_unit_length_columns(name, X):
    st, _ = statistics_of(X)
    Z = np.column_stack([np.ones(len(X)), X])
    expected = np.linalg.cond(Z / np.linalg.norm(Z, axis=0))
    assert st.scaled_condition_number == pytest.approx(expected, rel=1e-6)
    assert st.condition_number == pytest.approx(np.linalg.cond(Z), rel=1e-6)


def test_independent_features_of_different_scales_get_no_warning():
    """Metres, millimetres and a fraction: statsmodels' condition number is 1e4 and
    above (the old warning), the scaled one and the VIFs are near 1: no warning."""
    rng = np.random.default_rng(3)
    n = 500
    X = np.column_stack(
        [rng.normal(0, 1, n), rng.normal(0, 1e4, n), rng.uniform(0, 1e-3, n), rng.normal(5, 4, n)]
    )
    st, caught = statistics_of(X)
    assert st.condition_number > 1e4  # the raw figure measures units
    assert st.scaled_condition_number < CONDITION_THRESHOLD
    assert np.all(st.vif < 1.1)
    assert caught == [] and st.collinearity_notes == []
    text = " ".join(summary_table(st, target="y").split())
    scaled = "Condition number (Belsley-Kuh-Welsch, columns scaled to unit length):"
    raw = "statsmodels' condition number of the unscaled design (it depends on the units"
    assert f"{scaled} {st.scaled_condition_number:.3g};" in text
    assert f"{raw}, shown for information): {st.condition_number:.3g}." in text
    assert "Note:" not in text


@pytest.mark.parametrize("name", ["Longley", "Filip", "Wampler1", "Wampler3", "Wampler5"])
def test_nist_collinear_sets_still_get_a_warning(name):
    problem = load_nist(name)
    st, caught = statistics_of(problem.X)
    assert st.scaled_condition_number > CONDITION_THRESHOLD
    assert st.vif.max() > VIF_THRESHOLD
    texts = [str(w.message) for w in caught]
    assert any("scaled condition number is large" in t for t in texts), texts
    assert any("Variance inflation factor above 10" in t for t in texts), texts


def test_the_warning_names_the_columns_involved():
    rng = np.random.default_rng(4)
    a, b, c = rng.normal(size=(3, 300))
    frame = pd.DataFrame({"a": a, "b": b, "almost_a": a + 1e-3 * c})
    frame["y"] = frame.a + frame.b + rng.normal(size=300)
    with pytest.warns(CollinearityWarning) as record:
        run = train(frame, target="y", progress=False)
    texts = " ".join(str(w.message) for w in record)
    assert "between 'a' and 'almost_a'" in texts
    assert "almost_a" in texts and "Variance inflation factor above 10: a " in texts
    assert "'b'" not in texts.split("Variance")[0]  # b is not in the near-dependency
    assert run.statistics.collinearity_notes  # kept for the summary


def test_a_feature_far_from_zero_involves_the_intercept():
    """latitude 42.6 ± 1.5: a near-dependency with the intercept, VIFs near 1."""
    t = load_dataset("plant_richness_mlr")
    st, caught = statistics_of(t.X)
    assert np.all(st.vif < 1.1)
    (warning,) = caught
    assert "between the intercept and 'x1'" in str(warning.message)
    assert "It involves the intercept" in str(warning.message)


def test_constant_and_collinear_columns_are_named():
    rng = np.random.default_rng(5)
    frame = pd.DataFrame(rng.normal(size=(50, 3)), columns=["rooms", "sqft", "age"])
    frame["y"] = rng.normal(size=50)
    frame["flag"] = 1.0
    with pytest.raises(DataError, match=r"feature column 'flag' is constant"):
        train(frame, target="y", progress=False)
    frame["flag"] = frame.rooms - 2 * frame.sqft
    with pytest.raises(DataError, match=r"columns 'rooms', 'sqft', 'flag' and the intercept"):
        train(frame, target="y", progress=False)


def test_the_figures_are_stored_in_the_manifest(tmp_path):
    from training.export import export_model

    run = train(load_dataset("plant_richness_mlr"), progress=False)
    out = export_model(run, tmp_path / "m", plots=False)
    stats = json.loads((out / "manifest.json").read_text())["statistics"]
    assert stats["scaled_condition_number"] == pytest.approx(run.statistics.scaled_condition_number)
    assert stats["vif"] == pytest.approx(run.statistics.vif.tolist())
    assert stats["collinearity_notes"] == run.statistics.collinearity_notes


def test_chunked_fits_give_the_same_figures():
    from training.chunked.streaming import fit_arrays

    t = load_dataset("plant_richness_mlr")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CollinearityWarning)
        chunked = fit_arrays(t.X, t.y, chunk_rows=5, progress=False).statistics
        m = LinearRegressionSGD(progress=False).fit(t.X, t.y)
        memory = regression_statistics(t.X, t.y, m.coef_, m.intercept_)
    assert chunked.scaled_condition_number == pytest.approx(memory.scaled_condition_number)
    np.testing.assert_allclose(chunked.vif, memory.vif, rtol=1e-9)
