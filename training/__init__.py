"""Training: load a table, fit ``torch.nn.Linear`` with SGD, report statistics, export.

The package is divided by what each part does:

- :mod:`training.data`: tables from files and the bundled data sets;
- :mod:`training.solver`: the exact SGD solver and the scikit-learn estimator;
- :mod:`training.stats`: statistics and the summary table;
- :mod:`training.pipeline`: one training run (:func:`train`, :class:`TrainingRun`);
- :mod:`training.chunked`: fits larger than memory, streamed or on Dask;
- :mod:`training.export`: the ONNX and TorchScript export, proven before written;
- :mod:`training.bench`: ``linreg bench``, every backend side by side;
- :mod:`training.defaults` and :mod:`training.errors`: presets and error classes.

Names are imported lazily so that ``linreg predict`` and ``linreg info`` work in an
environment with the inference part only (no torch).
"""

from __future__ import annotations

from training.lazy import lazy_names

__all__ = [
    "PRESETS",
    "CollinearityWarning",
    "ConvergenceWarning",
    "DataError",
    "DivergenceError",
    "ExportError",
    "LinearRegressionSGD",
    "Table",
    "TrainingRun",
    "UnsupportedModelError",
    "export_model",
    "load_dataset",
    "load_table",
    "regression_statistics",
    "summary_table",
    "train",
]

_WHERE = {
    "PRESETS": "training.defaults",
    "CollinearityWarning": "training.errors",
    "ConvergenceWarning": "training.solver.estimator",
    "DataError": "training.errors",
    "DivergenceError": "training.errors",
    "ExportError": "training.errors",
    "LinearRegressionSGD": "training.solver.estimator",
    "Table": "training.data",
    "TrainingRun": "training.pipeline",
    "UnsupportedModelError": "training.errors",
    "export_model": "training.export.exporter",
    "load_dataset": "training.data",
    "load_table": "training.data",
    "regression_statistics": "training.stats",
    "summary_table": "training.stats",
    "train": "training.pipeline",
}

__getattr__ = lazy_names(__name__, _WHERE)
