"""The Open Inference Protocol ("V2") REST API, with Triton's binary tensor data.

Endpoints (``{name}`` is a model's directory name; each also answers under
``/v2/models/{name}/versions/{version}/...`` for each ready version):

- ``GET /v2/health/live``, ``GET /v2/health/ready``, ``GET /v2``
- ``GET /v2/models/{name}``: metadata (input ``features`` FP32/FP64 ``[-1, k]``,
  output ``prediction`` ``[-1]``), ``GET /v2/models/{name}/ready``
- ``POST /v2/models/{name}/infer``

An inference request carries either one tensor of shape ``[n, k]`` (the model's
input, whatever its name) or one tensor per feature, named as the features, of
shape ``[n]`` or ``[n, 1]``. Tensor data come as JSON (``data``, flat or nested)
or, with the binary data extension, as raw little-endian bytes after the JSON
header: the ``Inference-Header-Content-Length`` header gives the header's size
and each binary input's ``parameters.binary_data_size`` its byte count, in input
order. Outputs are binary when the requested output says ``binary_data: true`` or
the request's parameters say ``binary_data_output: true`` (what ``tritonclient``
sends by default). Request parameters ``interval`` ("confidence" or
"prediction") and ``level`` add FP64 outputs ``lower`` and ``upper``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import inference
from inference.errors import InputError
from inference.inputs import as_matrix
from inference.serve.limits import check_json
from inference.serve.matrix import release
from inference.serve.registry import LoadedModel
from inference.serve.responses import (
    INLINE_BODY_BYTES,
    ApiError,
    dumps,
    json_response,
    loads,
    unreadable,
)

__all__ = ["DATATYPES", "model_metadata", "routes"]

#: V2 datatypes accepted for inputs, and their little-endian numpy dtypes
DATATYPES: dict[str, np.dtype] = {
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
    "INT8": np.dtype("i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "UINT8": np.dtype("u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
}
_NAMES = {np.dtype(np.float32): "FP32", np.dtype(np.float64): "FP64"}
HEADER = "inference-header-content-length"


def model_metadata(model: LoadedModel, versions: list[str] | None = None) -> dict[str, Any]:
    """``versions``: the model's ready versions (default: ``model``'s alone)."""
    p = model.predictor
    manifest = p.manifest
    assert manifest is not None  # the registry serves model directories only
    dtype = _NAMES[p.dtype]
    return {
        "name": model.name,
        "versions": [model.version] if versions is None else versions,
        "platform": "onnxruntime_onnx",
        "inputs": [
            {"name": manifest.input_name, "datatype": dtype, "shape": [-1, len(p.features)]}
        ],
        "outputs": [{"name": manifest.output_name, "datatype": dtype, "shape": [-1]}],
        "parameters": {"features": p.features, "target": p.target, "sha256": model.sha256},
    }


def _fail(message: str, status: int = 400) -> ApiError:
    return ApiError(status, message)


def _shape(spec: dict[str, Any], where: str, features: list[str], max_rows: int) -> list[int]:
    """The tensor's shape, checked against the limit and the model before any array."""
    k = len(features)
    shape = spec.get("shape")
    if not (
        isinstance(shape, list)
        and shape
        and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
    ):
        raise _fail(f"{where}: 'shape' {shape!r} is not a list of non-negative integers")
    if len(shape) > 2:
        raise _fail(f"{where}: shape {shape} has {len(shape)} dimensions; expected 1 or 2", 422)
    if shape[0] > max_rows:
        raise _fail(f"{where}: {shape[0]} rows, above the limit of {max_rows}", 413)
    if len(shape) == 2 and shape[1] not in (1, k):
        raise _fail(
            f"{where}: shape {shape}: X has {shape[1]} features, but the model expects {k}: "
            f"{features} (or one [n] or [n, 1] tensor per feature)",
            422,
        )
    return shape


def _from_data(spec: dict[str, Any], where: str, shape: list[int], dtype: np.dtype) -> np.ndarray:
    """A tensor's JSON ``data`` (flat, or nested by rows) as an array of ``shape``."""
    count = math.prod(shape)
    if "data" not in spec:
        raise _fail(f"{where}: no 'data' and no binary_data_size parameter")
    data = spec["data"]
    if not isinstance(data, list):
        raise _fail(f"{where}: 'data' is a {type(data).__name__}; expected a list", 422)
    if len(data) not in (count, shape[0]):
        raise _fail(f"{where}: 'data' has {len(data)} values, shape {shape} needs {count}", 422)
    try:
        arr = np.asarray(data)
    except (ValueError, TypeError) as exc:
        raise _fail(f"{where}: 'data' is not a regular list of numbers ({exc})", 422) from None
    if arr.dtype.kind not in "iuf":
        if arr.size == 0:
            arr = arr.astype(dtype)
        else:
            raise _fail(f"{where}: 'data' holds {arr.dtype} values; expected numbers", 422)
    if arr.size != count:
        raise _fail(f"{where}: 'data' has {arr.size} values, shape {shape} needs {count}", 422)
    release(data)
    return arr.reshape(shape)  # as_matrix casts, refusing values beyond range


