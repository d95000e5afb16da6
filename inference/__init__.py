"""Inference runtime for exported linear models: numpy and onnxruntime, no torch.

>>> from inference import Predictor
>>> model = Predictor.load("exported_models/plant_richness_lr")
>>> model.predict_one(area=3.0)
"""

from __future__ import annotations

from inference.errors import BatchError, InputError, ModelLoadError, ProviderError
from inference.intervals import IntervalPrediction
from inference.manifest import Manifest
from inference.predictor import Predictor

__version__ = "0.1.0"

__all__ = [
    "BatchError",
    "InputError",
    "IntervalPrediction",
    "Manifest",
    "ModelLoadError",
    "Predictor",
    "ProviderError",
    "__version__",
]
