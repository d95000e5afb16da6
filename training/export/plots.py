"""PNG plots written next to an exported model: the regression and the loss curve."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["plot_loss", "plot_regression"]

# Fixed metadata keeps the PNG bytes the same when a model is regenerated.
_PNG_METADATA = {"Software": None}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def plot_regression(
    path: str | Path,
    X: np.ndarray,
    y: np.ndarray,
    y_pred: np.ndarray,
    *,
    features: Sequence[str],
    target: str,
    coef: np.ndarray,
    intercept: float,
) -> None:
    """One feature: the points and the fitted line. Several: observed against predicted.

    X : (n_samples, n_features) float; y, y_pred : (n_samples,) float.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=100)
    if X.shape[1] == 1:
        ax.scatter(X[:, 0], y, s=18, label="observed")
        grid = np.linspace(X[:, 0].min(), X[:, 0].max(), 100)
        ax.plot(grid, coef[0] * grid + intercept, color="C3", label="fitted line")
        ax.set_xlabel(features[0])
        ax.set_ylabel(target)
        ax.set_title(f"{target} = {coef[0]:.4f} · {features[0]} + {intercept:.4f}")
    else:
        ax.scatter(y_pred, y, s=18, label="rows")
        lo, hi = float(min(y.min(), y_pred.min())), float(max(y.max(), y_pred.max()))
        ax.plot([lo, hi], [lo, hi], color="C3", label="y = ŷ")
        ax.set_xlabel(f"predicted {target}")
        ax.set_ylabel(f"observed {target}")
        ax.set_title(f"{target} on {', '.join(features)}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, format="png", metadata=_PNG_METADATA)
    plt.close(fig)


def plot_loss(path: str | Path, history: Sequence[float], *, title: str = "training loss") -> None:
    """MSE per epoch, log scale."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    ax.plot(np.arange(1, len(history) + 1), history)
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("MSE")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, format="png", metadata=_PNG_METADATA)
    plt.close(fig)
