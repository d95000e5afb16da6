"""Statistics of a fitted linear model, with the definitions of statsmodels' OLS summary.

For ``X`` of shape (n, k) the design is ``Z = [1, X]`` (intercept first, like
statsmodels' ``const``; ``Z = X`` without an intercept), with ``p`` parameters
and ``df = n - p`` residual degrees of freedom. At the fitted parameters ``θ``:

- residual variance ``s² = RSS / df``; residual standard error ``s``
- covariance ``s² (ZᵀZ)⁻¹``; standard errors its diagonal's square roots
- ``t = θ / se``; two-sided ``p = 2 P(T_df > |t|)``; CI ``θ ± t_{df, (1+level)/2} se``
- ``R² = 1 - RSS / TSS``; adjusted ``1 - (1 - R²)(n - c) / df``; with an intercept
  ``TSS`` is centered and ``c = 1``, without one it is ``Σ y²`` and ``c = 0`` (the
  uncentered R² of statsmodels and NIST)
- ``F = ((TSS - RSS) / k) / s²`` with p-value ``P(F_{k, df} > F)``
- collinearity (:mod:`training.stats.collinearity`): the condition number of the
  design with unit-length columns (Belsley–Kuh–Welsch) and each feature's variance
  inflation factor, with :class:`CollinearityWarning` above 30 and 10, naming the
  columns; and, as information, statsmodels' ``condition_number`` ``κ₂(Z)`` of the
  unscaled design (which measures the columns' units as much as their collinearity)

With ``sample_weight`` ``w`` these are the definitions of statsmodels' WLS: ``RSS =
Σ wᵢ eᵢ²``, covariance ``s² (ZᵀWZ)⁻¹``, ``TSS = Σ wᵢ (yᵢ - ȳ_w)²`` around the
weighted mean (``Σ wᵢ yᵢ²`` without an intercept), the diagnostics of ``√W Z``; ``mse`` is the
weighted mean ``RSS / Σ wᵢ``.

Everything numerical goes through :class:`training.solver.lstsq.LeastSquares`: residuals
in extended precision, ``(ZᵀZ)⁻¹`` from the triangular factor with refinement,
never by inverting ``ZᵀZ``. The statistics are evaluated at the SGD parameters;
``least_squares`` carries the refined least-squares optimum and how far SGD
ended from it.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy import special

from training.errors import CollinearityWarning, DataError
from training.solver.lstsq import LeastSquares
from training.stats.collinearity import collinearity

__all__ = [
    "INTERVAL_LEVELS",
    "RegressionStatistics",
    "least_squares",
    "regression_metrics",
    "regression_statistics",
    "statistics_from_parts",
]

#: Levels whose Student-t quantiles the manifest carries for torch-free intervals.
INTERVAL_LEVELS = (0.90, 0.95, 0.99)


@dataclass
class RegressionStatistics:
    """Everything :func:`regression_statistics` computes; arrays are float64, ordered
    ``names`` (``["intercept", *features]``, or ``features`` without an intercept).

    ``condition_number`` is statsmodels' (the unscaled design's),
    ``scaled_condition_number`` Belsley–Kuh–Welsch's (unit-length columns), ``vif``
    (n_features,) the features' variance inflation factors, and ``collinearity_notes``
    the warnings they gave (:mod:`training.stats.collinearity`). Statistics read back
    from an older manifest lack the last three (NaN and empty).
    """

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
    fit_intercept: bool = True
    condition_number: float = float("nan")
    scaled_condition_number: float = float("nan")
    vif: np.ndarray = field(default_factory=lambda: np.empty(0))
    collinearity_notes: list[str] = field(default_factory=list)

    @property
    def feature_names(self) -> list[str]:
        """The features' names (``names`` without the intercept)."""
        return self.names[1:] if self.fit_intercept else list(self.names)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (lists instead of arrays).

        ``covariance`` is always intercept-first, (k + 1) × (k + 1), as the manifest's
        interval code reads it: without an intercept its first row and column are 0
        (the intercept is fixed, not estimated).
        """
        out = asdict(self)
        if not self.fit_intercept:
            p = self.covariance.shape[0]
            padded = np.zeros((p + 1, p + 1))
            padded[1:, 1:] = self.covariance
            out["covariance"] = padded
        for key, value in out.items():
            if isinstance(value, np.ndarray):
                out[key] = value.tolist()
        return out


def least_squares(
    X: np.ndarray,
    y: np.ndarray,
    *,
    fit_intercept: bool = True,
    sample_weight: np.ndarray | None = None,
) -> np.ndarray:
    """The (weighted) least-squares optimum ``[intercept, *coef]`` (``coef`` without an
    intercept), float64: QR with iterative refinement (:mod:`training.solver.lstsq`)."""
    return LeastSquares(
        np.asarray(X, float), fit_intercept=fit_intercept, sample_weight=sample_weight
    ).solve(np.asarray(y, float))


def regression_statistics(
    X: np.ndarray,
    y: np.ndarray,
    coef: np.ndarray,
    intercept: float,
    *,
    features: list[str] | None = None,
    level: float = 0.95,
    fit_intercept: bool = True,
    sample_weight: np.ndarray | None = None,
    centered: bool | None = None,
) -> RegressionStatistics:
    """Compute the OLS summary statistics (WLS with ``sample_weight``) at the given
    parameters.

    ``centered`` (default: ``fit_intercept``): whether R², its adjustment and the F test
    are taken about the mean. A model without an intercept column whose columns span
    the constant (a factor coded with every level) has an implicit intercept, and
    statsmodels centers those too.

    X : ndarray of shape (n_samples, n_features); y : ndarray of shape (n_samples,);
    coef : ndarray of shape (n_features,); ``intercept`` is ignored without
    ``fit_intercept``; sample_weight : ndarray of shape (n_samples,), non-negative,
    or None. Raises :class:`~training.data.DataError` when the features
    are exactly collinear (naming them); warns :class:`CollinearityWarning` when
    the scaled condition number exceeds 30 or a variance inflation factor 10
    (:mod:`training.stats.collinearity`).
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n, k = X.shape
    p = k + 1 if fit_intercept else k
    df = n - p
    if df < 1:
        raise DataError(f"{n} rows leave no residual degrees of freedom for {p} parameters")
    names = list(features) if features is not None else [f"x{i}" for i in range(k)]
    w = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    ls = LeastSquares(X, fit_intercept=fit_intercept, feature_names=names, sample_weight=w)
    coef = np.asarray(coef, dtype=np.float64)
    params = np.concatenate([[float(intercept)], coef]) if fit_intercept else coef
    resid = ls.residuals(y, params)  # √w (y - Z θ) with weights
    rss = float(resid @ resid)
    centered = fit_intercept if centered is None else centered
    tss, n_eff = _total_sum_of_squares(y, w, centered)
    optimum = ls.solve(y)
    return statistics_from_parts(
        names=(["intercept"] if fit_intercept else []) + names,
        params=params,
        rss=rss,
        tss=tss,
        n_samples=n,
        n_eff=n_eff,
        inverse_gram=ls.inverse_gram(),
        r_hat=ls.R_hat,
        column_scale=ls.scale,
        optimum=optimum,
        optimum_rss=float(np.sum(ls.residuals(y, optimum) ** 2)),
        fit_intercept=fit_intercept,
        level=level,
        centered=centered,
    )


