"""Fit ``torch.nn.Linear`` with ``MSELoss`` and ``torch.optim.SGD``, exactly and without tuning.

The default fit preconditions the problem so that plain SGD converges at once,
then refines the answer to the digits the data allow (:mod:`training.solver.lstsq`):

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

``sample_weight`` makes the fit weighted least squares: rows of the features and
the target are multiplied by ``√w`` (the weights rescaled to mean 1, which does not
change the solution), so the intercept's column is ``√w`` rather than ones; it
becomes the last input of an ``nn.Linear`` without bias, which SGD trains exactly
as before (with the QR preconditioner, that column is orthogonal to the weighted,
centered features: :mod:`training.solver.lstsq`). Without weights nothing of this runs.

The estimator is a scikit-learn regressor: parameters come from the constructor
(``get_params``, ``set_params``, ``clone``), input goes through scikit-learn's
``validate_data`` (``n_features_in_``, ``feature_names_in_``), ``score`` is R², and
``check_estimator`` passes except for :data:`EXPECTED_FAILED_CHECKS`. Pickles hold
the fitted ``nn.Linear`` as numpy arrays and rebuild it on load.
"""

from __future__ import annotations

import math
import numbers
import time
import warnings
from typing import Any, Literal

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.exceptions import ConvergenceWarning as _SklearnConvergenceWarning
from sklearn.exceptions import NotFittedError  # scikit-learn's own, importable from here
from sklearn.utils import check_array
from sklearn.utils.validation import check_is_fitted, validate_data

from training.data.tables import validate_xy
from training.defaults import PRESETS
from training.errors import DataError, DivergenceError
from training.solver.lstsq import EXTENDED, RefinementState
from training.solver.precondition import Prepared, intercept_last, learning_rate, prepare, residuals
from training.solver.sgd import (
    TORCH_DTYPES,
    linear_module,
    progress_bar,
    run_sgd,
    sgd_projection,
)

__all__ = [
    "EXPECTED_FAILED_CHECKS",
    "PRESETS",
    "ConvergenceWarning",
    "LinearRegressionSGD",
    "NotFittedError",
]

DType = Literal["float32", "float64"]

#: The checks of ``sklearn.utils.estimator_checks.check_estimator`` that cannot
#: apply to this estimator, with the reason (pass as ``expected_failed_checks``).
EXPECTED_FAILED_CHECKS: dict[str, str] = {
    "check_sample_weight_equivalence_on_dense_data": (
        "fits 30 features on 15 rows: least squares needs more rows than parameters "
        "and refuses an underdetermined fit"
    ),
}


class ConvergenceWarning(_SklearnConvergenceWarning):
    """SGD stopped at ``max_epochs`` before its gradient fell below ``tol``."""


