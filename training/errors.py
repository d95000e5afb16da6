"""Every error and warning class of the training package, in one place.

All errors derive from :class:`inference.errors.LinregError` (so ``except
LinregError`` catches the runtime's and the training package's alike) and from the
built-in exception a caller would expect. :class:`~training.solver.estimator.ConvergenceWarning`
lives with the estimator, as it derives from scikit-learn's.
"""

from __future__ import annotations

from inference.errors import LinregError

__all__ = [
    "CollinearityWarning",
    "DataError",
    "DivergenceError",
    "ExportError",
    "LinregError",
    "UnsupportedModelError",
]


class DataError(LinregError, ValueError):
    """A training table that cannot be used, with where and why."""


class DivergenceError(LinregError, RuntimeError):
    """Training stopped because the loss became NaN, infinite or kept growing."""


class ExportError(LinregError, RuntimeError):
    """The export failed; nothing was written at the destination."""


class UnsupportedModelError(LinregError, ValueError):
    """The model handed to the export is not one it can turn into one linear graph."""


class CollinearityWarning(UserWarning):
    """The design's condition number is large (statsmodels' note)."""
