"""Errors of the training package that more than one module raises."""

from __future__ import annotations

__all__ = ["ExportError"]


class ExportError(RuntimeError):
    """The export failed; nothing was written at the destination."""
