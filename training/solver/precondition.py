"""The problem SGD sees: features scaled, centered and orthogonalized, and the way back.

:func:`prepare` turns raw ``X`` (n, k) and ``y`` (n,) into the features and target
that :func:`training.solver.sgd.run_sgd` trains on, as the estimator's options say
(:mod:`training.solver.estimator` explains the preconditioning), and :class:`Prepared` maps the
trained ``nn.Linear`` weights back to parameters on raw features.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from training.errors import DataError
from training.solver.lstsq import LeastSquares, Projection

__all__ = [
    "Options",
    "Prepared",
    "hessian_extremes",
    "intercept_last",
    "learning_rate",
    "prepare",
    "residuals",
]


class Options(Protocol):
    """The estimator parameters preparation reads (``LinearRegressionSGD`` has them)."""

    lr: float | None
    batch_size: int | None
    standardize: bool
    orthogonalize: bool
    fit_intercept: bool


@dataclass
class Prepared:
    """The problem SGD sees: ``features`` (n, k) and ``target`` (n,), float64, with the
    map back to raw parameters ``[intercept, *coef]``."""

    features: np.ndarray
    target: np.ndarray
    y_shift: float
    y_scale: float
    hessian_eigenvalues: tuple[float, float]
    x_shift: np.ndarray | None = None
    x_scale: np.ndarray | None = None
    lstsq: LeastSquares | None = None
    #: (n,) ``√w`` of the weights rescaled to mean 1, or None without weights
    root_weight: np.ndarray | None = None
    #: the intercept's column ``√w`` is the last feature (weighted, with an intercept)
    bias_in_features: bool = False

    def to_params(self, weight: np.ndarray, bias: float) -> np.ndarray:
        """``[intercept, *coef]`` on raw features for ``features @ weight + bias``."""
        weight = np.asarray(weight)
        if self.bias_in_features:
            weight, bias = weight[:-1], float(weight[-1])
        w, b = self.y_scale * weight, self.y_shift + self.y_scale * bias
        if self.lstsq is not None:
            x = self.lstsq.from_orthogonal(w, b)
            params = self.lstsq.to_params(x)
            return params if self.lstsq.fit_intercept else np.concatenate([[0.0], params])
        assert self.x_shift is not None and self.x_scale is not None
        coef = w / self.x_scale
        return np.concatenate([[b - float(coef @ self.x_shift)], coef])


def prepare(X: np.ndarray, y: np.ndarray, weight: np.ndarray | None, options: Options) -> Prepared:
    """Scale, center and orthogonalize as ``options`` say (:mod:`training.solver.estimator`).

    X : (n, k) float64; y : (n,) float64.

    ``weight`` (n,) are the sample weights rescaled to mean 1, or None.
    """
    if weight is not None:
        return _prepare_weighted(X, y, weight, options)
    n, k = X.shape
    if options.fit_intercept:
        y_shift = float(y.mean())
        y_scale = float(y.std()) or 1.0
    else:
        y_shift, y_scale = 0.0, float(np.sqrt(np.mean(y**2))) or 1.0
    if not options.standardize:
        y_shift, y_scale = 0.0, 1.0
    target = (y - y_shift) / y_scale
    if options.standardize and options.orthogonalize:
        ls = LeastSquares(X, fit_intercept=options.fit_intercept)
        return Prepared(ls.orthogonal_features(), target, y_shift, y_scale, (2.0, 2.0), lstsq=ls)
    x_shift, x_scale = _feature_scaling(X, None, options)
    features = (X - x_shift) / x_scale
    design = np.column_stack([features, np.ones(n)]) if options.fit_intercept else features
    return Prepared(
        features,
        target,
        y_shift,
        y_scale,
        hessian_extremes(design),
        x_shift=x_shift,
        x_scale=x_scale,
    )


def _prepare_weighted(
    X: np.ndarray, y: np.ndarray, weight: np.ndarray, options: Options
) -> Prepared:
    """:func:`prepare` for weighted least squares: rows times ``√w``, and the
    intercept's column ``√w`` appended to the features (module docstring)."""
    sw = np.sqrt(weight)
    if options.fit_intercept:
        y_shift = float(np.average(y, weights=weight))
        y_scale = float(np.sqrt(np.average((y - y_shift) ** 2, weights=weight))) or 1.0
    else:
        y_shift, y_scale = 0.0, float(np.sqrt(np.average(y**2, weights=weight))) or 1.0
    if not options.standardize:
        y_shift, y_scale = 0.0, 1.0
    target = sw * (y - y_shift) / y_scale
    extra = [sw] if options.fit_intercept else []
    if options.standardize and options.orthogonalize:
        ls = LeastSquares(X, fit_intercept=options.fit_intercept, sample_weight=weight)
        features = np.column_stack([ls.orthogonal_features(), *extra])
        return Prepared(
            features,
            target,
            y_shift,
            y_scale,
            (2.0, 2.0),
            lstsq=ls,
            root_weight=sw,
            bias_in_features=options.fit_intercept,
        )
    x_shift, x_scale = _feature_scaling(X, weight, options)
    features = np.column_stack([sw[:, None] * ((X - x_shift) / x_scale), *extra])
    return Prepared(
        features,
        target,
        y_shift,
        y_scale,
        hessian_extremes(features),
        x_shift=x_shift,
        x_scale=x_scale,
        root_weight=sw,
        bias_in_features=options.fit_intercept,
    )


