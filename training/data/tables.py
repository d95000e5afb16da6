"""A training table in memory, and the checks every loader applies to it.

:class:`Table` holds float64 features ``X`` of shape ``(n_samples, n_features)`` and
target ``y`` of shape ``(n_samples,)``, both finite; :func:`validate_xy` checks
them, :func:`wanted_columns` checks a file's header against the columns asked for.
Both raise :class:`~training.errors.DataError` saying what and where.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.errors import DataError

__all__ = ["Table", "validate_xy", "wanted_columns"]


@dataclass(frozen=True)
class Table:
    """Features and target ready for fitting.

    X : ndarray of shape (n_samples, n_features), float64
    y : ndarray of shape (n_samples,), float64
    """

    X: np.ndarray
    y: np.ndarray
    features: list[str]
    target: str
    source: str

    @property
    def n_samples(self) -> int:
        return int(self.X.shape[0])


def wanted_columns(
    path: Path, columns: list[str], target: str, features: Sequence[str] | None
) -> list[str]:
    """The feature columns to read, after checking the header against the request."""
    repeated = sorted(c for c, n in Counter(columns).items() if n > 1)
    if repeated or "" in columns:
        what = f"repeats column name(s) {repeated}" if repeated else "has an empty column name"
        raise DataError(f"{path}: the header {what}; the file has columns {columns}")
    wanted = [c for c in columns if c != target] if features is None else list(features)
    if not wanted:
        raise DataError(f"{path}: no feature columns (columns are {columns})")
    if len(set(wanted)) != len(wanted):
        raise DataError(f"{path}: feature names repeat: {wanted}")
    if target in wanted:
        raise DataError(f"{path}: the target {target!r} is also listed as a feature")
    missing = [c for c in [*wanted, target] if c not in columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}; the file has columns {columns}")
    return wanted


def validate_xy(
    X: np.ndarray, y: np.ndarray, *, source: str = "input", fit_intercept: bool = True
) -> None:
    """Check shapes, finiteness and that there are more rows than parameters."""
    if X.ndim != 2:
        raise DataError(f"{source}: X must be 2-D (n_samples, n_features), got shape {X.shape}")
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise DataError(f"{source}: y must have shape ({X.shape[0]},), got {y.shape}")
    n, k = X.shape
    if k == 0:
        raise DataError(f"{source}: X has no feature columns")
    for name, arr in (("X", X), ("y", y)):
        bad = np.argwhere(~np.isfinite(arr))
        if bad.size:
            where = (
                f"row {bad[0][0] + 1}, column {bad[0][1] + 1}"
                if arr.ndim == 2
                else f"row {bad[0][0] + 1}"
            )
            raise DataError(f"{source}: {name} has a NaN or infinite value at {where}")
    n_params = k + 1 if fit_intercept else k
    if n <= n_params:
        raise DataError(
            f"{source}: {n} row(s) is too few: a model with {k} feature(s) has {n_params} "
            f"parameters and needs at least {n_params + 1} rows (one residual degree of freedom)"
        )
