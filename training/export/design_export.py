"""What the export writes differently for a model fitted on raw columns (a design).

The ONNX graph takes the raw columns (:mod:`training.export.design_graph`); the
TorchScript file keeps ``nn.Linear`` on the design matrix, whose columns the manifest's
``design`` section describes (torch has no string tensors, so the encoding cannot go
in); the manifest is format version 2 (:mod:`inference.manifest`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx

from inference.manifest import DESIGN_FORMAT_VERSION, OUTPUT_NAME
from training.export.design_graph import build_design_onnx
from training.export.graph import OPSET
from training.pipeline import TrainingRun

__all__ = ["design_example_rows", "design_manifest_fields", "design_onnx"]

_INPUT_DTYPES = {"str": "string", "bool": "string", "int": "int64"}


def design_onnx(run: TrainingRun, dtype: str, name: str) -> onnx.ModelProto:
    """The graph of ``run`` (fitted on ``run.design``'s columns) in ``dtype``."""
    est = run.estimator
    return build_design_onnx(
        run.design, est.coef_, est.intercept_, target=run.target, dtype=dtype, name=name
    )


def design_manifest_fields(run: TrainingRun, dtype: str) -> dict[str, Any]:
    """The manifest fields a design model writes in place of a numeric model's."""
    design = run.design
    p = len(design.columns)
    inputs = [
        {
            "name": spec.name,
            "shape": ["batch"],
            "dtype": dtype if spec.kind == "numeric" else _INPUT_DTYPES[spec.type],
        }
        for spec in design.inputs
    ]
    return {
        "format_version": DESIGN_FORMAT_VERSION,
        "features": design.input_names,
        "design": design.to_dict(),
        "anova": [row.to_dict() for row in run.anova] if run.anova else None,
        "onnx": {
            "inputs": inputs,
            "output": {"name": OUTPUT_NAME, "shape": ["batch"], "dtype": dtype},
            "opset": OPSET,
            "graph": "one input per raw column: LabelEncoder for each factor, Gather of level "
            "coefficients, Gemm of the numeric design columns, summed with the bias"
            + (
                "; Where(IsNaN(x), fill, x) for each input with a fill"
                if any(spec.fill is not None for spec in design.inputs)
                else ""
            ),
        },
        "torchscript": {
            "input_shape": ["batch", p],
            "output_shape": ["batch", 1],
            "input": "the design matrix: columns as the manifest's design.columns",
        },
    }


def design_example_rows(run: TrainingRun) -> list[list[Any]]:
    """Two example rows of raw columns: each number's mean minus and plus one standard
    deviation (4 significant digits), each factor's reference level."""
    rows: list[list[Any]] = [[], []]
    for spec in run.design.inputs:
        if spec.kind == "numeric":
            values = np.asarray(run.raw_train[spec.name], dtype=np.float64)
            mean, std = np.nanmean(values), np.nanstd(values)  # gaps an imputer fills
            rows[0].append(float(f"{mean - std:.4g}"))
            rows[1].append(float(f"{mean + std:.4g}"))
        else:
            level = spec.reference or spec.levels[0]
            value: Any = int(level) if spec.type == "int" else level
            rows[0].append(value)
            rows[1].append(value)
    return rows
