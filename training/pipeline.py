"""One training run: split, fit, statistics and metrics, ready to export or print."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from training.data import DataError, Table
from training.fit import LinearRegressionSGD
from training.stats import RegressionStatistics, regression_metrics, regression_statistics

__all__ = ["TrainingRun", "train"]


@dataclass
class TrainingRun:
    """A fitted estimator with the data it saw and what was measured on it.

    X_train : (n_train, n_features) float64; y_train : (n_train,) float64.
    """

    estimator: LinearRegressionSGD
    features: list[str]
    target: str
    X_train: np.ndarray
    y_train: np.ndarray
    statistics: RegressionStatistics
    metrics: dict[str, Any]
    preset: str = "custom"
    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_estimator(
        cls,
        estimator: LinearRegressionSGD,
        X: np.ndarray,
        y: np.ndarray,
        *,
        features: list[str],
        target: str,
        preset: str = "custom",
        source: str = "in-memory",
    ) -> TrainingRun:
        """Wrap an estimator fitted on ``X``, ``y`` (for example to export it)."""
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        if len(features) != estimator.n_features_in_:
            raise DataError(
                f"{len(features)} feature names for a model of {estimator.n_features_in_} features"
            )
        st = regression_statistics(
            X,
            y,
            estimator.coef_,
            estimator.intercept_,
            features=list(features),
            fit_intercept=estimator.fit_intercept,
        )
        metrics = {"train": regression_metrics(y, estimator.predict(X)), "heldout": None}
        data = {"source": source, "n_train": int(len(y)), "n_heldout": 0, "test_size": 0.0}
        return cls(estimator, list(features), target, X, y, st, metrics, preset, data)


def train(
    table: Table,
    *,
    preset: str = "default",
    test_size: float = 0.0,
    **overrides: Any,
) -> TrainingRun:
    """Fit a preset (with overrides) on ``table``; hold out ``test_size`` of the rows.

    The split is a seeded permutation (the estimator's ``seed``). Statistics use the
    training rows; ``metrics["heldout"]`` the held-out ones.
    """
    if not 0.0 <= test_size < 1.0:
        raise ValueError(f"test_size must be in [0, 1), got {test_size}")
    estimator = LinearRegressionSGD.from_preset(preset, **overrides)
    n = table.n_samples
    n_test = int(round(n * test_size))
    order = np.random.default_rng(estimator.seed).permutation(n) if n_test else np.arange(n)
    test, fit_rows = np.sort(order[:n_test]), np.sort(order[n_test:])
    X, y = table.X[fit_rows], table.y[fit_rows]
    estimator.fit(X, y)
    run = TrainingRun.from_estimator(
        estimator,
        X,
        y,
        features=table.features,
        target=table.target,
        preset=preset,
        source=table.source,
    )
    if n_test:
        run.metrics["heldout"] = regression_metrics(table.y[test], estimator.predict(table.X[test]))
    run.data.update(n_heldout=int(n_test), test_size=float(test_size), n_rows=int(n))
    return run
