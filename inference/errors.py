"""Error types of the inference runtime, and the base class of every error the project
raises on purpose. Each message says what came, what was expected and where (file,
row, column).

``except LinregError`` catches all of them, the training package's included
(:mod:`training.errors`); each also derives from the built-in exception a caller
would expect (``ValueError`` for bad input, ``RuntimeError`` for a failed run), as
scikit-learn's errors do.
"""

from __future__ import annotations

__all__ = [
    "BatchError",
    "CoefficientError",
    "IgnoredColumnsWarning",
    "InputError",
    "LineTooLongError",
    "LinregError",
    "ModelLoadError",
    "ProviderError",
    "SignatureError",
    "UnknownLevelWarning",
    "UsageError",
]


class LinregError(Exception):
    """The base class of every error linreg-onnx raises on purpose."""


class InputError(LinregError, ValueError):
    """Input to ``Predictor.predict`` that cannot be scored."""


class UsageError(LinregError, ValueError):
    """An argument no call could use, or arguments that contradict each other: the
    call is wrong, not the data (the command line exits with status 2 for it)."""


class IgnoredColumnsWarning(UserWarning):
    """Columns (DataFrame columns, dict keys, record keys) that the model does not read
    were ignored; ``strict_columns=True`` makes them an :class:`InputError` instead."""


class UnknownLevelWarning(UserWarning):
    """Values of a factor that are not levels of the model, scored as no level (every
    indicator 0) because the model says so (``unknown: "zero"`` in its design, from an
    exported ``OneHotEncoder(handle_unknown="ignore")``); other models refuse them."""


class ModelLoadError(LinregError, ValueError):
    """A model directory, manifest or ONNX file that cannot be loaded safely."""


class CoefficientError(ModelLoadError):
    """A model directory whose manifest states coefficients other than those its graph
    computes with, or whose graph is not of a form they can be checked against
    (:mod:`inference.coefficients`)."""


class SignatureError(ModelLoadError):
    """A model directory whose signature is missing, invalid, made by a key that is not
    trusted, or that does not cover its files as they are (:mod:`inference.signing`)."""


class ProviderError(LinregError, RuntimeError):
    """The execution providers asked for cannot be had (strict mode, or unknown)."""


class BatchError(LinregError, ValueError):
    """A batch scoring job that cannot go on: a bad row, a missing column, an unreadable file.

    Attributes
    ----------
    reason : str
        What was wrong, without the location.
    file : str or None
    line : int or None
        1-based line number in a CSV or TSV file (the header is line 1).
    row : int or None
        1-based data row number in the file (for Parquet, the only location).
    column : str or None
    """

    def __init__(
        self,
        reason: str,
        *,
        file: str | None = None,
        line: int | None = None,
        row: int | None = None,
        column: str | None = None,
    ) -> None:
        self.reason = reason
        self.file = file
        self.line = line
        self.row = row
        self.column = column
        where = [str(file)] if file is not None else []
        if line is not None:
            where.append(f"line {line}")
        elif row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column {column!r}")
        super().__init__(f"{', '.join(where)}: {reason}" if where else reason)

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:  # keep keywords through pickle
        return (
            _rebuild_batch_error,
            (self.reason, self.file, self.line, self.row, self.column),
        )


def _rebuild_batch_error(
    reason: str, file: str | None, line: int | None, row: int | None, column: str | None
) -> BatchError:
    return BatchError(reason, file=file, line=line, row=row, column=column)


class LineTooLongError(BatchError):
    """A line of a CSV or TSV file longer than the readers' limit (``max_line_bytes``,
    ``--max-line-bytes``): refused before any parser sees it, reading no further than
    the limit. ``limit`` holds the limit in bytes; ``line`` the 1-based line."""

    def __init__(self, *, file: str, line: int, limit: int) -> None:
        super().__init__(
            f"the line is longer than the limit of {limit:,} bytes; raise it with "
            "--max-line-bytes (max_line_bytes= in Python) if the file is trusted",
            file=file,
            line=line,
        )
        self.limit = limit

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return (_rebuild_line_error, (self.file, self.line, self.limit))


def _rebuild_line_error(file: str, line: int, limit: int) -> LineTooLongError:
    return LineTooLongError(file=file, line=line, limit=limit)
