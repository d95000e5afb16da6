"""NIST StRD linear regression: the default fit beside statsmodels, numpy and scikit-learn.

Run: ``.venv/bin/python benchmarks/bench_nist.py [--repeats 5]``. Prints a
Markdown table: for each of the 11 problems, the worst log relative error (LRE,
correct significant digits, capped at 15) of the parameters, and of everything
NIST certifies (parameters, their standard deviations, the residual standard
deviation and R²), the epochs and the median wall time of the default fit
(``LinearRegressionSGD``, float64, warm process), and the worst parameter LRE of
statsmodels OLS, ``numpy.linalg.lstsq`` and scikit-learn's ``LinearRegression``
on the same columns in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np

from training.data.nist import NIST_NAMES, NistProblem, load_nist, lre, nist_lre
from training.solver.estimator import LinearRegressionSGD
from training.stats import regression_statistics


def ours(X: np.ndarray, y: np.ndarray, fit_intercept: bool) -> tuple:
    m = LinearRegressionSGD(fit_intercept=fit_intercept, progress=False).fit(X, y)
    st = regression_statistics(X, y, m.coef_, m.intercept_, fit_intercept=fit_intercept)
    return st.params, st.std_errors, st.residual_std_error, st.r2


def statsmodels_ols(X: np.ndarray, y: np.ndarray, fit_intercept: bool) -> tuple:
    import statsmodels.api as sm

    r = sm.OLS(y, sm.add_constant(X, has_constant="add") if fit_intercept else X).fit()
    return r.params, r.bse, float(np.sqrt(r.scale)), float(r.rsquared)


def numpy_params(p: NistProblem) -> np.ndarray:
    Z = np.column_stack([np.ones(len(p.y)), p.X]) if p.fit_intercept else p.X
    return np.linalg.lstsq(Z, p.y, rcond=None)[0]


def sklearn_params(p: NistProblem) -> np.ndarray | None:
    try:
        from sklearn.linear_model import LinearRegression
    except ImportError:
        return None
    r = LinearRegression(fit_intercept=p.fit_intercept).fit(p.X, p.y)
    return np.r_[r.intercept_, r.coef_] if p.fit_intercept else r.coef_


def _digits(value: float) -> str:
    return f"{value:.1f}".replace("-0.0", "0.0")


def row(name: str, repeats: int) -> str:
    p = load_nist(name)
    got = nist_lre(p, ours)
    times, est = [], None
    for _ in range(repeats):
        est = LinearRegressionSGD(fit_intercept=p.fit_intercept, progress=False)
        started = time.perf_counter()
        est.fit(p.X, p.y)
        times.append(time.perf_counter() - started)
    assert est is not None
    sm = nist_lre(p, statsmodels_ols)
    cert = p.certified["params"]
    npy = lre(numpy_params(p), cert).min()
    skl = sklearn_params(p)
    skl_text = "–" if skl is None else _digits(lre(skl, cert).min())
    return (
        f"| {name} | {_digits(got['params'])} | {_digits(min(got.values()))} | {est.n_epochs_} "
        f"({est.refinement_steps_}) | {statistics.median(times) * 1e3:.1f} ms "
        f"| {_digits(sm['params'])} | {_digits(min(sm.values()))} | {_digits(npy)} | {skl_text} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # the condition-number notes are expected here
    LinearRegressionSGD(progress=False).fit(np.arange(8.0).reshape(-1, 1), np.arange(8.0) ** 2)
    print(
        "| data set | ours: params | ours: all certified | epochs (refinement) | fit time "
        "| statsmodels: params | statsmodels: all | numpy lstsq: params "
        "| scikit-learn: params |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in NIST_NAMES:
        print(row(name, args.repeats))


if __name__ == "__main__":
    main()
