"""One training run: split, fit, statistics and metrics, ready to export or print."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from training.data import DataError, Table
from training.fit import LinearRegressionSGD
from training.folding import fold
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
        estimator: Any,
        X: Any,
        y: Any,
        *,
        features: list[str] | None = None,
        target: str | None = None,
        preset: str = "custom",
        source: str = "in-memory",
        sample_weight: Any = None,
    ) -> TrainingRun:
        """Wrap a model fitted on ``X``, ``y`` (for example to export it).

        estimator : a fitted :class:`LinearRegressionSGD`, or a fitted scikit-learn
        ``Pipeline`` of affine scalers followed by one, folded into one linear model
        on raw features (:mod:`training.folding`); ``run.estimator`` is then that
        folded copy and ``run.data["pipeline"]`` lists the folded steps.
        X : array-like of shape (n_samples, n_features), raw features (a DataFrame's
        columns name the features); y : array-like of shape (n_samples,) (a Series'
        name names the target). ``features`` default to the names the model was
        fitted with, else ``x0, x1, ...``; ``target`` to ``"y"``. ``sample_weight``
        (n_samples,): the weights of a weighted fit, for WLS statistics. Raises
        :class:`~training.folding.UnsupportedModelError` for any other model.
        """
        columns = [str(c) for c in X.columns] if hasattr(X, "columns") else None
        if target is None:
            name = getattr(y, "name", None)
            target = str(name) if name is not None else "y"
        X = np.array(X, dtype=np.float64)  # a copy: a DataFrame's values may be read-only
        y = np.array(y, dtype=np.float64)
        folded = fold(estimator, X)
        est = folded.estimator
        if features is None:
            features = folded.feature_names or columns or [f"x{i}" for i in range(X.shape[1])]
        if len(features) != est.n_features_in_:
            raise DataError(
                f"{len(features)} feature names for a model of {est.n_features_in_} features"
            )
        weight = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        st = regression_statistics(
            X,
            y,
            est.coef_,
            est.intercept_,
            features=list(features),
            fit_intercept=est.fit_intercept,
            sample_weight=weight,
        )
        metrics = {"train": regression_metrics(y, est.predict(X)), "heldout": None}
        data: dict[str, Any] = {
            "source": source,
            "n_train": int(len(y)),
            "n_heldout": 0,
            "test_size": 0.0,
        }
        if folded.steps:
            data["pipeline"] = [*folded.steps, "LinearRegressionSGD"]
        if weight is not None:
            data["weighted"] = True
        return cls(est, list(features), target, X, y, st, metrics, preset, data)


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
