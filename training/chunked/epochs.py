"""SGD epochs over chunks of rows: the core that the streamed and the Dask fits share.

Each epoch measures the full-data loss and gradient at the current parameters (a
pass over the chunks, or one task per Dask partition), which the history, the
divergence guard and the convergence test read, as in
:func:`training.solver.sgd.run_sgd`; full batch then takes one ``torch.optim.SGD``
step (``lr = 1/2``, exact on the orthogonalized features), mini-batches stream the
chunks again with shuffled batches within each chunk.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from training.chunked.sources import ChunkSource, Measurement, PassLog, timed_pass
from training.chunked.tsqr import Factor
from training.errors import DataError, DivergenceError

if TYPE_CHECKING:
    import torch

__all__ = ["EpochsResult", "measure_torch", "minibatch_pass", "run_epochs"]


def measure_torch(
    source: ChunkSource,
    factor: Factor,
    module: torch.nn.Linear,
    tdtype: torch.dtype,
    log: PassLog,
    progress: bool | None,
    row_norms: bool,
) -> Measurement:
    """The loss and its gradient over all chunks, accumulated in ``.grad`` by autograd.

    The layer acts on ``U = Xc W`` (``Xc`` the scaled, centered chunk); its forward is
    evaluated as ``Xc (W θ) + b``, a matrix-vector product per chunk instead of the
    matrix product that forming ``U`` takes (``k`` times the work), and autograd gives
    the same gradient ``Wᵀ Xcᵀ r`` = ``Uᵀ r``. ``row_norms``: also measure
    ``max_i |u_i|²`` (forming ``U``), which the mini-batch learning rate needs.
    """
    import torch

    n = factor.n
    module.zero_grad()
    acc = {"loss": 0.0, "abs": 0.0, "y": 0.0, "max": 0.0}
    extra = 1.0 if factor.fit_intercept else 0.0
    W = torch.from_numpy(factor.W).to(tdtype)

    def add(X: np.ndarray, y: np.ndarray) -> None:
        Xc = factor.centered(X)
        if row_norms:
            U = Xc @ factor.W
            acc["max"] = max(acc["max"], float(np.max(np.sum(U**2, axis=1))) + extra)
        t = torch.from_numpy((y - factor.y_shift) / factor.y_scale).to(tdtype).reshape(-1, 1)
        r = (
            torch.nn.functional.linear(
                torch.from_numpy(Xc).to(tdtype), module.weight @ W.T, module.bias
            )
            - t
        )
        loss = (r**2).sum() / n
        loss.backward()
        acc["loss"] += float(loss.detach())
        acc["abs"] += float(r.detach().abs().sum())
        acc["y"] += float(y.sum())

    rows = timed_pass(source, "epoch", log, progress, n, add)
    if rows != n:
        raise DataError(f"a pass over the data gave {rows} rows, the first gave {n}")
    grad_b = float(module.bias.grad) if module.bias is not None else 0.0  # type: ignore[arg-type]
    assert module.weight.grad is not None
    return Measurement(
        acc["loss"],
        module.weight.grad.detach().to(torch.float64).numpy().reshape(-1).copy(),
        grad_b,
        acc["abs"],
        acc["y"],
        acc["max"],
        rows,
    )


def minibatch_pass(
    source: ChunkSource,
    factor: Factor,
    module: torch.nn.Linear,
    optimizer: Any,
    tdtype: torch.dtype,
    batch_size: int,
    generator: torch.Generator,
    log: PassLog,
    progress: bool | None,
) -> None:
    """One epoch of shuffled mini-batches within each chunk."""
    import torch

    loss_fn = torch.nn.MSELoss()

    def add(X: np.ndarray, y: np.ndarray) -> None:
        U = torch.from_numpy(factor.orthogonal(X)).to(tdtype)
        t = torch.from_numpy((y - factor.y_shift) / factor.y_scale).to(tdtype).reshape(-1, 1)
        for idx in torch.randperm(len(y), generator=generator).split(batch_size):
            optimizer.zero_grad()
            loss_fn(module(U[idx]), t[idx]).backward()
            optimizer.step()

    timed_pass(source, "mini-batches", log, progress, factor.n, add)


@dataclass
class EpochsResult:
    """Where the epochs ended: raw parameters, the final measurement and the history."""

    params: np.ndarray
    final: Measurement
    epochs: int
    converged: bool
    lr: float
    history: list[float]
    grad_max: float


def run_epochs(
    factor: Factor,
    measure: Callable[[torch.nn.Linear, bool], Measurement],
    *,
    lr: float | None,
    momentum: float,
    max_epochs: int,
    tol: float,
    early_stop: bool,
    fit_intercept: bool,
    seed: int,
    dtype: str,
    step_pass: Callable[[torch.nn.Linear, Any], None] | None = None,
    minibatch: bool = False,
) -> tuple[EpochsResult, torch.nn.Linear]:
    """SGD epochs on ``nn.Linear`` over the orthogonalized features.

    ``measure(module, first)`` measures the loss and gradient at the module's
    parameters over all the data and leaves the gradient in ``.grad``; full batch then
    steps once, mini-batches call ``step_pass(module, optimizer)``. Ends with a
    measurement at the final parameters (the residual sum of squares of the statistics).
    """
    import torch

    from training.solver.sgd import TORCH_DTYPES, EagerSGD

    tdtype = TORCH_DTYPES[dtype]
    k = factor.k
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = torch.nn.Linear(k, 1, bias=fit_intercept, dtype=tdtype)
    loss_scale = factor.y_scale**2
    history: list[float] = []
    optimizer = None
    chosen = lr
    epochs, converged, rising = 0, False, 0
    while True:
        m = measure(module, epochs == 0)
        value = m.loss * loss_scale
        history.append(value)
        rising = rising + 1 if len(history) > 1 and value > history[-2] else 0
        if not math.isfinite(value) or value > 100.0 * history[0] or rising >= 100:
            raise DivergenceError(
                f"training diverged at epoch {epochs + 1}: the MSE went from {history[0]:.4g} "
                f"to {value:.4g} with lr={chosen}; leave lr unset to have it chosen"
            )
        grad_max = max(float(np.max(np.abs(m.grad_theta))), abs(m.grad_bias))
        converged = grad_max <= tol
        if (converged and early_stop) or epochs == max_epochs:
            break
        if optimizer is None:
            if chosen is None:
                chosen = 1.0 / m.max_row if minibatch else 0.5  # 2 / (λmax + λmin), H = 2I
            optimizer = EagerSGD(module.parameters(), lr=chosen, momentum=momentum)
        if minibatch:
            assert step_pass is not None
            step_pass(module, optimizer)
        else:
            with torch.no_grad():
                module.weight.grad = torch.from_numpy(m.grad_theta.reshape(1, -1)).to(tdtype)
                if module.bias is not None:
                    module.bias.grad = torch.tensor([m.grad_bias], dtype=tdtype)
            optimizer.step()
        epochs += 1
    weight = module.weight.detach().to(torch.float64).numpy().reshape(-1).copy()
    bias = float(module.bias.detach().to(torch.float64)) if module.bias is not None else 0.0
    params = factor.to_params(weight, bias)
    if not np.all(np.isfinite(params)):
        raise DivergenceError(f"training diverged: non-finite parameters after {epochs} epochs")
    result = EpochsResult(
        params, m, max(epochs, 1), converged, float(chosen or 0.5), history, grad_max
    )
    return result, module
