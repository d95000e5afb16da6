"""Statistics of a fitted linear model, with the definitions of statsmodels' OLS summary.

For ``X`` of shape (n, k) the design is ``Z = [1, X]`` (intercept first, like
statsmodels' ``const``), with ``p = k + 1`` parameters and ``df = n - p``
residual degrees of freedom. At the fitted parameters ``θ``:

- residual variance ``s² = RSS / df``; residual standard error ``s``
- covariance ``s² (ZᵀZ)⁻¹``; standard errors its diagonal's square roots
- ``t = θ / se``; two-sided ``p = 2 P(T_df > |t|)``; CI ``θ ± t_{df, (1+level)/2} se``
- ``R² = 1 - RSS / TSS``; adjusted ``1 - (1 - R²)(n - 1) / df``
- ``F = ((TSS - RSS) / k) / s²`` with p-value ``P(F_{k, df} > F)``

The statistics are evaluated at the SGD parameters; ``least_squares`` carries the
closed-form optimum and how far SGD ended from it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy import stats as sps

from training.data import DataError

__all__ = [
    "INTERVAL_LEVELS",
    "RegressionStatistics",
    "heldout_metrics",
    "least_squares",
    "regression_statistics",
    "summary_table",
]

#: Levels whose Student-t quantiles the manifest carries for torch-free intervals.
INTERVAL_LEVELS = (0.90, 0.95, 0.99)


@dataclass
class RegressionStatistics:
    """Everything :func:`regression_statistics` computes; arrays are float64, ordered
    ``names`` = ``["intercept", *features]``."""

    names: list[str]
    params: np.ndarray
    std_errors: np.ndarray
    t_values: np.ndarray
    p_values: np.ndarray
    conf_int: np.ndarray  # (p, 2)
    level: float
    n_samples: int
    df_model: int
    df_resid: int
    rss: float
    tss: float
    mse: float
    residual_variance: float
    residual_std_error: float
    r2: float
    adj_r2: float
    f_statistic: float
    f_pvalue: float
    covariance: np.ndarray  # (p, p)
    t_quantiles: dict[str, float]
    least_squares: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (lists instead of arrays)."""
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, np.ndarray):
                out[key] = value.tolist()
        return out


def _design(X: np.ndarray) -> np.ndarray:
    return np.column_stack([np.ones(X.shape[0]), X])


