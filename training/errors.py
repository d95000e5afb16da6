"""Every error and warning class of the training package, in one place.

All errors derive from :class:`inference.errors.LinregError` (so ``except
LinregError`` catches the runtime's and the training package's alike) and from the
built-in exception a caller would expect. :class:`~inference.errors.UsageError`
(arguments no call could use) is the runtime's, re-exported here.
:class:`~training.solver.estimator.ConvergenceWarning` lives with the estimator, as it
derives from scikit-learn's.
"""

from __future__ import annotations

from inference.errors import LinregError, UsageError

__all__ = [
    "CellError",
    "CollinearityWarning",
    "DataError",
    "DivergenceError",
    "ExportError",
    "LinregError",
    "UnsupportedModelError",
    "UsageError",
]


class DataError(LinregError, ValueError):
    """A training table that cannot be used, with where and why."""


class CellError(DataError):
    """A cell (or a column's type) that a table of numbers cannot hold. ``kind`` says
    which: ``"text"`` (a value that is not a number), ``"missing"`` (an empty cell, a
    null), ``"nonfinite"`` (NaN or inf written as such) or ``"type"`` (a column of
    another type). ``linreg train`` reads a table with text or gaps as a design
    (:mod:`training.formula`) when the numeric reader raises one of the first two."""

    def __init__(self, message: str, kind: str, column: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.column = column


class DivergenceError(LinregError, RuntimeError):
    """Training stopped because the loss became NaN, infinite or kept growing."""


class ExportError(LinregError, RuntimeError):
    """The export failed; nothing was written at the destination."""


class UnsupportedModelError(LinregError, ValueError):
    """The model handed to the export is not one it can turn into one linear graph."""


class CollinearityWarning(UserWarning):
    """The features are nearly collinear: the scaled condition number of the design is
    above 30 (Belsley-Kuh-Welsch) or a variance inflation factor above 10
    (:mod:`training.stats.collinearity`); the message names the columns."""
