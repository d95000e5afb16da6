"""The training loop: ``torch.nn.Linear`` + ``MSELoss`` + ``torch.optim.SGD``.

:func:`run_sgd` runs epochs of full-batch or shuffled mini-batch SGD on prepared
(preconditioned) features and keeps the loss history, the divergence guard and
the convergence test; :func:`sgd_projection` is one full-batch SGD step from
zero on orthonormal features, which is the exact least-squares fit there, and is
what the refinement steps of :mod:`training.solver.lstsq` take.
"""

from __future__ import annotations

import inspect
import math
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from training.errors import DivergenceError

__all__ = [
    "TORCH_DTYPES",
    "SGDResult",
    "EagerSGD",
    "linear_module",
    "progress_bar",
    "run_sgd",
]

TORCH_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def linear_module(coef: np.ndarray, intercept: float, dtype: str) -> torch.nn.Linear:
    """An ``nn.Linear(k, 1)`` in eval mode holding ``coef`` (k,) and ``intercept``, in
    ``dtype`` ("float32" or "float64"). Built without a random initialization (the
    parameters are overwritten), so the global torch RNG is left as it was."""
    coef = np.asarray(coef, dtype=np.float64).reshape(1, -1)
    module = torch.nn.utils.skip_init(torch.nn.Linear, coef.shape[1], 1, dtype=TORCH_DTYPES[dtype])
    with torch.no_grad():
        module.weight.copy_(torch.from_numpy(coef))
        module.bias.fill_(float(intercept))
    return module.eval()


class EagerSGD(torch.optim.SGD):
    """``torch.optim.SGD``, stepping in eager mode without torch.compile's hooks.

    The update is SGD's own (``torch.optim.SGD.step``, hence ``torch.optim.sgd.sgd``);
    what is left out is the wrapping that serves only code traced by torch.compile:
    ``step`` calls ``torch._dynamo.graph_break()`` around the update, and
    ``add_param_group`` and ``zero_grad`` are ``torch._disable_dynamo`` functions. The
    first call of any of them imports ``torch._dynamo``: 1.6 s and 70 MB on this
    project's 2-core machine, more than the whole fit of a million rows. Training
    here is never compiled, so ``step`` runs under ``torch.no_grad()`` (what the
    wrapper sets for a non-differentiable optimizer) and the others run unwrapped.
    The step pre/post hooks and the profiler label still apply. Where a torch release
    does not expose the wrapped functions (``__wrapped__``), the public ones are used.
    """

    def __init__(self, params: Iterable[Any], lr: float, momentum: float = 0.0) -> None:
        super().__init__(params, lr=lr, momentum=momentum)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        _unwrapped(torch.optim.Optimizer.add_param_group)(self, param_group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        _unwrapped(torch.optim.Optimizer.zero_grad)(self, set_to_none)

    def step(self, closure: Any = None) -> Any:  # type: ignore[override]
        if self.defaults["differentiable"]:  # pragma: no cover - never set here
            return torch.optim.SGD.step(self, closure)
        with torch.no_grad():
            return _unwrapped(torch.optim.SGD.step)(self, closure)


def _unwrapped(function: Callable[..., Any]) -> Callable[..., Any]:
    """The function under ``functools.wraps`` decorators (``function`` itself if none)."""
    return inspect.unwrap(function)


@dataclass
class SGDResult:
    """Where the SGD epochs ended. ``weight`` (k,) and ``bias`` in the prepared units."""

    weight: np.ndarray
    bias: float
    epochs: int
    converged: bool
    history: list[float] = field(default_factory=list)
    grad_max: float = math.nan


def progress_bar(
    total: int, progress: bool | None, desc: str = "epochs", unit: str = "epoch"
) -> Any:
    """A tqdm bar on stderr, or None: ``progress=None`` shows it only on a terminal."""
    show = sys.stderr.isatty() if progress is None else progress
    if not show:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, leave=True)