def least_squares(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Closed-form optimum ``[intercept, *coef]`` by ``numpy.linalg.lstsq``, float64."""
    return np.linalg.lstsq(_design(np.asarray(X, float)), np.asarray(y, float), rcond=None)[0]


def regression_statistics(
    X: np.ndarray,
    y: np.ndarray,
    coef: np.ndarray,
    intercept: float,
    *,
    features: list[str] | None = None,
    level: float = 0.95,
) -> RegressionStatistics:
    """Compute the OLS summary statistics at the given parameters.

    X : ndarray of shape (n_samples, n_features); y : ndarray of shape (n_samples,);
    coef : ndarray of shape (n_features,). Raises :class:`~training.data.DataError`
    when the features are collinear (``ZᵀZ`` singular).
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n, k = X.shape
    p = k + 1
    df = n - p
    if df < 1:
        raise DataError(f"{n} rows leave no residual degrees of freedom for {p} parameters")
    Z = _design(X)
    if np.linalg.matrix_rank(Z) < p:
        raise DataError(
            "the features are collinear (with each other or with the intercept): "
            "standard errors are undefined"
        )
    params = np.concatenate([[float(intercept)], np.asarray(coef, dtype=np.float64)])
    resid = y - Z @ params
    rss = float(resid @ resid)
    tss = float(((y - y.mean()) ** 2).sum())
    s2 = rss / df
    cov = s2 * np.linalg.inv(Z.T @ Z)
    se = np.sqrt(np.diag(cov))
    t = params / se
    pvals = 2.0 * sps.t.sf(np.abs(t), df)
    q = float(sps.t.ppf(0.5 + level / 2.0, df))
    ci = np.column_stack([params - q * se, params + q * se])
    r2 = 1.0 - rss / tss
    adj = 1.0 - (1.0 - r2) * (n - 1) / df
    f = ((tss - rss) / k) / s2
    ls = least_squares(X, y)
    ls_resid = y - Z @ ls
    return RegressionStatistics(
        names=["intercept", *(features or [f"x{i}" for i in range(k)])],
        params=params,
        std_errors=se,
        t_values=t,
        p_values=pvals,
        conf_int=ci,
        level=level,
        n_samples=n,
        df_model=k,
        df_resid=df,
        rss=rss,
        tss=tss,
        mse=rss / n,
        residual_variance=s2,
        residual_std_error=float(np.sqrt(s2)),
        r2=r2,
        adj_r2=adj,
        f_statistic=float(f),
        f_pvalue=float(sps.f.sf(f, k, df)),
        covariance=cov,
        t_quantiles={f"{lv:.2f}": float(sps.t.ppf(0.5 + lv / 2.0, df)) for lv in INTERVAL_LEVELS},
        least_squares={
            "params": ls.tolist(),
            "r2": float(1.0 - (ls_resid @ ls_resid) / tss),
            "mse": float(ls_resid @ ls_resid / n),
            "max_abs_param_diff": float(np.abs(params - ls).max()),
            "max_rel_param_diff": float(
                np.max(np.abs(params - ls) / np.maximum(np.abs(ls), 1e-12))
            ),
            "mse_excess": float(rss / n - ls_resid @ ls_resid / n),
        },
    )


def heldout_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """MSE, RMSE, MAE and R² of predictions on rows the model did not see."""
    y_true = np.asarray(y_true, dtype=np.float64)
    err = y_true - np.asarray(y_pred, dtype=np.float64)
    mse = float(err @ err / err.size)
    tss = float(((y_true - y_true.mean()) ** 2).sum())
    return {
        "n_samples": int(err.size),
        "mse": mse,
        "rmse": float(np.sqrt(mse)),
        "mae": float(np.abs(err).mean()),
        "r2": float(1.0 - (err @ err) / tss) if tss > 0 else float("nan"),
    }


def summary_table(
    st: RegressionStatistics,
    *,
    target: str,
    title: str = "Linear regression (torch.nn.Linear + SGD)",
    extra: dict[str, str] | None = None,
) -> str:
    """A text table in the layout of statsmodels' ``OLSResults.summary()``."""
    width = 78
    lines = [title.center(width), "=" * width]
    left = [
        ("Dep. Variable:", target),
        ("No. Observations:", str(st.n_samples)),
        ("Df Residuals:", str(st.df_resid)),
        ("Df Model:", str(st.df_model)),
        ("Resid. Std. Err.:", f"{st.residual_std_error:.6g}"),
    ]
    right = [
        ("R-squared:", f"{st.r2:.6f}"),
        ("Adj. R-squared:", f"{st.adj_r2:.6f}"),
        ("F-statistic:", f"{st.f_statistic:.4g}"),
        ("Prob (F-statistic):", f"{st.f_pvalue:.3g}"),
        ("MSE:", f"{st.mse:.6g}"),
    ]
    for (a, b), (c, d) in zip(left, right, strict=True):
        lines.append(f"{a:<20}{b:>18}   {c:<22}{d:>15}")
    lo, hi = (1 - st.level) / 2, 1 - (1 - st.level) / 2
    lines.append("=" * width)
    head = f"{'':<16}{'coef':>11}{'std err':>11}{'t':>9}{'P>|t|':>9}{lo:>10.3f}{hi:>10.3f}"
    lines += [head, "-" * width]
    for i, name in enumerate(st.names):
        lines.append(
            f"{name[:16]:<16}{st.params[i]:>11.6f}{st.std_errors[i]:>11.6f}{st.t_values[i]:>9.3f}"
            f"{st.p_values[i]:>9.3f}{st.conf_int[i, 0]:>10.4f}{st.conf_int[i, 1]:>10.4f}"
        )
    lines.append("=" * width)
    ls = st.least_squares
    lines.append(
        f"Least-squares optimum: R² {ls['r2']:.7f}, MSE {ls['mse']:.7g}; SGD is "
        f"{ls['max_abs_param_diff']:.2e} from it (largest parameter difference)."
    )
    for key, value in (extra or {}).items():
        lines.append(f"{key}: {value}")
    return "\n".join(lines)
