"""One training run: split, fit, statistics and metrics, ready to export or print."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from training.data.tables import Table
from training.errors import DataError
from training.stats import RegressionStatistics, regression_metrics, regression_statistics

if TYPE_CHECKING:
    from training.solver.estimator import LinearRegressionSGD

__all__ = ["FitReport", "TrainingRun", "train"]


@dataclass(frozen=True)
class FitReport:
    """How SGD went: the lines ``linreg train``'s summary prints about it."""

    lr: float | None  # the ``lr`` parameter; None when the fit chose it
    lr_used: float
    epochs: int
    refinement_steps: int
    converged: bool
    tol: float
    seconds: float

    @classmethod
    def of(cls, est: LinearRegressionSGD) -> FitReport:
        """The report of a fitted :class:`~training.solver.estimator.LinearRegressionSGD`."""
        return cls(
            lr=est.lr,
            lr_used=float(est.lr_),
            epochs=int(est.n_epochs_),
            refinement_steps=int(getattr(est, "refinement_steps_", 0)),
            converged=bool(est.converged_),
            tol=float(est.tol),
            seconds=float(est.fit_seconds_),
        )


@dataclass
class TrainingRun:
    """A fitted estimator with the data it saw and what was measured on it.

    X_train : (n_train, n_features) float64; y_train : (n_train,) float64.

    ``_estimator`` is the fitted estimator, or a ``functools.partial`` that builds it
    on the first use of :attr:`estimator`: a chunked fit from the command line
    summarizes itself from :attr:`report` without importing scikit-learn (about 1 s
    of a million-row job), and builds the estimator only to export it.
    """

    _estimator: LinearRegressionSGD | functools.partial[LinearRegressionSGD]
    features: list[str]
    target: str
    X_train: np.ndarray
    y_train: np.ndarray
    statistics: RegressionStatistics
    metrics: dict[str, Any]
    preset: str = "custom"
    data: dict[str, Any] = field(default_factory=dict)
    report: FitReport = field(default=None)  # type: ignore[assignment]  # set below

    def __post_init__(self) -> None:
        if self.report is None:
            self.report = FitReport.of(self.estimator)

    @property
    def estimator(self) -> LinearRegressionSGD:
        """The fitted :class:`~training.solver.estimator.LinearRegressionSGD`."""
        if isinstance(self._estimator, functools.partial):
            self._estimator = self._estimator()
        return self._estimator

    @estimator.setter
    def estimator(self, value: LinearRegressionSGD) -> None:
        self._estimator = value

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
        on raw features (:mod:`training.solver.folding`); ``run.estimator`` is then that
        folded copy and ``run.data["pipeline"]`` lists the folded steps.
        X : array-like of shape (n_samples, n_features), raw features (a DataFrame's
        columns name the features); y : array-like of shape (n_samples,) (a Series'
        name names the target). ``features`` default to the names the model was
        fitted with, else ``x0, x1, ...``; ``target`` to ``"y"``. ``sample_weight``
        (n_samples,): the weights of a weighted fit, for WLS statistics. Raises
        :class:`~training.solver.folding.UnsupportedModelError` for any other model.
        """
        columns = [str(c) for c in X.columns] if hasattr(X, "columns") else None
        if target is None:
            name = getattr(y, "name", None)
            target = str(name) if name is not None else "y"
        from training.solver.folding import fold

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
    from training.solver.estimator import LinearRegressionSGD

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
