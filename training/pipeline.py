"""One training run: split, fit, statistics and metrics, ready to export or print.

:func:`train` takes a :class:`~training.data.Table` (from
:func:`~training.data.load_table` or :func:`~training.data.load_dataset`) or a pandas
DataFrame with ``target=`` (and ``features=``); :class:`TrainingRun` holds what came
out, and ``run.summary()`` (or ``print(run)``) is the table ``linreg train`` prints.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from inference.errors import UsageError
from training.data.tables import Table, validate_xy
from training.errors import DataError
from training.stats import RegressionStatistics, regression_metrics, regression_statistics

if TYPE_CHECKING:
    from training.solver.estimator import LinearRegressionSGD

__all__ = ["FitReport", "TrainingRun", "as_table", "train"]


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

    def summary(self) -> str:
        """The statsmodels-style table of the fit (:func:`training.stats.summary_table`),
        with how SGD went, the data it saw and the held-out metrics: what
        ``linreg train`` prints, and ``print(run)`` too."""
        from training.stats import summary_table

        return summary_table(self.statistics, target=self.target, extra=self._summary_lines())

    def _summary_lines(self) -> dict[str, str]:
        fit = self.report
        extra = {
            "Training": f"preset {self.preset}, lr {fit.lr_used:.6g}"
            f"{' (chosen)' if fit.lr is None else ''}, {fit.epochs} epoch(s), "
            f"{'converged' if fit.converged else 'NOT CONVERGED'} (tol {fit.tol:g}), "
            f"{fit.refinement_steps} of them refinement steps, {fit.seconds:.3f} s",
        }
        engine = self.data.get("engine")
        if engine:
            extra["Data"] = (
                f"{self.data['n_rows']:,} rows fitted {engine} ({len(self.data['passes'])} "
                f"passes); the export is verified on a sample of {self.data['sample_rows']:,} rows"
            )
        if not fit.converged:
            extra["Warning"] = (
                f"SGD did not converge in {fit.epochs} epochs: the parameters and the "
                "statistics above are not the least-squares fit"
            )
        held = self.metrics.get("heldout")
        if held:
            extra["Held-out"] = (
                f"{held['n_samples']} rows: MSE {held['mse']:.6g}, RMSE {held['rmse']:.6g}, "
                f"MAE {held['mae']:.6g}, R² {held['r2']:.6g}"
            )
        return extra

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        return (
            f"TrainingRun(target={self.target!r}, features={self.features}, "
            f"n_train={len(self.y_train)}, preset={self.preset!r}, "
            f"converged={self.report.converged})"
        )

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
    data: Any,
    *,
    target: str | None = None,
    features: Sequence[str] | None = None,
    preset: str = "default",
    test_size: float = 0.0,
    **overrides: Any,
) -> TrainingRun:
    """Fit a preset (with overrides) on ``data``; hold out ``test_size`` of the rows.

    Parameters
    ----------
    data : :class:`~training.data.Table` or pandas.DataFrame
        A table from :func:`~training.data.load_table` (a CSV, TSV or Parquet file)
        or :func:`~training.data.load_dataset`, or a DataFrame with numeric columns.
    target : str
        With a DataFrame: the column to predict (required).
    features : sequence of str, optional
        With a DataFrame: the feature columns (default: every column but the target).
    preset : "default" or "tutorial"
    test_size : float in [0, 1)
        Fraction of the rows held out; the split is a seeded permutation (the
        estimator's ``seed``). Statistics use the training rows,
        ``metrics["heldout"]`` the held-out ones.
    **overrides
        Parameters of :class:`~training.solver.estimator.LinearRegressionSGD`.

    Raises
    ------
    TypeError
        ``data`` is neither (it names :func:`~training.data.load_table`).
    UsageError
        ``target``/``features`` with a Table, no ``target`` with a DataFrame, or a
        ``test_size`` outside [0, 1).
    DataError
        A column that is missing or not numeric, a NaN, too few rows to fit (after
        the split), constant or exactly collinear features (named).
    """
    from training.solver.estimator import LinearRegressionSGD

    table = as_table(data, target=target, features=features)
    if not 0.0 <= test_size < 1.0:
        raise UsageError(f"test_size must be in [0, 1), got {test_size}")
    estimator = LinearRegressionSGD.from_preset(preset, **overrides)
    n = table.n_samples
    n_test = int(round(n * test_size))
    _check_split(table, n_test, test_size, estimator.fit_intercept)
    order = np.random.default_rng(estimator.seed).permutation(n) if n_test else np.arange(n)
    test, fit_rows = np.sort(order[:n_test]), np.sort(order[n_test:])
    X, y = table.X[fit_rows], table.y[fit_rows]
    _fit_naming_columns(estimator, X, y, table.features)
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


def _check_split(table: Table, n_test: int, test_size: float, fit_intercept: bool) -> None:
    """Refuse a split that leaves too few rows to fit (DataError, in words)."""
    k = len(table.features)
    needed = k + (2 if fit_intercept else 1)
    left = table.n_samples - n_test
    if n_test and left < needed:
        raise DataError(
            f"{table.source}: test_size={test_size:g} holds out {n_test} of "
            f"{table.n_samples} rows, leaving {left} to fit; a model with {k} feature(s) "
            f"needs at least {needed} (one residual degree of freedom)"
        )


def _fit_naming_columns(estimator: Any, X: np.ndarray, y: np.ndarray, names: list[str]) -> None:
    """``estimator.fit(X, y)``; a constant or exactly collinear column is reported by
    its name (the estimator, given a bare array, can only number it)."""
    try:
        estimator.fit(X, y)
    except DataError:
        from training.solver.lstsq import LeastSquares

        LeastSquares(X, fit_intercept=estimator.fit_intercept, feature_names=names)
        raise


def as_table(
    data: Any, *, target: str | None = None, features: Sequence[str] | None = None
) -> Table:
    """``data`` as a :class:`Table` (see :func:`train`)."""
    if isinstance(data, Table):
        if target is not None or features is not None:
            raise UsageError(
                "train: target= and features= are for a DataFrame; a Table already has "
                f"its target ({data.target!r}) and features"
            )
        return data
    if type(data).__module__.startswith("pandas") and hasattr(data, "columns"):
        return _frame_table(data, target, features)
    raise TypeError(
        f"train() takes a Table or a pandas DataFrame, got {type(data).__name__}: read a "
        "file with training.data.load_table(path, target=...), a bundled data set with "
        "training.data.load_dataset(name), or pass a DataFrame with target='column'"
    )


def _frame_table(frame: Any, target: str | None, features: Sequence[str] | None) -> Table:
    """The target and feature columns of a DataFrame, checked (DataError naming the
    column and the row)."""
    columns = [str(c) for c in frame.columns]
    if target is None:
        raise UsageError(f"train(DataFrame) needs target='column'; the columns are {columns}")
    if len(set(columns)) != len(columns):
        raise DataError(f"DataFrame: repeated column names in {columns}")
    wanted = [c for c in columns if c != target] if features is None else list(features)
    missing = [c for c in [*wanted, target] if c not in columns]
    if missing:
        raise DataError(f"DataFrame: missing column(s) {missing}; the columns are {columns}")
    if target in wanted:
        raise DataError(f"DataFrame: the target {target!r} is also listed as a feature")
    if not wanted:
        raise DataError(f"DataFrame: no feature columns (the columns are {columns})")
    frame = frame.set_axis(columns, axis=1)
    X = np.column_stack([_frame_column(frame, c) for c in wanted])
    y = _frame_column(frame, target)
    validate_xy(X, y, source="DataFrame")
    return Table(X=X, y=y, features=wanted, target=target, source="DataFrame")


def _frame_column(frame: Any, name: str) -> np.ndarray:
    import pandas as pd

    column = frame[name]
    if pd.api.types.is_bool_dtype(column) or not pd.api.types.is_numeric_dtype(column):
        values = pd.to_numeric(column, errors="coerce") if column.dtype == object else None
        if values is None or pd.api.types.is_bool_dtype(column):
            raise DataError(
                f"DataFrame: column {name!r} has type {column.dtype}, expected a number type"
            )
        bad = np.flatnonzero(values.isna().to_numpy() & column.notna().to_numpy())
        if bad.size:
            i = int(bad[0])
            raise DataError(
                f"DataFrame: column {name!r}, row {i} (index {column.index[i]!r}): "
                f"{column.iloc[i]!r} is not a number"
            )
        column = values
    out = column.to_numpy(dtype=np.float64, na_value=np.nan)
    bad = np.flatnonzero(~np.isfinite(out))
    if bad.size:
        i = int(bad[0])
        raise DataError(
            f"DataFrame: column {name!r}, row {i} (index {column.index[i]!r}): {out[i]} is "
            f"not a finite number ({bad.size} such value(s) in this column)"
        )
    return out
