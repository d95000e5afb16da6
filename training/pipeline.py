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
from training.data.frames import as_table, is_frame
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
    #: a fit on raw columns (text, gaps, a formula): how they became ``features`` (the
    #: design columns, of which ``X_train`` holds the values), the raw columns of the
    #: training rows (a DataFrame), and the per-term ANOVA
    design: Any = None
    raw_train: Any = None
    anova: Any = None
    #: a fit from a scikit-learn pipeline on raw columns: its own ``predict`` on a
    #: DataFrame of them, (n,) float64, which the export compares the ONNX model with
    reference: Any = None

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

        table = summary_table(self.statistics, target=self.target, extra=self._summary_lines())
        if self.anova:
            from training.stats.anova import anova_table

            table += "\n\nANOVA (Type II, one F test per term):\n" + anova_table(self.anova)
        return table

    def _summary_lines(self) -> dict[str, str]:
        fit = self.report
        extra = {
            "Training": f"preset {self.preset}, lr {fit.lr_used:.6g}"
            f"{' (chosen)' if fit.lr is None else ''}, {fit.epochs} epoch(s), "
            f"{'converged' if fit.converged else 'NOT CONVERGED'} (tol {fit.tol:g}), "
            f"{fit.refinement_steps} of them refinement steps, {fit.seconds:.3f} s",
        }
        if self.design is not None:
            d = self.design
            extra["Rows"] = (
                f"{self.data.get('n_rows', len(self.y_train)):,} used, {d.rows_dropped:,} "
                f"dropped for a missing value (missing={d.missing!r})"
                + (f"; formula {d.formula}" if d.formula else "")
            )
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
        centered: bool | None = None,
    ) -> TrainingRun:
        """Wrap a model fitted on ``X``, ``y`` (for example to export it).

        estimator : a fitted :class:`LinearRegressionSGD`, or a fitted scikit-learn
        ``Pipeline`` of affine scalers followed by one, folded into one linear model
        on raw features (:mod:`training.solver.folding`); ``run.estimator`` is then that
        folded copy and ``run.data["pipeline"]`` lists the folded steps. A ``Pipeline``
        that encodes raw columns (a ``ColumnTransformer`` of ``OneHotEncoder``,
        ``SimpleImputer`` and scalers, :mod:`training.solver.columns`) becomes a design
        model (``run.design``) whose features are the transformer's output columns;
        ``X`` is then the table it was fitted on (a DataFrame), and ``features=`` a
        :class:`UsageError`.
        X : array-like of shape (n_samples, n_features), raw features (a DataFrame's
        columns name the features); y : array-like of shape (n_samples,) (a Series'
        name names the target). ``features`` default to the names the model was
        fitted with, else ``x0, x1, ...``; ``target`` to ``"y"``. ``sample_weight``
        (n_samples,): the weights of a weighted fit, for WLS statistics. ``centered``:
        R² and F about the mean without an intercept column (a design whose columns span
        the constant; :func:`training.stats.regression_statistics`). Raises
        :class:`~training.solver.folding.UnsupportedModelError` for any other model.
        """
        if target is None:
            name = getattr(y, "name", None)
            target = str(name) if name is not None else "y"
        from training.solver.columns import is_column_pipeline
        from training.solver.folding import fold

        if is_column_pipeline(estimator):
            args = (features, target, preset, source, sample_weight)
            return _from_column_pipeline(estimator, X, y, *args)
        columns = [str(c) for c in X.columns] if hasattr(X, "columns") else None

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
            centered=centered,
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


