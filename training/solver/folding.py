"""Fold the affine scalers of a scikit-learn ``Pipeline`` into the linear model.

A fitted ``Pipeline`` of per-column affine scalers followed by
:class:`~training.solver.estimator.LinearRegressionSGD` predicts ``z(x) · β + b`` with
``z(x) = a ⊙ x + o`` (``a``, ``o`` of shape (n_features,); scalers compose into one
such map). That is the linear model ``x · (a ⊙ β) + (o · β + b)`` on the raw
features, so it exports as the same single linear graph as a bare estimator.

The scalers accepted, with the map their ``transform`` computes:

==================  ==========================================================
``StandardScaler``  ``(x - mean_) / scale_`` (each part only when enabled)
``MinMaxScaler``    ``x * scale_ + min_``; refused with ``clip=True`` (not affine)
``MaxAbsScaler``    ``x / scale_``
``RobustScaler``    ``(x - center_) / scale_`` (each part only when enabled)
==================  ==========================================================

``"passthrough"`` steps are skipped. Anything else (other transformers, another
final estimator, nested pipelines, subclasses of the scalers, whose ``transform``
may not be affine) is refused with :class:`UnsupportedModelError`.

Statistics: when the fit has an intercept, an invertible affine map of the
columns spans the same design, so the folded parameters are the least-squares
fit on the raw features and their covariance is the raw-feature one
(``training.stats.regression_statistics`` on raw ``X``). Without an intercept
only scalers that do not shift (all ``o = 0``) can be folded: a shift would add
an intercept the fit never estimated.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, RobustScaler, StandardScaler
from sklearn.utils.validation import check_is_fitted

from training.errors import UnsupportedModelError
from training.solver.estimator import LinearRegressionSGD

__all__ = [
    "AFFINE_SCALERS",
    "FOLD_RTOL",
    "Folded",
    "check_model_type",
    "fold",
]

#: The scaler classes whose ``transform`` is affine per column (exact types).
AFFINE_SCALERS: tuple[type, ...] = (StandardScaler, MinMaxScaler, MaxAbsScaler, RobustScaler)
#: The folded model must reproduce the Pipeline's float64 predictions to this
#: relative error on the rows given (rounding of ``a ⊙ β`` and ``o · β`` only).
FOLD_RTOL = 1e-9

_ACCEPTED = (
    "a fitted LinearRegressionSGD, or a fitted sklearn Pipeline of "
    + ", ".join(cls.__name__ for cls in AFFINE_SCALERS)
    + " steps (or 'passthrough') followed by a LinearRegressionSGD, or a fitted Pipeline "
    "that encodes raw columns (a ColumnTransformer of OneHotEncoder, SimpleImputer and those "
    "scalers, then LinearRegressionSGD: training.solver.columns)"
)


@dataclass
class Folded:
    """A fitted :class:`LinearRegressionSGD` acting on raw features, and where it came from.

    ``steps`` are the ``repr`` of the folded scalers, in order (empty for a bare
    estimator); ``feature_names`` the names the model was fitted with, if any.
    """

    estimator: LinearRegressionSGD
    steps: list[str] = field(default_factory=list)
    feature_names: list[str] | None = None


def _affine_map(scaler: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``(a, o)`` (k,) float64 with ``scaler.transform(x) = a ⊙ x + o``."""
    ones, zeros = np.ones(k), np.zeros(k)
    if type(scaler) is StandardScaler:
        scale = scaler.scale_ if scaler.with_std else ones
        shift = scaler.mean_ if scaler.with_mean else zeros
        return 1.0 / scale, -shift / scale
    if type(scaler) is RobustScaler:
        scale = scaler.scale_ if scaler.with_scaling else ones
        shift = scaler.center_ if scaler.with_centering else zeros
        return 1.0 / scale, -shift / scale
    if type(scaler) is MaxAbsScaler:
        return 1.0 / scaler.scale_, zeros
    if type(scaler) is MinMaxScaler:
        if scaler.clip:
            raise UnsupportedModelError(
                "export: MinMaxScaler(clip=True) is not affine (it clips to the feature "
                "range), so it cannot fold into a linear model; refit with clip=False"
            )
        return np.asarray(scaler.scale_, dtype=np.float64), np.asarray(scaler.min_, np.float64)
    raise UnsupportedModelError(
        f"export: got a Pipeline step {type(scaler).__name__} "
        f"({type(scaler).__module__}.{type(scaler).__qualname__}); expected {_ACCEPTED}"
    )


def _pipeline_parts(pipeline: Pipeline) -> tuple[list[Any], LinearRegressionSGD]:
    steps = [step for _, step in pipeline.steps if step not in (None, "passthrough")]
    if not steps or not isinstance(steps[-1], LinearRegressionSGD):
        last = type(steps[-1]).__name__ if steps else "no estimator"
        raise UnsupportedModelError(
            f"export: the Pipeline ends with {last}, not LinearRegressionSGD; expected {_ACCEPTED}"
        )
    return steps[:-1], steps[-1]