def _feature_scaling(
    X: np.ndarray, weight: np.ndarray | None, options: Options
) -> tuple[np.ndarray, np.ndarray]:
    """``(shift, scale)`` (k,) of the columns: (weighted) mean and standard deviation
    with ``standardize``, else 0 and 1."""
    k = X.shape[1]
    if options.standardize:
        if weight is None:
            x_shift = X.mean(axis=0) if options.fit_intercept else np.zeros(k)
            x_scale = np.sqrt(np.mean((X - x_shift) ** 2, axis=0))
        else:
            x_shift = (
                np.average(X, axis=0, weights=weight) if options.fit_intercept else np.zeros(k)
            )
            x_scale = np.sqrt(np.average((X - x_shift) ** 2, axis=0, weights=weight))
        constant = np.flatnonzero(x_scale == 0)
        if constant.size:
            raise DataError(
                f"fit: feature column {int(constant[0]) + 1} is constant; it cannot be "
                "separated from the intercept"
            )
    else:
        x_shift, x_scale = np.zeros(k), np.ones(k)
    return x_shift, x_scale


def learning_rate(prep: Prepared, options: Options) -> float:
    """The given ``lr``, or one that provably converges (:mod:`training.solver.estimator`)."""
    if options.lr is not None:
        return float(options.lr)
    n = prep.features.shape[0]
    if options.batch_size is None or options.batch_size >= n:
        lam_min, lam_max = prep.hessian_eigenvalues
        return 2.0 / (lam_max + lam_min)
    # Every mini-batch Hessian is at most 2 max_i |z_i|², so this step never
    # expands the error on any batch, whatever the shuffle.
    bias = options.fit_intercept and not prep.bias_in_features
    rows = np.sum(prep.features**2, axis=1) + (1.0 if bias else 0.0)
    return 1.0 / float(np.max(rows))


def intercept_last(step: Projection) -> Projection:
    """``step`` on features whose last column is the intercept's (weighted fits),
    returning that column's coefficient as the bias."""

    def project(target: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        theta, _, fitted = step(target)
        return theta[:-1], np.asarray(theta[-1]), fitted

    return project


def hessian_extremes(design: np.ndarray) -> tuple[float, float]:
    """Smallest (at least 0) and largest eigenvalue of ``2 designᵀ design / n``."""
    eig = np.linalg.eigvalsh(2.0 * design.T @ design / design.shape[0])
    return float(max(eig[0], 0.0)), float(eig[-1])


def residuals(prep: Prepared, X: np.ndarray, y: np.ndarray, params: np.ndarray) -> np.ndarray:
    """``y - [1, X] params`` (n,), times ``√w`` with weights; in extended precision when
    the problem was factored."""
    if prep.lstsq is not None:
        return prep.lstsq.residuals(y, params if prep.lstsq.fit_intercept else params[1:])
    resid = y - X @ params[1:] - params[0]
    return resid if prep.root_weight is None else prep.root_weight * resid