def run_sgd(
    module: torch.nn.Linear,
    features: torch.Tensor,
    target: torch.Tensor,
    *,
    lr: float,
    momentum: float,
    batch_size: int | None,
    max_epochs: int,
    tol: float,
    early_stop: bool,
    generator: torch.Generator,
    loss_scale: float,
    diverged: Callable[[int, float, float], str],
    bar: Any = None,
) -> SGDResult:
    """Train ``module`` on ``features`` (n, k) and ``target`` (n, 1) in place.

    Each epoch first evaluates the full-data loss and gradient (the history, the
    divergence guard and the convergence test read them: the largest absolute
    gradient component at most ``tol``), then steps once (full batch) or once per
    shuffled mini-batch. ``loss_scale`` converts the loss to the target's raw units
    for the history; ``diverged(epoch, first, value)`` words the
    :class:`DivergenceError`.
    """
    n = features.shape[0]
    loss_fn = torch.nn.MSELoss()
    optimizer = EagerSGD(module.parameters(), lr=lr, momentum=momentum)
    full_batch = batch_size is None or batch_size >= n
    history: list[float] = []
    converged, epoch, rising, grad_max = False, 0, 0, math.inf
    try:
        for epoch in range(1, max_epochs + 1):
            optimizer.zero_grad()
            loss = loss_fn(module(features), target)
            loss.backward()
            value = loss.detach().item() * loss_scale
            history.append(value)
            rising = rising + 1 if len(history) > 1 and value > history[-2] else 0
            if not math.isfinite(value) or value > 100.0 * history[0] or rising >= 100:
                raise DivergenceError(diverged(epoch, history[0], value))
            grad_max = max(
                float(p.grad.abs().max()) for p in module.parameters() if p.grad is not None
            )
            if bar is not None and (epoch % 50 == 0 or epoch == 1):
                bar.set_postfix(loss=f"{value:.6g}", grad=f"{grad_max:.2g}", refresh=False)
                bar.update(epoch - bar.n)
            if grad_max <= tol:
                converged = True
                if early_stop:
                    break
            if full_batch:
                optimizer.step()
            else:
                assert batch_size is not None
                for idx in torch.randperm(n, generator=generator).split(batch_size):
                    optimizer.zero_grad()
                    loss_fn(module(features[idx]), target[idx]).backward()
                    optimizer.step()
    finally:
        if bar is not None:
            if history:
                bar.set_postfix(loss=f"{history[-1]:.6g}", refresh=False)
            bar.total = epoch  # the bar ends full at the epoch where training stopped
            bar.update(epoch - bar.n)
            bar.close()
    if not early_stop:  # "converged" then says whether the gradient is small at the end
        converged = _gradient_max(module, features, target) <= tol
    weight = module.weight.detach().to(torch.float64).numpy().reshape(-1).copy()
    bias = float(module.bias.detach().to(torch.float64)) if module.bias is not None else 0.0
    return SGDResult(weight, bias, epoch, converged, history, grad_max)


def _gradient_max(module: torch.nn.Linear, features: torch.Tensor, target: torch.Tensor) -> float:
    module.zero_grad()
    torch.nn.functional.mse_loss(module(features), target).backward()
    return max(float(p.grad.abs().max()) for p in module.parameters() if p.grad is not None)


def sgd_projection(
    features: torch.Tensor, fit_intercept: bool
) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """One SGD step from zero with ``lr = 1/2`` on orthonormal ``features`` (n, k),
    ``featuresᵀ features / n = I``: the exact least-squares fit of a target.

    Returns ``project(target)`` for a target (n,), giving ``(θ (k,), bias, fitted (n,))``
    in float64 (the step itself runs in the features' dtype).
    """
    n, k = features.shape
    dtype = features.dtype
    layer = torch.nn.Linear(k, 1, bias=fit_intercept, dtype=dtype)
    loss_fn = torch.nn.MSELoss()

    def project(target: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        scale = float(np.sqrt(np.mean(np.square(target)))) or 1.0
        t = torch.from_numpy(np.ascontiguousarray(target / scale)).to(dtype).reshape(-1, 1)
        with torch.no_grad():
            for p in layer.parameters():
                p.zero_()
        optimizer = EagerSGD(layer.parameters(), lr=0.5)
        optimizer.zero_grad()
        loss_fn(layer(features), t).backward()
        optimizer.step()
        with torch.no_grad():
            fitted = layer(features).to(torch.float64).numpy().reshape(-1) * scale
        theta = layer.weight.detach().to(torch.float64).numpy().reshape(-1) * scale
        bias = (
            np.asarray(float(layer.bias.detach().to(torch.float64)) * scale)
            if layer.bias is not None
            else np.asarray(0.0)
        )
        return theta, bias, fitted

    return project