def _total_sum_of_squares(
    y: np.ndarray, w: np.ndarray | None, centered: bool
) -> tuple[float, float]:
    """``(TSS, n_eff)``: about the (weighted) mean when ``centered``, else ``Σ w y²``;
    ``n_eff`` the sum of the weights (the rows without weights)."""
    if w is None:
        tss = float(((y - y.mean()) ** 2).sum()) if centered else float(y @ y)
        return tss, float(len(y))
    tss = float(w @ (y - np.average(y, weights=w)) ** 2) if centered else float(w @ y**2)
    return tss, float(w.sum())


def _optimum_summary(
    params: np.ndarray,
    optimum: np.ndarray,
    optimum_rss: float,
    rss: float,
    tss: float,
    n_eff: float,
) -> dict[str, Any]:
    """The least-squares optimum and how far the fitted parameters ended from it."""
    return {
        "params": optimum.tolist(),
        "r2": float(1.0 - optimum_rss / tss),
        "mse": optimum_rss / n_eff,
        "max_abs_param_diff": float(np.abs(params - optimum).max()),
        "max_rel_param_diff": float(
            np.max(np.abs(params - optimum) / np.maximum(np.abs(optimum), 1e-12))
        ),
        "mse_excess": float(rss / n_eff - optimum_rss / n_eff),
    }


