"""Export a fitted model: the ONNX graph, the TorchScript file and the manifest, each
proven equal to the fit before the directory appears.

- :mod:`.graph`: the ONNX graph (:func:`~training.export.graph.build_onnx`);
- :mod:`.exporter`: :func:`export_model`, which writes and proves every artifact;
- :mod:`.verify`: the proof, and the choice of the export's dtype;
- :mod:`.publish`: moving the verified directory into place atomically;
- :mod:`.plots`: the PNG plots written beside the model.

Names are imported on first use: :mod:`.publish` needs neither torch nor onnx.
"""

from __future__ import annotations

from training.lazy import lazy_names

__all__ = ["ExportError", "build_onnx", "choose_dtype", "export_model"]

_WHERE = {
    "ExportError": "training.errors",
    "build_onnx": "training.export.graph",
    "choose_dtype": "training.export.verify",
    "export_model": "training.export.exporter",
}

__getattr__ = lazy_names(__name__, _WHERE)