def _tensor(
    spec: Any, index: int, binary: memoryview, offset: int, model: LoadedModel, max_rows: int
) -> tuple[np.ndarray, int]:
    """Input ``index`` as an array of its shape, and the binary offset after it."""
    if not isinstance(spec, dict):
        raise _fail(f"inputs[{index}] is a {type(spec).__name__}; expected an object")
    name = spec.get("name")
    datatype = spec.get("datatype")
    where = f"input {name!r}" if isinstance(name, str) else f"inputs[{index}]"
    features = model.predictor.features
    shape = _shape(spec, where, features, max_rows)
    dtype = DATATYPES.get(datatype) if isinstance(datatype, str) else None
    if dtype is None:
        raise _fail(
            f"{where}: datatype {datatype!r} is not supported; expected one of {list(DATATYPES)}",
            422,
        )
    params = spec.get("parameters") or {}
    if not isinstance(params, dict):
        raise _fail(f"{where}: 'parameters' must be an object")
    size = params.get("binary_data_size")
    if size is None:
        return _from_data(spec, where, shape, dtype), offset
    count = math.prod(shape)
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise _fail(f"{where}: binary_data_size {size!r} is not a byte count")
    if offset + size > len(binary):
        raise _fail(
            f"{where}: binary_data_size {size} but only {len(binary) - offset} bytes of "
            "binary data are left in the body"
        )
    if size != count * dtype.itemsize:
        raise _fail(
            f"{where}: {size} bytes of binary data for shape {shape} of {datatype} "
            f"({count * dtype.itemsize} bytes expected)"
        )
    arr = np.frombuffer(binary[offset : offset + size], dtype=dtype).reshape(shape)
    return arr, offset + size


def _header(
    body: bytes | bytearray,
    header_length: str | None,
    model: LoadedModel,
    max_rows: int,
    max_json: int | None,
) -> tuple[Any, memoryview]:
    """The request's JSON header, parsed once its structure fits ``max_rows`` rows, and
    the binary data after it."""
    end = len(body)
    if header_length is not None:
        try:
            end = int(header_length)
        except ValueError:
            raise _fail(
                f"Inference-Header-Content-Length {header_length!r} is not a number"
            ) from None
        if not 0 < end <= len(body):
            raise _fail(f"Inference-Header-Content-Length is {end}, the body has {len(body)} bytes")
    if max_json is not None and end > max_json:
        raise _fail(
            f"the JSON header is {end} bytes, above the limit of {max_json} (--max-json-bytes)",
            413,
        )
    if end > INLINE_BODY_BYTES:
        check_json(body, max_rows, model.predictor.n_features_in_, end=end)
    view = memoryview(body)
    return loads(view[:end]), view[end:]


