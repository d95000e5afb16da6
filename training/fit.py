"""Fit ``torch.nn.Linear`` with ``MSELoss`` and ``torch.optim.SGD``, exactly and without tuning.

The default fit preconditions the problem so that plain SGD converges at once,
then refines the answer to the digits the data allow (:mod:`training.lstsq`):

1. The feature columns are scaled (by powers of two), centered (with an
   intercept) and orthogonalized by a QR factorization, ``U = √n Q``. On ``U``
   the MSE loss has Hessian ``2 I``, so full-batch SGD with the chosen
   ``lr = 2 / (λ_max + λ_min) = 1/2`` reaches the optimum in one step, however
   collinear ``X`` is (standardizing alone does not help there: gradient descent
   needs about ``κ log(1/ε)`` steps). The target is standardized too.
2. When SGD has converged (the largest gradient component at most ``tol``), each
   further epoch is a refinement step: residuals of the least-squares system are
   computed in extended precision and one SGD step from zero fits them in the
   orthonormal basis, giving a correction (Björck's iterative refinement). Steps
   stop when the correction stops shrinking.
3. The transform is folded back, so the fitted ``nn.Linear`` acts on raw features.

Mini-batches (``batch_size``) use ``lr = 1 / max_i |u_i|²`` (every mini-batch's
Hessian is at most ``2 max_i |u_i|²``, so no batch step can expand the error) and
are not refined. ``orthogonalize=False`` keeps the standardization only, with
``lr = 2 / (λ_max + λ_min)`` of that problem's Hessian; ``standardize=False``
trains on raw features. The ``tutorial`` preset reproduces the recipe of the
tutorial this project started from (fitting ``nn.Linear`` with SGD on the
plant-richness data): raw features, ``lr=0.002``, 6000 full-batch epochs, no
early stop.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from training.data import DataError, validate_xy
from training.lstsq import EXTENDED, LeastSquares, RefinementState
from training.sgd import TORCH_DTYPES, DivergenceError, progress_bar, run_sgd, sgd_projection

__all__ = [
    "PRESETS",
    "ConvergenceWarning",
    "DivergenceError",
    "LinearRegressionSGD",
    "NotFittedError",
]

DType = Literal["float32", "float64"]

PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    "tutorial": {
        "lr": 0.002,
        "max_epochs": 6000,
        "standardize": False,
        "early_stop": False,
        "batch_size": None,
        "momentum": 0.0,
        # torch's default dtype, as in the tutorial: float64 would draw other initial weights
        "dtype": "float32",
    },
}

_PARAM_NAMES = (
    "lr",
    "max_epochs",
    "tol",
    "early_stop",
    "batch_size",
    "momentum",
    "standardize",
    "orthogonalize",
    "fit_intercept",
    "seed",
    "dtype",
    "progress",
)


class ConvergenceWarning(UserWarning):
    """SGD stopped at ``max_epochs`` before its gradient fell below ``tol``."""


class NotFittedError(ValueError, AttributeError):
    """The estimator was used before ``fit``."""


@dataclass
class _Prepared:
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

    def to_params(self, weight: np.ndarray, bias: float) -> np.ndarray:
        """``[intercept, *coef]`` on raw features for ``features @ weight + bias``."""
        w, b = self.y_scale * np.asarray(weight), self.y_shift + self.y_scale * bias
        if self.lstsq is not None:
            x = self.lstsq.from_orthogonal(w, b)
            params = self.lstsq.to_params(x)
            return params if self.lstsq.fit_intercept else np.concatenate([[0.0], params])
        assert self.x_shift is not None and self.x_scale is not None
        coef = w / self.x_scale
        return np.concatenate([[b - float(coef @ self.x_shift)], coef])


class LinearRegressionSGD:
    """Linear regression trained by SGD on ``torch.nn.Linear``, scikit-learn style.

    Parameters
    ----------
    lr : float or None
        Learning rate. ``None`` chooses one that provably converges (module docstring).
    max_epochs : int
        Upper bound on SGD passes over the data (refinement steps come on top, at
        most 10).
    tol : float
        Convergence tolerance on the largest absolute gradient component of the
        MSE loss of the prepared problem (orthogonalized or standardized).
    early_stop : bool
        Stop at convergence. ``False`` always runs ``max_epochs``.
    batch_size : int or None
        ``None`` for full-batch gradient descent, else shuffled mini-batches.
    momentum : float
        SGD momentum (0 for plain SGD).
    standardize : bool
        Precondition internally (scale, center and, with ``orthogonalize``,
        orthogonalize the features; standardize the target) and fold it back.
    orthogonalize : bool
        With ``standardize``: orthogonalize the columns (QR) and refine the answer;
        ``False`` standardizes each column only.
    fit_intercept : bool
        Fit an intercept; ``False`` fits ``y = X w`` (the bias stays 0).
    seed : int
        Seeds the weight initialization and the mini-batch shuffling.
    dtype : {"float64", "float32"}
        Dtype of training and of ``module_``. Export chooses its own dtype.
    progress : bool or None
        Show a tqdm progress bar; ``None`` shows it only on a terminal.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,), float64
    intercept_ : float
    module_ : torch.nn.Linear
        The fitted model, acting on raw features, in ``dtype``.
    n_features_in_ : int
    n_epochs_ : int
        Epochs run: SGD epochs plus refinement steps.
    refinement_steps_ : int
    converged_ : bool
    lr_ : float
        The learning rate used (chosen or given).
    loss_history_ : list of float
        MSE on the raw target scale at the start of each epoch, then the final MSE.
    fit_seconds_ : float
    hessian_eigenvalues_ : tuple of float
        Smallest and largest eigenvalue of the Hessian of the loss SGD minimized.
    """

    def __init__(
        self,
        *,
        lr: float | None = None,
        max_epochs: int = 10_000,
        tol: float = 1e-6,
        early_stop: bool = True,
        batch_size: int | None = None,
        momentum: float = 0.0,
        standardize: bool = True,
        orthogonalize: bool = True,
        fit_intercept: bool = True,
        seed: int = 0,
        dtype: DType = "float64",
        progress: bool | None = None,
    ) -> None:
        self.lr = lr
        self.max_epochs = max_epochs
        self.tol = tol
        self.early_stop = early_stop
        self.batch_size = batch_size
        self.momentum = momentum
        self.standardize = standardize
        self.orthogonalize = orthogonalize
        self.fit_intercept = fit_intercept
        self.seed = seed
        self.dtype = dtype
        self.progress = progress

    @classmethod
    def from_preset(cls, preset: str = "default", **overrides: Any) -> LinearRegressionSGD:
        """Build an estimator from a named preset (``"default"`` or ``"tutorial"``)."""
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; expected one of {sorted(PRESETS)}")
        return cls(**{**PRESETS[preset], **overrides})

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor parameters, as scikit-learn's ``get_params``."""
        return {name: getattr(self, name) for name in _PARAM_NAMES}

    def _check_params(self) -> None:
        if self.dtype not in TORCH_DTYPES:
            raise ValueError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")
        if self.lr is not None and not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a positive number or None, got {self.lr!r}")
        if int(self.max_epochs) != self.max_epochs or self.max_epochs < 1:
            raise ValueError(f"max_epochs must be a positive integer, got {self.max_epochs!r}")
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(
                f"batch_size must be a positive integer or None, got {self.batch_size}"
            )
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum}")
        if not self.tol > 0:
            raise ValueError(f"tol must be positive, got {self.tol}")

    def _prepare(self, X: np.ndarray, y: np.ndarray) -> _Prepared:
        """Scale, center and orthogonalize as configured (module docstring)."""
        n, k = X.shape
        if self.fit_intercept:
            y_shift = float(y.mean())
            y_scale = float(y.std()) or 1.0
        else:
            y_shift, y_scale = 0.0, float(np.sqrt(np.mean(y**2))) or 1.0
        if not self.standardize:
            y_shift, y_scale = 0.0, 1.0
        target = (y - y_shift) / y_scale
        if self.standardize and self.orthogonalize:
            ls = LeastSquares(X, fit_intercept=self.fit_intercept)
            return _Prepared(
                ls.orthogonal_features(), target, y_shift, y_scale, (2.0, 2.0), lstsq=ls
            )
        if self.standardize:
            x_shift = X.mean(axis=0) if self.fit_intercept else np.zeros(k)
            x_scale = np.sqrt(np.mean((X - x_shift) ** 2, axis=0))
            constant = np.flatnonzero(x_scale == 0)
            if constant.size:
                raise DataError(
                    f"fit: feature column {int(constant[0]) + 1} is constant; it cannot be "
                    "separated from the intercept"
                )
        else:
            x_shift, x_scale = np.zeros(k), np.ones(k)
        features = (X - x_shift) / x_scale
        design = np.column_stack([features, np.ones(n)]) if self.fit_intercept else features
        eig = np.linalg.eigvalsh(2.0 * design.T @ design / n)
        return _Prepared(
            features,
            target,
            y_shift,
            y_scale,
            (float(max(eig[0], 0.0)), float(eig[-1])),
            x_shift=x_shift,
            x_scale=x_scale,
        )

    def _learning_rate(self, prep: _Prepared) -> float:
        if self.lr is not None:
            return float(self.lr)
        n = prep.features.shape[0]
        if self.batch_size is None or self.batch_size >= n:
            lam_min, lam_max = prep.hessian_eigenvalues
            return 2.0 / (lam_max + lam_min)
        # Every mini-batch Hessian is at most 2 max_i |z_i|², so this step never
        # expands the error on any batch, whatever the shuffle.
        rows = np.sum(prep.features**2, axis=1) + (1.0 if self.fit_intercept else 0.0)
        return 1.0 / float(np.max(rows))

    def fit(self, X: Any, y: Any) -> LinearRegressionSGD:
        """Fit on ``X`` of shape (n_samples, n_features) and ``y`` of shape (n_samples,).

        Returns ``self``. Raises :class:`~training.data.DataError` for unusable data
        (naming exactly collinear columns) and :class:`DivergenceError` when the loss
        blows up; warns :class:`ConvergenceWarning` when SGD ends unconverged.
        """
        self._check_params()
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        if X.ndim == 1:
            X = X.reshape(-1, 1)
        validate_xy(X, y, source="fit", fit_intercept=self.fit_intercept)
        started = time.perf_counter()
        prep = self._prepare(X, y)
        lr = self._learning_rate(prep)
        tdtype = TORCH_DTYPES[self.dtype]
        k = X.shape[1]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            module = torch.nn.Linear(k, 1, bias=self.fit_intercept, dtype=tdtype)
        features = torch.from_numpy(prep.features).to(tdtype)
        lam_max = prep.hessian_eigenvalues[1]
        result = run_sgd(
            module,
            features,
            torch.from_numpy(prep.target).to(tdtype).reshape(-1, 1),
            lr=lr,
            momentum=self.momentum,
            batch_size=self.batch_size,
            max_epochs=self.max_epochs,
            tol=self.tol,
            early_stop=self.early_stop,
            generator=torch.Generator().manual_seed(self.seed),
            loss_scale=prep.y_scale**2,
            diverged=lambda e, a, b: _divergence_message(e, a, b, lr, lam_max, self.standardize),
            bar=progress_bar(self.max_epochs, self.progress),
        )
        params = prep.to_params(result.weight, result.bias)
        if not np.all(np.isfinite(params)):
            raise DivergenceError(
                _divergence_message(
                    result.epochs, result.history[0], math.inf, lr, lam_max, self.standardize
                )
            )
        history = result.history
        steps = 0
        full_batch = self.batch_size is None or self.batch_size >= X.shape[0]
        if prep.lstsq is not None and full_batch and result.converged:
            params, steps = self._refine(prep.lstsq, features, y, params, history)
        history.append(float(np.mean(np.square(_residuals(prep, X, y, params)))))
        if not result.converged:
            warnings.warn(
                ConvergenceWarning(
                    f"SGD did not converge in {result.epochs} epochs: the largest gradient "
                    f"component is {result.grad_max:.3g} > tol={self.tol:g}; raise max_epochs, "
                    "leave lr unset, or use the default preconditioning"
                ),
                stacklevel=2,
            )
        self._set_fitted(params, tdtype, lr, prep, result, steps, history, started)
        return self

    def _refine(
        self,
        ls: LeastSquares,
        features: torch.Tensor,
        y: np.ndarray,
        params: np.ndarray,
        history: list[float],
    ) -> tuple[np.ndarray, int]:
        """Refinement steps (module docstring), each one SGD step on ``features``."""
        x0 = ls.from_params(params if self.fit_intercept else params[1:])
        state = RefinementState(x0, np.zeros(ls.n, dtype=EXTENDED))
        state, steps = ls.refine(
            y,
            np.zeros(ls.p),
            state,
            project=sgd_projection(features, self.fit_intercept),
            on_step=lambda r: history.append(float(np.mean(np.square(r)))),
        )
        refined = ls.to_params(np.asarray(state.x, dtype=np.float64))
        return (refined if self.fit_intercept else np.concatenate([[0.0], refined])), steps

    def _set_fitted(
        self,
        params: np.ndarray,
        tdtype: torch.dtype,
        lr: float,
        prep: _Prepared,
        result: Any,
        steps: int,
        history: list[float],
        started: float,
    ) -> None:
        k = params.size - 1
        raw = torch.nn.Linear(k, 1, dtype=tdtype)
        with torch.no_grad():
            raw.weight.copy_(torch.from_numpy(params[1:].reshape(1, k)))
            raw.bias.fill_(float(params[0]))
        raw.eval()
        self.module_ = raw
        self.coef_ = params[1:].copy()
        self.intercept_ = float(params[0])
        self.n_features_in_ = k
        self.n_epochs_ = result.epochs + steps
        self.refinement_steps_ = steps
        self.converged_ = bool(result.converged)
        self.lr_ = lr
        self.loss_history_ = history
        self.fit_seconds_ = time.perf_counter() - started
        self.hessian_eigenvalues_ = prep.hessian_eigenvalues

    def _check_fitted(self) -> None:
        if not hasattr(self, "module_"):
            raise NotFittedError("this LinearRegressionSGD is not fitted yet; call fit(X, y) first")

    def predict(self, X: Any) -> np.ndarray:
        """Predict with the fitted ``nn.Linear``.

        X : array-like of shape (n_samples, n_features). Returns ndarray of shape
        (n_samples,) in the model's dtype.
        """
        self._check_fitted()
        X = np.asarray(X, dtype=np.float64)
        if X.ndim == 1:
            X = X.reshape(1, -1) if X.shape[0] == self.n_features_in_ else X.reshape(-1, 1)
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has shape {X.shape}, but this model expects {self.n_features_in_} features"
            )
        with torch.no_grad():
            out = self.module_(torch.from_numpy(X).to(self.module_.weight.dtype))
        return out.numpy().reshape(-1)


def _residuals(prep: _Prepared, X: np.ndarray, y: np.ndarray, params: np.ndarray) -> np.ndarray:
    """``y - [1, X] params`` (n,); in extended precision when the problem was factored."""
    if prep.lstsq is not None:
        return prep.lstsq.residuals(y, params if prep.lstsq.fit_intercept else params[1:])
    return y - X @ params[1:] - params[0]


def _divergence_message(
    epoch: int, first: float, value: float, lr: float, lam_max: float, standardized: bool
) -> str:
    limit = 2.0 / lam_max
    advice = (
        f"use a learning rate below {limit:.3g} (2 / largest eigenvalue of the loss Hessian)"
        + ("" if standardized else ", or standardize the features (the default preset)")
        + ", or leave lr unset to have it chosen"
    )
    return (
        f"training diverged at epoch {epoch}: the MSE went from {first:.4g} to {value:.4g} "
        f"with lr={lr:g}; {advice}"
    )
