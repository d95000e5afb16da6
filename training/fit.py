"""Fit ``torch.nn.Linear`` with ``MSELoss`` and ``torch.optim.SGD``, without hand-tuning.

By default the features (and the target) are standardized inside ``fit``, the
learning rate is chosen from the Hessian of the least-squares loss, training
stops when the gradient vanishes, and the scaling is folded back into the
weights, so the fitted ``nn.Linear`` acts on raw features.

Why the default learning rate converges: the MSE loss of a linear model is the
quadratic ``f(θ) = |Zθ - y|² / n`` with constant Hessian ``H = 2 ZᵀZ / n``
(``Z`` is the design with a column of ones). Full-batch gradient descent on a
quadratic converges for any ``0 < lr < 2 / λ_max(H)``; ``lr = 2 / (λ_max + λ_min)``
gives the fastest rate, ``(κ - 1) / (κ + 1)`` per epoch with ``κ = λ_max / λ_min``.
Standardizing makes ``κ`` small (1 for uncorrelated features), so a few dozen
epochs suffice. Mini-batches use ``1 / max_i |z_i|²``: every mini-batch's Hessian
is at most ``2 max_i |z_i|²``, so no batch step can expand the error.

The ``tutorial`` preset reproduces the article's recipe: raw features,
``lr=0.002``, 6000 full-batch epochs, no early stop.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any, Literal

import numpy as np
import torch

from training.data import DataError, validate_xy

__all__ = ["PRESETS", "DivergenceError", "LinearRegressionSGD", "NotFittedError"]

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
    },
}

_TORCH_DTYPES = {"float32": torch.float32, "float64": torch.float64}


class DivergenceError(RuntimeError):
    """Training stopped because the loss became NaN, infinite or kept growing."""


class NotFittedError(ValueError, AttributeError):
    """The estimator was used before ``fit``."""


class LinearRegressionSGD:
    """Linear regression trained by SGD on ``torch.nn.Linear``, scikit-learn style.

    Parameters
    ----------
    lr : float or None
        Learning rate. ``None`` chooses one that provably converges (module docstring).
    max_epochs : int
        Upper bound on passes over the data.
    tol : float
        Convergence tolerance on the largest absolute gradient component of the
        (standardized, when ``standardize``) MSE loss.
    early_stop : bool
        Stop at convergence. ``False`` always runs ``max_epochs``.
    batch_size : int or None
        ``None`` for full-batch gradient descent, else shuffled mini-batches.
    momentum : float
        SGD momentum (0 for plain SGD).
    standardize : bool
        Standardize features and target internally and fold the scaling back.
    seed : int
        Seeds the weight initialization and the mini-batch shuffling.
    dtype : {"float32", "float64"}
        Dtype of the model's parameters and of training.
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
        Epochs run.
    converged_ : bool
    lr_ : float
        The learning rate used (chosen or given).
    loss_history_ : list of float
        MSE on the raw target scale at the start of each epoch, then the final MSE.
    fit_seconds_ : float
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
        seed: int = 0,
        dtype: DType = "float32",
        progress: bool | None = None,
    ) -> None:
        self.lr = lr
        self.max_epochs = max_epochs
        self.tol = tol
        self.early_stop = early_stop
        self.batch_size = batch_size
        self.momentum = momentum
        self.standardize = standardize
        self.seed = seed
        self.dtype = dtype
        self.progress = progress

    @classmethod
    def from_preset(cls, preset: str = "default", **overrides: Any) -> LinearRegressionSGD:
        """Build an estimator from a named preset (``"default"`` or ``"tutorial"``)."""
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; expected one of {sorted(PRESETS)}")
        return cls(**{**PRESETS[preset], **overrides})

    def get_params(self) -> dict[str, Any]:
        """The constructor parameters, as scikit-learn's ``get_params``."""
        names = [
            "lr",
            "max_epochs",
            "tol",
            "early_stop",
            "batch_size",
            "momentum",
            "standardize",
            "seed",
            "dtype",
            "progress",
        ]
        return {name: getattr(self, name) for name in names}

    def _check_params(self) -> None:
        if self.dtype not in _TORCH_DTYPES:
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

    def fit(self, X: Any, y: Any) -> LinearRegressionSGD:
        """Fit on ``X`` of shape (n_samples, n_features) and ``y`` of shape (n_samples,).

        Returns ``self``. Raises :class:`~training.data.DataError` for unusable data
        and :class:`DivergenceError` when the loss blows up.
        """
        self._check_params()
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        if X.ndim == 1:
            X = X.reshape(-1, 1)
        validate_xy(X, y, source="fit")
        n, k = X.shape

        if self.standardize:
            x_mean, x_scale = X.mean(axis=0), X.std(axis=0)
            constant = np.flatnonzero(x_scale == 0)
            if constant.size:
                raise DataError(
                    f"fit: feature column {int(constant[0]) + 1} is constant; it cannot be "
                    "separated from the intercept"
                )
            y_mean = float(y.mean())
            y_scale = float(y.std()) or 1.0
        else:
            x_mean, x_scale = np.zeros(k), np.ones(k)
            y_mean, y_scale = 0.0, 1.0
        Xs = (X - x_mean) / x_scale
        ys = (y - y_mean) / y_scale

        design = np.column_stack([Xs, np.ones(n)])
        eig = np.linalg.eigvalsh(2.0 * design.T @ design / n)
        lam_max, lam_min = float(eig[-1]), float(max(eig[0], 0.0))
        if self.lr is not None:
            lr = float(self.lr)
        elif self.batch_size is None or self.batch_size >= n:
            lr = 2.0 / (lam_max + lam_min)
        else:
            # Every mini-batch Hessian is at most 2 max_i |z_i|², so this step never
            # expands the error on any batch, whatever the shuffle.
            lr = 1.0 / float(np.max(np.sum(design**2, axis=1)))

        tdtype = _TORCH_DTYPES[self.dtype]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            module = torch.nn.Linear(k, 1, dtype=tdtype)
        gen = torch.Generator().manual_seed(self.seed)
        Xt = torch.from_numpy(Xs).to(tdtype)
        yt = torch.from_numpy(ys).to(tdtype).reshape(-1, 1)
        loss_fn = torch.nn.MSELoss()
        optimizer = torch.optim.SGD(module.parameters(), lr=lr, momentum=self.momentum)

        history: list[float] = []
        converged = False
        epoch = 0
        first_loss = math.nan
        rising = 0
        bar = _progress_bar(self.max_epochs, self.progress)
        started = time.perf_counter()
        try:
            for epoch in range(1, self.max_epochs + 1):
                # Full-data loss and gradient at the current parameters: the history,
                # the divergence guard and the convergence test all read them.
                optimizer.zero_grad()
                loss = loss_fn(module(Xt), yt)
                loss.backward()
                value = loss.detach().item() * y_scale**2
                history.append(value)
                if epoch == 1:
                    first_loss = value
                rising = rising + 1 if len(history) > 1 and value > history[-2] else 0
                if not math.isfinite(value) or value > 100.0 * first_loss or rising >= 100:
                    raise DivergenceError(
                        _divergence_message(epoch, first_loss, value, lr, lam_max, self.standardize)
                    )
                grad_max = max(float(p.grad.abs().max()) for p in module.parameters())
                if bar is not None and (epoch % 50 == 0 or epoch == 1):
                    bar.set_postfix(loss=f"{value:.6g}", grad=f"{grad_max:.2g}", refresh=False)
                    bar.update(epoch - bar.n)
                if grad_max <= self.tol:
                    converged = True
                    if self.early_stop:
                        break
                if self.batch_size is None or self.batch_size >= n:
                    optimizer.step()
                else:
                    for idx in torch.randperm(n, generator=gen).split(self.batch_size):
                        optimizer.zero_grad()
                        loss_fn(module(Xt[idx]), yt[idx]).backward()
                        optimizer.step()
            else:
                epoch = self.max_epochs
        finally:
            if bar is not None:
                if history:
                    bar.set_postfix(loss=f"{history[-1]:.6g}", refresh=False)
                bar.total = epoch  # the bar ends full at the epoch where training stopped
                bar.update(epoch - bar.n)
                bar.close()

        with torch.no_grad():
            ws = module.weight.detach().to(torch.float64).numpy().reshape(-1)
            bs = float(module.bias.detach().to(torch.float64))
            final = float(loss_fn(module(Xt), yt)) * y_scale**2
        if not all(math.isfinite(v) for v in (*ws, bs, final)):
            raise DivergenceError(
                _divergence_message(epoch, first_loss, final, lr, lam_max, self.standardize)
            )
        history.append(final)
        # With early_stop=False, "converged" reports whether the gradient is small at the end.
        if not self.early_stop:
            converged = grad_max <= self.tol

        coef = y_scale * ws / x_scale
        intercept = y_mean + y_scale * bs - float(coef @ x_mean)
        raw = torch.nn.Linear(k, 1, dtype=tdtype)
        with torch.no_grad():
            raw.weight.copy_(torch.from_numpy(coef.reshape(1, k)))
            raw.bias.fill_(intercept)
        raw.eval()

        self.module_ = raw
        self.coef_ = raw.weight.detach().to(torch.float64).numpy().reshape(-1).copy()
        self.intercept_ = float(raw.bias.detach().to(torch.float64))
        self.n_features_in_ = k
        self.n_epochs_ = epoch
        self.converged_ = converged
        self.lr_ = lr
        self.loss_history_ = history
        self.fit_seconds_ = time.perf_counter() - started
        self.hessian_eigenvalues_ = (lam_min, lam_max)
        return self

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


def _progress_bar(total: int, progress: bool | None) -> Any:
    show = sys.stderr.isatty() if progress is None else progress
    if not show:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="epochs", unit="epoch", leave=True)


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
