"""The default fit against NIST's certified values (StRD linear regression, 11 problems).

The certified values were computed by NIST in multiple-precision arithmetic; they
are independent of anything here. Acceptance: at least 7 correct digits (LRE) on
every parameter, parameter standard deviation, the residual standard deviation
and R², with the default preset and float64 training.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from training.data.nist import NIST_NAMES, load_nist, lre, nist_lre
from training.solver.estimator import LinearRegressionSGD
from training.stats import CollinearityWarning, regression_statistics

MIN_LRE = 7.0


def default_fit(X, y, fit_intercept):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CollinearityWarning)
        m = LinearRegressionSGD(fit_intercept=fit_intercept, progress=False).fit(X, y)
        st = regression_statistics(X, y, m.coef_, m.intercept_, fit_intercept=fit_intercept)
    assert m.converged_
    return st.params, st.std_errors, st.residual_std_error, st.r2


def test_lre_counts_correct_digits():
    assert lre(1.2345678, 1.2345679) == pytest.approx(-np.log10(1e-7 / 1.2345679))
    assert lre(1.0, 1.0) == 15.0
    assert lre(1e-9, 0.0) == pytest.approx(9.0)  # absolute error where certified is 0
    assert lre(np.nan, 1.0) == 0.0


@pytest.mark.parametrize("name", NIST_NAMES)
def test_default_fit_reaches_certified_values(name):
    problem = load_nist(name)
    got = nist_lre(problem, default_fit)
    print(f"{name:9s} worst LRE " + ", ".join(f"{k} {v:.1f}" for k, v in got.items()))
    assert min(got.values()) >= MIN_LRE, got


def test_the_suite_is_hard_for_a_plain_float64_solver():
    """The test can fail: numpy's lstsq on the raw design misses Filip entirely."""
    problem = load_nist("Filip")
    Z = np.column_stack([np.ones(len(problem.y)), problem.X])
    params = np.linalg.lstsq(Z, problem.y, rcond=None)[0]
    assert lre(params, problem.certified["params"]).min() < MIN_LRE


def test_uncentered_statistics_match_statsmodels_without_a_constant():
    sm = pytest.importorskip("statsmodels.api")
    problem = load_nist("NoInt1")
    ols = sm.OLS(problem.y, problem.X).fit()
    m = LinearRegressionSGD(fit_intercept=False, progress=False).fit(problem.X, problem.y)
    st = regression_statistics(problem.X, problem.y, m.coef_, m.intercept_, fit_intercept=False)
    assert m.intercept_ == 0.0 and st.names == ["x0"]
    np.testing.assert_allclose(st.params, ols.params, rtol=1e-12)
    np.testing.assert_allclose(st.std_errors, ols.bse, rtol=1e-10)
    assert st.r2 == pytest.approx(ols.rsquared, rel=1e-12)  # uncentered, as statsmodels
    assert st.adj_r2 == pytest.approx(ols.rsquared_adj, rel=1e-12)
    assert st.f_statistic == pytest.approx(ols.fvalue, rel=1e-10)
    # the manifest's covariance stays intercept-first, the fixed intercept with variance 0
    cov = np.asarray(st.to_dict()["covariance"])
    assert cov.shape == (2, 2) and cov[0].tolist() == [0.0, 0.0]


def test_condition_number_is_statsmodels_and_warns_above_1000():
    sm = pytest.importorskip("statsmodels.api")
    problem = load_nist("Longley")
    ols = sm.OLS(problem.y, sm.add_constant(problem.X)).fit()
    m = LinearRegressionSGD(progress=False).fit(problem.X, problem.y)
    with pytest.warns(CollinearityWarning, match="condition number is large"):
        st = regression_statistics(problem.X, problem.y, m.coef_, m.intercept_)
    assert st.condition_number == pytest.approx(ols.condition_number, rel=1e-6)


def test_no_intercept_model_exports_and_gives_statsmodels_intervals(tmp_path):
    sm = pytest.importorskip("statsmodels.api")
    from inference import Predictor
    from training.export import export_model
    from training.pipeline import TrainingRun

    problem = load_nist("NoInt1")
    m = LinearRegressionSGD(fit_intercept=False, progress=False).fit(problem.X, problem.y)
    run = TrainingRun.from_estimator(m, problem.X, problem.y, features=["x"], target="y")
    model = Predictor.load(export_model(run, tmp_path / "noint"))
    rows = np.array([[60.0], [75.5]])
    got = model.predict(rows, interval="prediction", level=0.95)
    ref = sm.OLS(problem.y, problem.X).fit().get_prediction(rows).summary_frame(alpha=0.05)
    np.testing.assert_allclose(got.prediction, ref["mean"], rtol=1e-6)
    np.testing.assert_allclose(got.lower, ref["obs_ci_lower"], rtol=1e-6)
    np.testing.assert_allclose(got.upper, ref["obs_ci_upper"], rtol=1e-6)


def test_filip_exports_in_float64_because_float32_cannot_reproduce_it(tmp_path):
    import json

    from training.export import ExportError, export_model
    from training.pipeline import TrainingRun

    problem = load_nist("Filip")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CollinearityWarning)
        m = LinearRegressionSGD(progress=False).fit(problem.X, problem.y)
        names = [f"x{i}" for i in range(1, 11)]
        run = TrainingRun.from_estimator(m, problem.X, problem.y, features=names, target="y")
    # the Python spelling (issue 28: one per API; linreg train prints --dtype float64)
    with pytest.raises(ExportError, match="export with dtype='float64'; nothing was written"):
        export_model(run, tmp_path / "f32", dtype="float32", plots=False)
    assert not (tmp_path / "f32").exists()
    out = export_model(run, tmp_path / "auto", plots=False)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["dtype"] == "float64" and manifest["dtype_reason"].startswith("auto")