def parse_request(
    body: bytes | bytearray,
    header_length: str | None,
    model: LoadedModel,
    max_rows: int,
    max_json: int | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """The (n, k) matrix of a V2 request, and the request's JSON header (at most
    ``max_json`` bytes)."""
    request, binary = _header(body, header_length, model, max_rows, max_json)
    if not isinstance(request, dict):
        raise _fail(f"the request is a JSON {type(request).__name__}; expected an object")
    specs = request.get("inputs")
    if not isinstance(specs, list) or not specs:
        raise _fail("the request has no 'inputs' list")
    p = model.predictor
    offset = 0
    tensors = []
    for i, spec in enumerate(specs):
        arr, offset = _tensor(spec, i, binary, offset, model, max_rows)
        tensors.append((spec.get("name"), arr))
    if offset != len(binary):
        raise _fail(f"{len(binary) - offset} bytes of binary data that no input claims")
    if len(tensors) == 1 and not (len(p.features) == 1 and tensors[0][1].ndim == 1):
        X = tensors[0][1]
        if X.ndim == 1:
            raise _fail(
                f"input {tensors[0][0]!r} has shape {list(X.shape)}; expected [n, "
                f"{len(p.features)}] (or one [n] tensor per feature: {p.features})",
                422,
            )
        return as_matrix(X, p.features, p.dtype), request
    columns = {}
    for name, arr in tensors:
        if arr.ndim == 2 and arr.shape[1] != 1:
            raise _fail(f"input {name!r} has shape {list(arr.shape)}; expected [n] or [n, 1]", 422)
        columns[str(name)] = arr.reshape(-1)
    if len(p.features) == 1 and len(tensors) == 1 and tensors[0][0] not in p.features:
        columns = {p.features[0]: tensors[0][1]}
    return as_matrix(columns, p.features, p.dtype), request


def _wants_binary(request: dict[str, Any], output: dict[str, Any] | None) -> bool:
    if output is not None:
        params = output.get("parameters")
        if isinstance(params, dict) and "binary_data" in params:
            return bool(params["binary_data"])
    params = request.get("parameters")
    return isinstance(params, dict) and bool(params.get("binary_data_output", False))


def build_response(
    model: LoadedModel, request: dict[str, Any], outputs: dict[str, np.ndarray]
) -> Response:
    """JSON or binary (header + raw bytes) response holding ``outputs``."""
    requested = request.get("outputs")
    wanted: list[tuple[str, dict[str, Any] | None]]
    if requested is None:
        wanted = [(name, None) for name in outputs]
    else:
        if not isinstance(requested, list):
            raise _fail("'outputs' must be a list")
        wanted = []
        for spec in requested:
            name = spec.get("name") if isinstance(spec, dict) else None
            if not isinstance(name, str) or name not in outputs:
                raise _fail(f"no output {name!r}; this model has {list(outputs)}", 400)
            wanted.append((name, spec))
    tensors = []
    blobs = []
    for name, spec in wanted:
        y = outputs[name]
        entry: dict[str, Any] = {"name": name, "datatype": _NAMES[y.dtype], "shape": [len(y)]}
        if _wants_binary(request, spec):
            raw = y.astype(y.dtype.newbyteorder("<"), copy=False).tobytes()
            entry["parameters"] = {"binary_data_size": len(raw)}
            blobs.append(raw)
        else:
            entry["data"] = y
        tensors.append(entry)
    answer: dict[str, Any] = {"model_name": model.name, "model_version": model.version}
    if "id" in request:
        answer["id"] = request["id"]
    answer["outputs"] = tensors
    header = dumps(answer)
    if not blobs:
        return Response(header, media_type="application/json")
    return Response(
        b"".join([header, *blobs]),
        media_type="application/octet-stream",
        headers={"Inference-Header-Content-Length": str(len(header))},
    )


def routes(server: Any) -> list[Route]:
    """The V2 routes, bound to ``server`` (an :class:`inference.serve.app.Server`)."""

    def model_of(request: Request) -> LoadedModel:
        params = request.path_params
        return server.model(params["name"], params.get("version"))  # type: ignore[no-any-return]

    async def live(request: Request) -> Response:
        server.note(request, "v2_health")
        return json_response({"live": True})

    async def ready(request: Request) -> Response:
        server.note(request, "v2_health")
        ok = server.ready()
        return json_response({"ready": ok}, 200 if ok else 503)

    async def metadata(request: Request) -> Response:
        server.note(request, "v2_server")
        return json_response(
            {
                "name": "linreg-onnx",
                "version": inference.__version__,
                "extensions": ["binary_tensor_data", "model_repository"],
            }
        )

    async def model_meta(request: Request) -> Response:
        server.note(request, "v2_model")
        model = model_of(request)
        return json_response(model_metadata(model, server.registry.versions(model.name)))

    async def model_ready(request: Request) -> Response:
        server.note(request, "v2_model")
        model = model_of(request)
        return json_response({"name": model.name, "ready": True})

    async def infer(request: Request) -> Response:
        server.note(request, "v2_infer")
        model = model_of(request)
        header = request.headers.get(HEADER)
        body = await server.body(request, json=header is None)
        s = server.settings
        size = len(body) if header is None or not header.isdigit() else int(header)
        args = (body, header, model, s.max_rows, s.max_json_bytes)
        try:
            if size <= INLINE_BODY_BYTES:  # the JSON; binary data is never parsed
                X, req = parse_request(*args)
            else:
                X, req = await server.parse_in_thread(parse_request, *args)
        except (ApiError, InputError):
            raise
        except Exception as exc:  # every exception of the parse is an answer
            raise unreadable(exc) from None
        server.note_rows(request, model, X.shape[0])
        params = req.get("parameters")
        interval = params.get("interval") if isinstance(params, dict) else None
        outputs: dict[str, np.ndarray]
        manifest = model.predictor.manifest
        out_name = manifest.output_name if manifest is not None else "prediction"
        if interval is None:
            y = await server.runner.predict(model, X)
            outputs = {out_name: y}
        else:
            level = params.get("level", 0.95) if isinstance(params, dict) else 0.95
            res = server.intervals(model, X, interval, level)
            outputs = {out_name: res.prediction, "lower": res.lower, "upper": res.upper}
        return build_response(model, req, outputs)

    prefixes = ["/v2/models/{name}", "/v2/models/{name}/versions/{version}"]
    out = [Route(f"{p}/infer", infer, methods=["POST"]) for p in prefixes] + [
        Route("/v2/health/live", live, methods=["GET"]),
        Route("/v2/health/ready", ready, methods=["GET"]),
        Route("/v2", metadata, methods=["GET"]),
    ]
    for p in prefixes:
        out.append(Route(p, model_meta, methods=["GET"]))
        out.append(Route(f"{p}/ready", model_ready, methods=["GET"]))
    return out