def _fitted_copy(
    est: LinearRegressionSGD, coef: np.ndarray, intercept: float
) -> LinearRegressionSGD:
    """A copy of ``est`` whose parameters (and ``nn.Linear``) are ``coef``, ``intercept``."""
    folded = copy.deepcopy(est)
    k = coef.size
    dtype = est.module_.weight.dtype
    module = torch.nn.utils.skip_init(torch.nn.Linear, k, 1, dtype=dtype)
    with torch.no_grad():
        module.weight.copy_(torch.from_numpy(coef.reshape(1, k)))
        module.bias.fill_(float(intercept))
    folded.module_ = module.eval()
    folded.coef_ = coef.copy()
    folded.intercept_ = float(intercept)
    return folded


def check_model_type(model: Any) -> None:
    """Raise :class:`UnsupportedModelError` unless ``model`` is a ``LinearRegressionSGD``
    or a ``Pipeline`` (whose steps :func:`fold` checks)."""
    if not isinstance(model, (LinearRegressionSGD, Pipeline)):
        kind = type(model)
        raise UnsupportedModelError(
            f"export: got {kind.__module__}.{kind.__qualname__}; expected {_ACCEPTED}"
        )


def fold(model: Any, X: np.ndarray | None = None) -> Folded:
    """The model as one fitted :class:`LinearRegressionSGD` on raw features.

    model : a fitted ``LinearRegressionSGD``, or a fitted ``Pipeline`` of the
    scalers of :data:`AFFINE_SCALERS` followed by one. X : ndarray of shape
    (n_samples, n_features), raw features; when given, the folded model is checked
    against the Pipeline on these rows (:data:`FOLD_RTOL`). The returned estimator
    takes plain arrays: a bare estimator fitted without feature names is returned
    itself, otherwise a copy without ``feature_names_in_`` (the names are in
    :attr:`Folded.feature_names`). Raises :class:`UnsupportedModelError` for
    anything else, scikit-learn's ``NotFittedError`` for an unfitted model.
    """
    check_model_type(model)
    if isinstance(model, Pipeline):
        scalers, final = _pipeline_parts(model)
    else:
        scalers, final = [], model
    check_is_fitted(final)
    names = getattr(model if scalers else final, "feature_names_in_", None)
    k = int(final.n_features_in_)
    a, o = np.ones(k), np.zeros(k)
    for scaler in scalers:
        check_is_fitted(scaler)
        if int(getattr(scaler, "n_features_in_", k)) != k:
            raise UnsupportedModelError(
                f"export: {type(scaler).__name__} has {scaler.n_features_in_} features but the "
                f"model has {k}; every step must keep the columns"
            )
        a_i, o_i = _affine_map(scaler, k)
        a, o = a * a_i, o * a_i + o_i
    beta = np.asarray(final.coef_, dtype=np.float64)
    if not final.fit_intercept and np.any(o != 0):
        raise UnsupportedModelError(
            "export: the LinearRegressionSGD has fit_intercept=False but the scalers shift "
            "the features, which would add an intercept the fit never estimated; refit with "
            "fit_intercept=True or with scalers that do not center (MaxAbsScaler, "
            "StandardScaler(with_mean=False), RobustScaler(with_centering=False))"
        )
    if not scalers:  # the estimator itself, or a copy that takes plain arrays
        folded = final if names is None else copy.deepcopy(final)
    else:
        coef = a * beta
        folded = _fitted_copy(final, coef, float(final.intercept_ + o @ beta))
    if hasattr(folded, "feature_names_in_"):
        del folded.feature_names_in_
    if scalers and X is not None:
        _check_fold(model, X, folded.coef_, folded.intercept_)
    return Folded(
        folded,
        [repr(s) for s in scalers],
        None if names is None else [str(n) for n in names],
    )


def _check_fold(pipeline: Pipeline, X: np.ndarray, coef: np.ndarray, intercept: float) -> None:
    """The folded parameters against the Pipeline's own float64 arithmetic on ``X``."""
    X = np.asarray(X, dtype=np.float64)
    scalers, final = _pipeline_parts(pipeline)
    Z = X
    with warnings.catch_warnings():  # plain arrays into steps fitted on a DataFrame
        warnings.filterwarnings("ignore", message="X does not have valid feature names")
        for scaler in scalers:
            Z = scaler.transform(Z)
    expected = Z @ final.coef_ + final.intercept_
    got = X @ coef + intercept
    scale = max(float(np.abs(expected).max(initial=0.0)), np.finfo(np.float64).tiny)
    err = float(np.abs(got - expected).max(initial=0.0)) / scale
    if not err <= FOLD_RTOL:
        raise UnsupportedModelError(
            f"export: the folded model differs from the Pipeline by {err:.3g} (relative) on "
            f"the {len(X)} rows given, above {FOLD_RTOL:g}"
        )
