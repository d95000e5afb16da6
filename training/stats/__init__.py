"""Statistics of a fitted linear model, as a statistician reports them.

:mod:`.regression` computes them with statsmodels' definitions (R², standard errors,
t and p values, confidence intervals, F); :mod:`.collinearity` the collinearity
diagnostics (Belsley-Kuh-Welsch's scaled condition number, variance inflation
factors); :mod:`.summary` prints them in the layout of statsmodels' summary.
"""

from __future__ import annotations

from training.errors import CollinearityWarning
from training.stats.collinearity import Collinearity, collinearity
from training.stats.regression import (
    INTERVAL_LEVELS,
    RegressionStatistics,
    least_squares,
    regression_metrics,
    regression_statistics,
    statistics_from_parts,
)
from training.stats.summary import summary_table

__all__ = [
    "INTERVAL_LEVELS",
    "Collinearity",
    "CollinearityWarning",
    "RegressionStatistics",
    "collinearity",
    "least_squares",
    "regression_metrics",
    "regression_statistics",
    "statistics_from_parts",
    "summary_table",
]
