"""Training: load a table, fit ``torch.nn.Linear`` with SGD, report statistics, export.

Names are imported lazily so that ``linreg predict`` and ``linreg info`` work in an
environment with the inference part only (no torch).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__all__ = [
    "DataError",
    "DivergenceError",
    "ExportError",
    "LinearRegressionSGD",
    "UnsupportedModelError",
    "export_model",
    "load_dataset",
    "load_table",
    "regression_statistics",
]

_WHERE = {
    "DataError": "training.data",
    "load_dataset": "training.data",
    "load_table": "training.data",
    "DivergenceError": "training.fit",
    "LinearRegressionSGD": "training.fit",
    "regression_statistics": "training.stats",
    "ExportError": "training.export",
    "UnsupportedModelError": "training.folding",
    "export_model": "training.export",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'training' has no attribute {name!r}")
