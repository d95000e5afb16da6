"""Statistics against an independent closed-form computation and statsmodels."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from training.data import load_dataset
from training.solver.estimator import LinearRegressionSGD
from training.stats import regression_metrics, regression_statistics, summary_table


def closed_form(X, y, params):
    """Textbook OLS inference at ``params`` = [intercept, *coef], written out by hand."""
    n, k = X.shape
    Z = np.hstack([np.ones((n, 1)), X])
    e = y - Z @ params
    df = n - k - 1
    s2 = e @ e / df
    cov = s2 * np.linalg.pinv(Z.T @ Z)
    se = np.sqrt(np.diag(cov))
    t = params / se
    p = 2 * (1 - sps.t.cdf(np.abs(t), df))
    q = sps.t.isf(0.025, df)
    tss = ((y - y.mean()) ** 2).sum()
    r2 = 1 - (e @ e) / tss
    f = (r2 / k) / ((1 - r2) / df)
    return dict(
        se=se,
        t=t,
        p=p,
        lo=params - q * se,
        hi=params + q * se,
        r2=r2,
        adj=1 - (1 - r2) * (n - 1) / df,
        f=f,
        fp=1 - sps.f.cdf(f, k, df),
        cov=cov,
        s2=s2,
    )


@pytest.mark.parametrize("name", ["plant_richness_lr", "plant_richness_mlr"])
def test_statistics_equal_closed_form(name):
    t = load_dataset(name)
    m = LinearRegressionSGD(progress=False).fit(t.X, t.y)
    st = regression_statistics(t.X, t.y, m.coef_, m.intercept_, features=t.features)
    ref = closed_form(t.X, t.y, np.r_[m.intercept_, m.coef_])
    rel = dict(rtol=1e-6, atol=0)
    np.testing.assert_allclose(st.std_errors, ref["se"], **rel)
    np.testing.assert_allclose(st.t_values, ref["t"], **rel)
    np.testing.assert_allclose(st.p_values, ref["p"], rtol=1e-6, atol=1e-15)
    np.testing.assert_allclose(st.conf_int[:, 0], ref["lo"], **rel)
    np.testing.assert_allclose(st.conf_int[:, 1], ref["hi"], **rel)
    np.testing.assert_allclose(st.covariance, ref["cov"], **rel)
    assert st.r2 == pytest.approx(ref["r2"], rel=1e-6)
    assert st.adj_r2 == pytest.approx(ref["adj"], rel=1e-6)
    assert st.f_statistic == pytest.approx(ref["f"], rel=1e-6)
    assert st.f_pvalue == pytest.approx(ref["fp"], rel=1e-6, abs=1e-15)
    assert st.residual_variance == pytest.approx(ref["s2"], rel=1e-6)
    assert st.names == ["intercept", *t.features]
    assert st.df_resid == len(t.y) - len(t.features) - 1
    assert st.t_quantiles["0.95"] == pytest.approx(sps.t.isf(0.025, st.df_resid), rel=1e-12)


def test_statistics_match_statsmodels_at_the_least_squares_optimum():
    sm = pytest.importorskip("statsmodels.api")
    t = load_dataset("plant_richness_mlr")
    ols = sm.OLS(t.y, sm.add_constant(t.X)).fit()
    st = regression_statistics(t.X, t.y, ols.params[1:], ols.params[0])
    np.testing.assert_allclose(st.std_errors, ols.bse, rtol=1e-9)
    np.testing.assert_allclose(st.p_values, ols.pvalues, rtol=1e-9)
    np.testing.assert_allclose(st.conf_int, ols.conf_int(), rtol=1e-9)
    assert st.f_statistic == pytest.approx(ols.fvalue, rel=1e-9)
    assert st.r2 == pytest.approx(0.9154639, abs=1e-7)
    assert st.least_squares["max_abs_param_diff"] < 1e-12


def test_sgd_distance_from_optimum_is_reported():
    t = load_dataset("plant_richness_lr")
    m = LinearRegressionSGD.from_preset("tutorial", progress=False).fit(t.X, t.y)
    st = regression_statistics(t.X, t.y, m.coef_, m.intercept_)
    ls = st.least_squares
    assert ls["params"] == pytest.approx([1.3360483, 0.3557394], abs=1e-7)
    expected = np.abs(np.r_[m.intercept_, m.coef_] - ls["params"]).max()
    assert ls["max_abs_param_diff"] == pytest.approx(expected)
    assert ls["mse_excess"] > 0


def test_regression_metrics_and_summary():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    p = np.array([1.5, 2.0, 2.0, 4.0])
    h = regression_metrics(y, p)
    assert h == pytest.approx(
        {
            "n_samples": 4,
            "mse": 1.25 / 4,
            "rmse": np.sqrt(1.25 / 4),
            "mae": 1.5 / 4,
            "r2": 1 - 1.25 / 5,
        }
    )
    t = load_dataset("plant_richness_lr")
    m = LinearRegressionSGD(progress=False).fit(t.X, t.y)
    text = summary_table(
        regression_statistics(t.X, t.y, m.coef_, m.intercept_, features=["area"]), target="ntv_rich"
    )
    assert "R-squared:" in text and "0.827786" in text and "area" in text and "P>|t|" in text


def test_summary_columns_stay_apart_for_any_magnitude():
    """Longley's intercept is -3.5e6: every coefficient row still splits into 7 cells."""
    from training.data.nist import load_nist

    p = load_nist("Longley")
    m = LinearRegressionSGD(progress=False).fit(p.X, p.y)
    with pytest.warns(UserWarning):
        st = regression_statistics(p.X, p.y, m.coef_, m.intercept_)
    rows = summary_table(st, target="y").splitlines()
    start = next(i for i, line in enumerate(rows) if line.startswith("---")) + 1
    for line in rows[start : start + len(st.names)]:
        cells = line.split()
        assert len(cells) == 7, line
        assert float(cells[1]) == pytest.approx(st.params[st.names.index(cells[0])], rel=1e-4)