def statistics_from_parts(
    *,
    names: list[str],
    params: np.ndarray,
    rss: float,
    tss: float,
    n_samples: int,
    n_eff: float,
    inverse_gram: np.ndarray,
    r_hat: np.ndarray,
    column_scale: np.ndarray,
    optimum: np.ndarray,
    optimum_rss: float,
    fit_intercept: bool,
    level: float = 0.95,
    centered: bool | None = None,
) -> RegressionStatistics:
    """The summary statistics from their building blocks (module docstring).

    params, optimum : (p,) intercept first; inverse_gram : (p, p) ``(ZᵀZ)⁻¹``; r_hat :
    (p, p) upper-triangular factor of the design with its columns divided by
    ``column_scale`` (p,), for the collinearity diagnostics; ``rss``
    at ``params`` and ``optimum_rss`` at the least-squares ``optimum``; ``tss`` centered
    with an intercept; ``n_eff`` the sum of the weights (``n_samples`` without).
    In-memory fits (:func:`regression_statistics`), chunked and Dask fits all end here.
    """
    n, p = n_samples, params.size
    centered = fit_intercept if centered is None else centered
    k = p - 1 if centered else p
    df = n - p
    s2 = rss / df
    cov = s2 * inverse_gram
    se = np.sqrt(np.diag(cov))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = params / se
    q = float(special.stdtrit(df, 0.5 + level / 2.0))
    r2 = 1.0 - rss / tss
    f = ((tss - rss) / k) / s2
    diagnostics = collinearity(r_hat, column_scale, fit_intercept=fit_intercept)
    notes = diagnostics.notes(names, fit_intercept=fit_intercept)
    for note in notes:
        warnings.warn(CollinearityWarning(note), stacklevel=3)
    return RegressionStatistics(
        names=names,
        params=params,
        std_errors=se,
        t_values=t,
        p_values=2.0 * special.stdtr(df, -np.abs(t)),
        conf_int=np.column_stack([params - q * se, params + q * se]),
        level=level,
        n_samples=n,
        df_model=k,
        df_resid=df,
        rss=rss,
        tss=tss,
        mse=rss / n_eff,
        residual_variance=s2,
        residual_std_error=float(np.sqrt(s2)),
        r2=r2,
        adj_r2=1.0 - (1.0 - r2) * (n - (1 if centered else 0)) / df,
        f_statistic=float(f),
        f_pvalue=float(special.fdtrc(k, df, f)),
        covariance=cov,
        t_quantiles={
            f"{lv:.2f}": float(special.stdtrit(df, 0.5 + lv / 2.0)) for lv in INTERVAL_LEVELS
        },
        least_squares=_optimum_summary(params, optimum, optimum_rss, rss, tss, n_eff),
        fit_intercept=fit_intercept,
        condition_number=diagnostics.condition_number,
        scaled_condition_number=diagnostics.scaled_condition_number,
        vif=diagnostics.vif,
        collinearity_notes=notes,
    )


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """MSE, RMSE, MAE and R² of predictions ``y_pred`` against ``y_true`` (both (n,)),
    on the training rows or on held-out ones."""
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
