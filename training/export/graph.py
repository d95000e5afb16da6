"""The exported ONNX graph, written directly from the fitted parameters.

The ONNX graph is written directly from the fitted ``nn.Linear`` parameters as
``prediction = Reshape(Gemm(W, features, b, transB=1), [-1])``: ``W`` is the
(1, k) weight row, so Gemm computes ``W · featuresᵀ``, a (1, batch) row, and the
Reshape (a view, no copy) makes it the 1-D (batch,) vector users expect. In ONNX
Runtime's CPU kernels this orientation (M = 1, N = batch) streams the input once;
the textbook ``features · Wᵀ`` (N = 1) runs MLAS's GEMM with a single output
column and was 2 to 6 times slower at a million rows here. With one feature the
graph is ``Reshape(features, [-1]) * w + b``, elementwise, which beats every
Gemm (README, "Why this graph"). The graph has no timestamps, so the same
parameters give the same bytes.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from inference import __version__ as package_version
from inference.manifest import INPUT_NAME, OUTPUT_NAME

__all__ = ["IR_VERSION", "OPSET", "build_onnx", "graph_description"]

#: opset 17 runs on onnxruntime 1.13 and later (pyproject.toml asks for 1.24.1 or later)
OPSET = 17
IR_VERSION = 8
_ONNX_DTYPES = {"float32": TensorProto.FLOAT, "float64": TensorProto.DOUBLE}


def graph_description(n_features: int) -> str:
    """The exported graph in one line, as the manifest's ``onnx.graph`` records it."""
    if n_features == 1:
        return "Add(Mul(Reshape(features, [-1]), weight (1,)), bias)"
    return "Reshape(Gemm(weight (1,k), features, bias, transB=1), [-1])"


def build_onnx(
    coef: np.ndarray,
    intercept: float,
    *,
    features: list[str],
    target: str,
    dtype: str = "float32",
    name: str = "linreg",
) -> onnx.ModelProto:
    """ONNX model computing ``features @ coef + intercept``.

    coef : (n_features,) float. Input ``features`` (batch, n_features) and output
    ``prediction`` (batch,), both ``dtype``; feature names, target and dtype in
    ``metadata_props``. The graph is :func:`graph_description` of ``n_features``.
    """
    np_dtype = np.dtype(dtype)
    k = len(features)
    flat = numpy_helper.from_array(np.asarray([-1], dtype=np.int64), "flat_shape")
    bias = numpy_helper.from_array(np.asarray([intercept], dtype=np_dtype), "bias")
    if k == 1:
        # one feature: an elementwise multiply-add on the flattened column, several
        # times faster in onnxruntime than any Gemm (README, "Why this graph")
        weight = numpy_helper.from_array(np.asarray(coef, dtype=np_dtype).reshape(1), "weight")
        nodes = [
            helper.make_node("Reshape", [INPUT_NAME, "flat_shape"], ["column"], name="flat"),
            helper.make_node("Mul", ["column", "weight"], ["scaled"], name="scale"),
            helper.make_node("Add", ["scaled", "bias"], [OUTPUT_NAME], name="shift"),
        ]
    else:
        weight = numpy_helper.from_array(np.asarray(coef, dtype=np_dtype).reshape(1, k), "weight")
        nodes = [
            helper.make_node(
                "Gemm", ["weight", INPUT_NAME, "bias"], ["prediction_row"], transB=1, name="linear"
            ),
            helper.make_node(
                "Reshape", ["prediction_row", "flat_shape"], [OUTPUT_NAME], name="flat"
            ),
        ]
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info(INPUT_NAME, _ONNX_DTYPES[dtype], ["batch", k])],
        [helper.make_tensor_value_info(OUTPUT_NAME, _ONNX_DTYPES[dtype], ["batch"])],
        [weight, bias, flat],
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="linreg-onnx",
        producer_version=package_version,
        doc_string=f"Linear regression of {target} on {', '.join(features)}",
    )
    model.ir_version = IR_VERSION
    helper.set_model_props(
        model,
        {
            "linreg.features": json.dumps(features),
            "linreg.target": target,
            "linreg.dtype": dtype,
            "linreg.name": name,
        },
    )
    onnx.checker.check_model(model, full_check=True)
    return model
