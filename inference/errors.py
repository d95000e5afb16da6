"""Error types of the inference runtime. Each message says what came, what was
expected and where (file, row, column)."""

from __future__ import annotations

__all__ = ["InputError", "ModelLoadError", "ProviderError"]


class InputError(ValueError):
    """Input to ``Predictor.predict`` that cannot be scored."""


class ModelLoadError(ValueError):
    """A model directory, manifest or ONNX file that cannot be loaded safely."""


class ProviderError(RuntimeError):
    """The execution providers asked for cannot be had (strict mode, or unknown)."""
