"""Tensors of V2 gRPC requests and responses (``ModelInferRequest``, ``ModelInferResponse``).

An input's data come either in ``raw_input_contents`` (one entry per input, in input
order: little-endian bytes, what ``tritonclient.grpc`` sends) or in the input's typed
``contents`` (``fp32_contents``, ``int64_contents``, ...). As over HTTP, a request
carries one tensor of shape ``[n, k]`` or one tensor per feature (``[n]`` or
``[n, 1]``, named as the features). Outputs always go back in ``raw_output_contents``,
as Triton sends them. Request parameters ``interval`` (string) and ``level`` (double)
add FP64 outputs ``lower`` and ``upper``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from inference.inputs import as_matrix
from inference.serve.proto import grpc_service_pb2 as pb
from inference.serve.registry import LoadedModel
from inference.serve.responses import ApiError
from inference.serve.v2 import DATATYPES

__all__ = ["infer_response", "parameter", "request_matrix"]

#: the typed ``contents`` field of each datatype (FP16 has none: raw bytes only)
CONTENTS = {
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
}
_NAMES = {np.dtype(np.float32): "FP32", np.dtype(np.float64): "FP64"}


def parameter(params: Any, key: str) -> Any:
    """The value of ``params[key]`` (an ``InferParameter`` map), or None."""
    if key not in params:
        return None
    p = params[key]
    kind = p.WhichOneof("parameter_choice")
    return getattr(p, kind) if kind else None


def _shape(tensor: Any, where: str, features: list[str], max_rows: int) -> list[int]:
    shape = list(tensor.shape)
    if not shape or min(shape) < 0:
        raise ApiError(400, f"{where}: shape {shape} is not a list of non-negative integers")
    if len(shape) > 2:
        raise ApiError(422, f"{where}: shape {shape} has {len(shape)} dimensions; expected 1 or 2")
    if shape[0] > max_rows:
        raise ApiError(413, f"{where}: {shape[0]} rows, above the limit of {max_rows}")
    if len(shape) == 2 and shape[1] not in (1, len(features)):
        raise ApiError(
            422,
            f"{where}: shape {shape}: X has {shape[1]} features, but the model expects "
            f"{len(features)}: {features} (or one [n] or [n, 1] tensor per feature)",
        )
    return shape


def _tensor(tensor: Any, raw: bytes | None, where: str, model: LoadedModel, max_rows: int) -> Any:
    shape = _shape(tensor, where, model.predictor.features, max_rows)
    dtype = DATATYPES.get(tensor.datatype)
    if dtype is None:
        raise ApiError(
            422,
            f"{where}: datatype {tensor.datatype!r} is not supported; "
            f"expected one of {list(DATATYPES)}",
        )
    count = math.prod(shape)
    if raw is not None:
        if len(raw) != count * dtype.itemsize:
            raise ApiError(
                400,
                f"{where}: {len(raw)} bytes of raw_input_contents for shape {shape} of "
                f"{tensor.datatype} ({count * dtype.itemsize} bytes expected)",
            )
        return np.frombuffer(raw, dtype=dtype).reshape(shape)
    field = CONTENTS.get(tensor.datatype)
    if field is None or not tensor.HasField("contents"):
        raise ApiError(400, f"{where}: no contents and no raw_input_contents")
    values = getattr(tensor.contents, field)
    if len(values) != count:
        raise ApiError(
            422, f"{where}: {field} has {len(values)} values, shape {shape} needs {count}"
        )
    try:
        return np.asarray(values, dtype=dtype).reshape(shape)
    except OverflowError as exc:
        raise ApiError(422, f"{where}: {field}: {exc}") from None


def request_matrix(request: Any, model: LoadedModel, max_rows: int) -> np.ndarray:
    """The (n, k) matrix, in the model's dtype, of a ``ModelInferRequest``."""
    inputs: Sequence[Any] = request.inputs
    raw = request.raw_input_contents
    if not inputs:
        raise ApiError(400, "the request has no inputs")
    if raw and len(raw) != len(inputs):
        raise ApiError(400, f"raw_input_contents has {len(raw)} entries for {len(inputs)} inputs")
    p = model.predictor
    tensors = []
    for i, tensor in enumerate(inputs):
        where = f"input {tensor.name!r}" if tensor.name else f"inputs[{i}]"
        tensors.append(
            (tensor.name, _tensor(tensor, raw[i] if raw else None, where, model, max_rows))
        )
    if len(tensors) == 1 and not (len(p.features) == 1 and tensors[0][1].ndim == 1):
        X = tensors[0][1]
        if X.ndim == 1:
            raise ApiError(
                422,
                f"input {tensors[0][0]!r} has shape {list(X.shape)}; expected [n, "
                f"{len(p.features)}] (or one [n] tensor per feature: {p.features})",
            )
        return as_matrix(X, p.features, p.dtype)
    columns = {}
    for name, arr in tensors:
        if arr.ndim == 2 and arr.shape[1] != 1:
            raise ApiError(
                422, f"input {name!r} has shape {list(arr.shape)}; expected [n] or [n, 1]"
            )
        columns[str(name)] = arr.reshape(-1)
    if len(p.features) == 1 and len(tensors) == 1 and tensors[0][0] not in p.features:
        columns = {p.features[0]: tensors[0][1]}
    return as_matrix(columns, p.features, p.dtype)


def infer_response(model: LoadedModel, request: Any, outputs: dict[str, np.ndarray]) -> Any:
    """The ``ModelInferResponse`` holding the requested ``outputs`` (all when none is
    named), as raw little-endian bytes."""
    wanted = [o.name for o in request.outputs] or list(outputs)
    response = pb.ModelInferResponse(
        model_name=model.name, model_version=model.version, id=request.id
    )
    for name in wanted:
        if name not in outputs:
            raise ApiError(400, f"no output {name!r}; this model has {list(outputs)}")
        y = outputs[name]
        response.outputs.add(name=name, datatype=_NAMES[y.dtype], shape=[len(y)])
        response.raw_output_contents.append(
            y.astype(y.dtype.newbyteorder("<"), copy=False).tobytes()
        )
    return response
