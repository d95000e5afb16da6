"""Statistics of a fitted linear model, as a statistician reports them.

:mod:`.regression` computes them with statsmodels' definitions (R², standard errors,
t and p values, confidence intervals, F, the condition number); :mod:`.summary`
prints them in the layout of statsmodels' summary.
"""

from __future__ import annotations

from training.errors import CollinearityWarning
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
    "CollinearityWarning",
    "RegressionStatistics",
    "least_squares",
    "regression_metrics",
    "regression_statistics",
    "statistics_from_parts",
    "summary_table",
]