def _from_column_pipeline(
    pipeline: Any,
    X: Any,
    y: Any,
    features: Any,
    target: str,
    preset: str,
    source: str,
    sample_weight: Any,
) -> TrainingRun:
    """:meth:`TrainingRun.from_estimator` of a pipeline that encodes raw columns."""
    from training.solver.columns import column_model
    from training.stats.anova import anova_type2

    if features is not None:
        raise UsageError(
            "features= names the columns of a model on numbers; a pipeline that encodes raw "
            "columns reads them by the names it was fitted with"
        )

    cm = column_model(pipeline, X)
    est, design = cm.estimator, cm.design
    y = np.array(y, dtype=np.float64)
    weight = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    centered = design.intercept
    if not centered:  # without an intercept, a factor coded with every level spans it
        rank = np.linalg.matrix_rank(cm.Z)
        centered = bool(np.linalg.matrix_rank(np.column_stack([np.ones(len(y)), cm.Z])) == rank)
    st = regression_statistics(
        cm.Z,
        y,
        est.coef_,
        est.intercept_,
        features=design.column_names,
        fit_intercept=est.fit_intercept,
        sample_weight=weight,
        centered=centered,
    )
    metrics = {"train": regression_metrics(y, est.predict(cm.Z)), "heldout": None}
    data: dict[str, Any] = {"source": source, "n_train": int(len(y)), "n_heldout": 0}
    data.update(test_size=0.0, pipeline=[*cm.steps, "LinearRegressionSGD"], imputed=cm.imputed)
    if weight is not None:
        data["weighted"] = True
    run = TrainingRun(est, design.column_names, target, cm.Z, y, st, metrics, preset, data)
    run.design, run.raw_train, run.reference = design, cm.raw, cm.reference
    run.anova = anova_type2(st, design.terms)
    return run


def train(
    data: Any,
    *,
    target: str | None = None,
    features: Sequence[str] | None = None,
    formula: str | None = None,
    missing: str = "drop",
    references: dict[str, Any] | None = None,
    preset: str = "default",
    test_size: float = 0.0,
    **overrides: Any,
) -> TrainingRun:
    """Fit a preset (with overrides) on ``data``; hold out ``test_size`` of the rows.

    Parameters
    ----------
    data : :class:`~training.data.Table` or pandas.DataFrame
        A table from :func:`~training.data.load_table` (a CSV, TSV or Parquet file)
        or :func:`~training.data.load_dataset`, or a DataFrame.
    target : str
        With a DataFrame and no formula: the column to predict (required).
    features : sequence of str, optional
        With a DataFrame: the feature columns (default: every column but the target).
        Text, categorical and boolean columns are factors (treatment coding, the first
        level in sorted order as the reference).
    formula : str, optional
        With a DataFrame: a Wilkinson formula, ``"y ~ x1 + C(region) + x1:x2"``
        (:mod:`training.formula`: the subset that compiles into the ONNX graph).
    missing : "drop" or "error"
        Rows with a missing value in a used column (the target included): dropped and
        counted (R's ``na.omit``, the default), or a :class:`DataError` naming the first.
    references : dict, optional
        A factor's reference level by column name (``{"region": "south"}``).
    preset : "default" or "tutorial"
    test_size : float in [0, 1)
        Fraction of the rows held out; the split is a seeded permutation (the
        estimator's ``seed``). Statistics use the training rows,
        ``metrics["heldout"]`` the held-out ones.
    **overrides
        Parameters of :class:`~training.solver.estimator.LinearRegressionSGD`.

    Notes
    -----
    A DataFrame with a formula, a factor, a gap or ``references`` is fitted on its
    design (``run.design``; ``run.features`` are then the design's column names, and
    ``run.anova`` holds a Type II F test per term); a Table or an all-numeric,
    complete DataFrame on its columns as they are.

    Raises ``TypeError`` for other ``data`` (naming :func:`~training.data.load_table`),
    :class:`UsageError` for ``target``/``features`` with a Table, no ``target`` with a
    DataFrame or a ``test_size`` outside [0, 1), and :class:`DataError` for a missing or
    non-numeric column, too few rows to fit, constant or collinear features, or a
    formula term outside the supported subset (each named).
    """
    from training.solver.estimator import LinearRegressionSGD

    if not 0.0 <= test_size < 1.0:
        raise UsageError(f"test_size must be in [0, 1), got {test_size}")
    if _needs_design(data, formula, target, features, references):
        return _train_design(
            data, formula, target, features, missing, references, preset, test_size, overrides
        )
    table = as_table(data, target=target, features=features)
    estimator = LinearRegressionSGD.from_preset(preset, **overrides)
    fit_rows, test = _fit_split(
        estimator, table.X, table.y, table.features, test_size, table.source
    )
    run = TrainingRun.from_estimator(
        estimator,
        table.X[fit_rows],
        table.y[fit_rows],
        features=table.features,
        target=table.target,
        preset=preset,
        source=table.source,
    )
    _held_out(run, estimator, table.X[test], table.y[test], test_size, len(table.y))
    return run