class LinearRegressionSGD(RegressorMixin, BaseEstimator):
    """Linear regression trained by SGD on ``torch.nn.Linear``, a scikit-learn regressor.

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
    feature_names_in_ : ndarray of shape (n_features_in_,), str
        Only when fitted on a table with string column names (a pandas DataFrame).
    n_epochs_ : int
        Epochs run: SGD epochs plus refinement steps.
    refinement_steps_ : int
    converged_ : bool
    lr_ : float
        The learning rate used (chosen or given).
    loss_history_ : list of float
        MSE on the raw target scale at the start of each epoch, then the final MSE
        (weighted by ``sample_weight``, ``Σ wᵢ eᵢ² / Σ wᵢ``, when given).
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

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = False
        tags.target_tags.single_output = True
        tags.target_tags.multi_output = False
        return tags

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "module_")

    def __getstate__(self) -> dict[str, Any]:
        # the fitted nn.Linear travels as numpy arrays: no torch tensors in the pickle
        state = dict(super().__getstate__())  # object's state is __dict__ itself
        module = state.get("module_")
        if isinstance(module, torch.nn.Linear):
            state["module_"] = {
                "weight": module.weight.detach().numpy().copy(),
                "bias": None if module.bias is None else module.bias.detach().numpy().copy(),
            }
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        module = state.get("module_")
        if isinstance(module, dict):
            weight = torch.from_numpy(np.array(module["weight"]))
            layer = torch.nn.utils.skip_init(
                torch.nn.Linear,
                weight.shape[1],
                weight.shape[0],
                bias=module["bias"] is not None,
                dtype=weight.dtype,
            )
            with torch.no_grad():
                layer.weight.copy_(weight)
                if module["bias"] is not None:
                    layer.bias.copy_(torch.from_numpy(np.array(module["bias"])))
            state = {**state, "module_": layer.eval()}
        super().__setstate__(state)

    def _check_params(self) -> None:
        if self.dtype not in TORCH_DTYPES:
            raise ValueError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")
        if self.lr is not None and not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a positive number or None, got {self.lr!r}")
        if int(self.max_epochs) != self.max_epochs or self.max_epochs < 1:
            raise ValueError(f"max_epochs must be a positive integer, got {self.max_epochs!r}")
        if self.batch_size is not None and (
            int(self.batch_size) != self.batch_size or self.batch_size < 1
        ):
            raise ValueError(
                f"batch_size must be a positive integer or None, got {self.batch_size}"
            )
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum}")
        if not self.tol > 0:
            raise ValueError(f"tol must be positive, got {self.tol}")

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> LinearRegressionSGD:
        """Fit on ``X`` of shape (n_samples, n_features) and ``y`` of shape (n_samples,).

        ``X`` may be any array-like scikit-learn accepts (a pandas DataFrame sets
        ``feature_names_in_``). ``sample_weight`` of shape (n_samples,), non-negative,
        makes the fit weighted least squares (module docstring).

        Returns ``self``. Raises :class:`~training.data.DataError` for unusable data
        (naming exactly collinear columns) and :class:`DivergenceError` when the loss
        blows up; warns :class:`ConvergenceWarning` when SGD ends unconverged.
        """
        self._check_params()
        # finiteness of X is checked below, naming the row and column
        X, y = validate_data(self, X, y, dtype=np.float64, ensure_all_finite=False, y_numeric=True)
        n, k = X.shape
        n_params = k + 1 if self.fit_intercept else k
        if n <= n_params:
            raise DataError(
                f"fit: {n} row(s) is too few (n_samples={n}): a model with {k} feature(s) "
                f"has {n_params} parameters and needs at least {n_params + 1} rows (one "
                "residual degree of freedom)"
            )
        validate_xy(X, y, source="fit", fit_intercept=self.fit_intercept)
        weight = _sample_weight(sample_weight, n)
        started = time.perf_counter()
        prep = prepare(X, y, weight, self)
        lr = learning_rate(prep, self)
        tdtype = TORCH_DTYPES[self.dtype]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            module = torch.nn.Linear(
                prep.features.shape[1],
                1,
                bias=self.fit_intercept and not prep.bias_in_features,
                dtype=tdtype,
            )
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
            params, steps = self._refine(prep, features, y, params, history)
        history.append(float(np.mean(np.square(residuals(prep, X, y, params)))))
        if not result.converged:
            warnings.warn(
                ConvergenceWarning(
                    f"SGD did not converge in {result.epochs} epochs: the largest gradient "
                    f"component is {result.grad_max:.3g} > tol={self.tol:g}; raise max_epochs, "
                    "leave lr unset, or use the default preconditioning"
                ),
                stacklevel=2,
            )
        self._set_fitted(params, lr, prep, result, steps, history, started)
        return self

    def _refine(
        self,
        prep: Prepared,
        features: torch.Tensor,
        y: np.ndarray,
        params: np.ndarray,
        history: list[float],
    ) -> tuple[np.ndarray, int]:
        """Refinement steps (module docstring), each one SGD step on ``features``."""
        ls = prep.lstsq
        assert ls is not None
        x0 = ls.from_params(params if self.fit_intercept else params[1:])
        state = RefinementState(x0, np.zeros(ls.n, dtype=EXTENDED))
        step = sgd_projection(features, self.fit_intercept and not prep.bias_in_features)
        project = intercept_last(step) if prep.bias_in_features else step
        state, steps = ls.refine(
            y,
            np.zeros(ls.p),
            state,
            project=project,
            on_step=lambda r: history.append(float(np.mean(np.square(r)))),
        )
        refined = ls.to_params(np.asarray(state.x, dtype=np.float64))
        return (refined if self.fit_intercept else np.concatenate([[0.0], refined])), steps

    def _set_fitted(
        self,
        params: np.ndarray,
        lr: float,
        prep: Prepared,
        result: Any,
        steps: int,
        history: list[float],
        started: float,
    ) -> None:
        self.module_ = linear_module(params[1:], float(params[0]), self.dtype)
        self.coef_ = params[1:].copy()
        self.intercept_ = float(params[0])
        self.n_epochs_ = result.epochs + steps
        self.refinement_steps_ = steps
        self.converged_ = bool(result.converged)
        self.lr_ = lr
        self.loss_history_ = history
        self.fit_seconds_ = time.perf_counter() - started
        self.hessian_eigenvalues_ = prep.hessian_eigenvalues

    def predict(self, X: Any) -> np.ndarray:
        """Predict with the fitted ``nn.Linear``.

        X : array-like of shape (n_samples, n_features), with the column names of
        the fit when it was a DataFrame. Returns ndarray of shape (n_samples,) in the
        model's dtype. Raises scikit-learn's ``NotFittedError`` before ``fit``.
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        if not X.flags.writeable:  # torch.from_numpy warns on read-only memory
            X = X.copy()
        with torch.no_grad():
            out = self.module_(torch.from_numpy(X).to(self.module_.weight.dtype))
        return out.numpy().reshape(-1)


def _sample_weight(sample_weight: Any, n: int) -> np.ndarray | None:
    """Weights (n,) rescaled to mean 1 (the least-squares solution does not change),
    or None. Raises ``ValueError`` for a wrong shape, negative or non-finite weights,
    or weights summing to 0."""
    if sample_weight is None:
        return None
    if isinstance(sample_weight, numbers.Real):
        sample_weight = np.full(n, float(sample_weight))
    w = check_array(sample_weight, ensure_2d=False, dtype=np.float64, input_name="sample_weight")
    if w.ndim != 1 or w.shape[0] != n:
        raise ValueError(f"sample_weight.shape == {w.shape}, expected ({n},)!")
    if np.any(w < 0):
        raise ValueError(f"fit: sample_weight has a negative value at row {np.argmax(w < 0) + 1}")
    total = float(w.sum())
    if not total > 0:
        raise ValueError(
            "fit: the sample weights sum to zero; at least one row needs a positive weight"
        )
    return w * (n / total)


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
