"""Confidence and prediction intervals from the manifest's statistics, without torch.

For a row ``x`` with design ``z = [1, x]``, parameter covariance ``C``, residual
variance ``s²`` and ``df`` residual degrees of freedom (statsmodels'
``get_prediction(...).summary_frame()``):

- confidence interval of the mean: ``ŷ ± t_q · sqrt(z C zᵀ)``
- prediction interval of a new observation: ``ŷ ± t_q · sqrt(s² + z C zᵀ)``

with ``t_q`` the two-sided Student-t quantile for ``level``. The manifest carries
``t_q`` for 0.90, 0.95 and 0.99; any other level needs scipy.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

__all__ = ["KINDS", "IntervalPrediction", "compute_intervals", "t_quantile"]

#: the kinds of interval, as ``Predictor.predict(interval=...)`` and ``--interval`` take them
KINDS = ("confidence", "prediction")


class IntervalPrediction(NamedTuple):
    """Predictions with bounds; each an ndarray of shape (n_samples,), float64."""

    prediction: np.ndarray
    lower: np.ndarray
    upper: np.ndarray


def t_quantile(level: float, df: int, table: dict[str, float]) -> float:
    """Two-sided Student-t quantile: from ``table`` (keys like "0.95") or scipy."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be between 0 and 1, got {level}")
    key = f"{level:.2f}"
    if key in table and abs(float(key) - level) < 1e-12:
        return float(table[key])
    try:
        from scipy import stats
    except ImportError as exc:
        raise ImportError(
            f"level={level} needs scipy (pip install scipy); without it the levels "
            f"available are {sorted(table)}"
        ) from exc
    return float(stats.t.ppf(0.5 + level / 2.0, df))


def compute_intervals(
    X: np.ndarray,
    prediction: np.ndarray,
    stats: dict[str, Any],
    *,
    kind: str,
    level: float,
) -> IntervalPrediction:
    """Bounds around ``prediction`` (n,) for rows ``X`` (n, k).

    ``stats`` holds ``covariance`` (p × p, intercept first), ``residual_variance``,
    ``df_resid`` and ``t_quantiles``.
    """
    if kind not in KINDS:
        raise ValueError(f"interval must be one of {KINDS} or None, got {kind!r}")
    cov = np.asarray(stats["covariance"], dtype=np.float64)
    q = t_quantile(level, int(stats["df_resid"]), stats["t_quantiles"])
    Xd = np.asarray(X, dtype=np.float64)
    # z C zᵀ for z = [1, x], without building the (n, p) design matrix
    var = cov[0, 0] + 2.0 * (Xd @ cov[1:, 0]) + np.einsum("ij,jk,ik->i", Xd, cov[1:, 1:], Xd)
    if kind == "prediction":
        var = var + float(stats["residual_variance"])
    half = q * np.sqrt(np.maximum(var, 0.0))
    center = np.asarray(prediction, dtype=np.float64)
    return IntervalPrediction(center, center - half, center + half)