def _needs_design(
    data: Any,
    formula: str | None,
    target: str | None,
    features: Sequence[str] | None,
    references: dict[str, Any] | None,
) -> bool:
    """Whether a DataFrame must be fitted on a design: a formula, a reference level, a
    factor column or a gap among the columns used."""
    if not is_frame(data):
        if formula is not None or references:
            raise UsageError("formula= and references= take a pandas DataFrame")
        return False
    if formula is not None or references:
        return True
    from training.formula import is_factor_column

    names = [str(c) for c in data.columns]
    used = [c for c in names if c != target] if features is None else list(features)
    used = [c for c in [*used, target] if c in names]
    return any(is_factor_column(data[c]) or bool(data[c].isna().any()) for c in used)


def _fit_split(
    estimator: Any, X: np.ndarray, y: np.ndarray, names: list[str], test_size: float, source: str
) -> tuple[np.ndarray, np.ndarray]:
    """Fit ``estimator`` on all but the held-out rows; the fitted and held-out rows."""
    n = len(y)
    n_test = int(round(n * test_size))
    _check_split(n, len(names), n_test, test_size, estimator.fit_intercept, source)
    order = np.random.default_rng(estimator.seed).permutation(n) if n_test else np.arange(n)
    test, fit_rows = np.sort(order[:n_test]), np.sort(order[n_test:])
    _fit_naming_columns(estimator, X[fit_rows], y[fit_rows], names)
    return fit_rows, test


def _held_out(
    run: TrainingRun, estimator: Any, X: np.ndarray, y: np.ndarray, test_size: float, n: int
) -> None:
    if len(y):
        run.metrics["heldout"] = regression_metrics(y, estimator.predict(X))
    run.data.update(n_heldout=int(len(y)), test_size=float(test_size), n_rows=int(n))


def _train_design(
    frame: Any,
    formula: str | None,
    target: str | None,
    features: Sequence[str] | None,
    missing: str,
    references: dict[str, Any] | None,
    preset: str,
    test_size: float,
    overrides: dict[str, Any],
) -> TrainingRun:
    """:func:`train` on a DataFrame's design (see there)."""
    from training.formula import design_table
    from training.solver.estimator import LinearRegressionSGD
    from training.stats.anova import anova_type2

    if formula is None and target is None:
        raise UsageError("train(DataFrame) needs target='column' or a formula")
    dt = design_table(
        frame,
        formula,
        target=target,
        features=features,
        missing=missing,
        references=references,
        source="DataFrame",
    )
    intercept = dt.design.intercept
    if overrides.get("fit_intercept", intercept) != intercept:
        raise UsageError(
            "fit_intercept= contradicts the formula: write '- 1' in the formula to drop the "
            "intercept"
        )
    estimator = LinearRegressionSGD.from_preset(preset, **{**overrides, "fit_intercept": intercept})
    fit_rows, test = _fit_split(estimator, dt.Z, dt.y, dt.names, test_size, "DataFrame")
    run = TrainingRun.from_estimator(
        estimator,
        dt.Z[fit_rows],
        dt.y[fit_rows],
        features=dt.names,
        target=dt.target,
        preset=preset,
        source="DataFrame",
        centered=dt.centered,
    )
    run.design = dt.design
    run.raw_train = dt.frame.iloc[fit_rows].reset_index(drop=True)
    run.anova = anova_type2(run.statistics, dt.design.terms)
    _held_out(run, estimator, dt.Z[test], dt.y[test], test_size, len(dt.y))
    run.data["rows_dropped"] = dt.design.rows_dropped
    return run


def _check_split(
    n: int, k: int, n_test: int, test_size: float, fit_intercept: bool, source: str
) -> None:
    """Refuse a split that leaves too few rows to fit (DataError, in words)."""
    needed = k + (2 if fit_intercept else 1)
    left = n - n_test
    if n_test and left < needed:
        raise DataError(
            f"{source}: test_size={test_size:g} holds out {n_test} of {n} rows, leaving "
            f"{left} to fit; a model with {k} feature(s) needs at least {needed} (one "
            "residual degree of freedom)"
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
