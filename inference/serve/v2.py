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

A model fitted on raw columns (a design: text factors, a formula) takes one tensor
per column instead, named as the column, of shape ``[n]``: ``BYTES`` for a factor
(JSON strings, or Triton's length-prefixed binary elements), a number for a numeric
column (:mod:`inference.serve.design_tensors`); its metadata lists them in the
model's order, and its parameters each factor's ``levels``.
"""

from __future__ import annotations

import itertools
import os
from time import perf_counter_ns
from typing import Any

import numpy as np
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import inference
from inference.errors import InputError
from inference.inputs import as_matrix
from inference.intervals import KINDS
from inference.serve.design_body import RawColumns
from inference.serve.design_tensors import assemble, read_design_tensor, tensor_datatype
from inference.serve.limits import check_json
from inference.serve.registry import LoadedModel
from inference.serve.responses import (
    INLINE_BODY_BYTES,
    ApiError,
    dumps,
    json_response,
    loads,
    unreadable,
)
from inference.serve.tensors import DATATYPES, read_tensor

__all__ = [
    "DATATYPES",
    "EXTENSIONS",
    "INTERVAL_OUTPUTS",
    "build_response",
    "interval_outputs",
    "model_metadata",
    "output_names",
    "parse_request",
    "requested_outputs",
    "routes",
]

#: the extensions this server implements, as ``GET /v2`` lists them
EXTENSIONS = [
    "binary_tensor_data",
    "parameters",
    "model_repository",
    "model_configuration",
    "statistics",
]
#: the outputs an ``interval`` request parameter adds (FP64)
INTERVAL_OUTPUTS = ("lower", "upper")

_NAMES = {np.dtype(np.float32): "FP32", np.dtype(np.float64): "FP64"}
HEADER = "inference-header-content-length"


def _request_ids() -> Any:
    """New request ids: UUIDs of RFC 9562's version 8 (a layout of one's own), 74 random
    bits drawn once per process, then a 48-bit count: unique without a system call per
    request (``uuid.uuid4`` reads ``os.urandom`` each time, 6 µs here)."""
    r = int.from_bytes(os.urandom(10), "big")  # 80 bits, 74 used
    head = f"{r >> 48 & 0xFFFFFFFF:08x}-{r >> 32 & 0xFFFF:04x}-8{r >> 20 & 0xFFF:03x}-"
    head += f"{0x8000 | (r >> 6) & 0x3FFF:04x}-"
    return (f"{head}{n & 0xFFFFFFFFFFFF:012x}" for n in itertools.count())


#: the id of a response whose request has none (KServe's clients require one)
new_request_id = _request_ids().__next__


def interval_outputs(model: LoadedModel) -> bool:
    """Whether ``model`` can add the outputs ``lower`` and ``upper`` (its manifest has
    the statistics intervals need)."""
    manifest = model.predictor.manifest
    return manifest is not None and manifest.interval_inputs() is not None


def output_names(model: LoadedModel) -> list[str]:
    """The outputs of ``model``'s infer, as its metadata lists them."""
    manifest = model.predictor.manifest
    name = manifest.output_name if manifest is not None else "prediction"
    return [name, *INTERVAL_OUTPUTS] if interval_outputs(model) else [name]


def input_tensors(model: LoadedModel) -> list[dict[str, Any]]:
    """The inputs of ``model``'s metadata: one ``[-1, k]`` matrix of the model's dtype,
    or for a design model one ``[-1]`` tensor per raw column, in the model's order
    (BYTES for a factor)."""
    p = model.predictor
    manifest = p.manifest
    assert manifest is not None  # the registry serves model directories only
    if p.design is None:
        return [
            {
                "name": manifest.input_name,
                "datatype": _NAMES[p.dtype],
                "shape": [-1, len(p.features)],
            }
        ]
    return [
        {"name": n, "datatype": tensor_datatype(p.design, n, p.dtype), "shape": [-1]}
        for n in p.design.input_names
    ]


def model_metadata(model: LoadedModel, versions: list[str] | None = None) -> dict[str, Any]:
    """``versions``: the model's ready versions (default: ``model``'s alone). A design
    model's parameters add ``levels``: each factor's levels, in order."""
    p = model.predictor
    manifest = p.manifest
    assert manifest is not None  # the registry serves model directories only
    dtype = _NAMES[p.dtype]
    outputs = [{"name": manifest.output_name, "datatype": dtype, "shape": [-1]}]
    if interval_outputs(model):
        outputs += [{"name": n, "datatype": "FP64", "shape": [-1]} for n in INTERVAL_OUTPUTS]
    params: dict[str, Any] = {"features": p.features, "target": p.target, "sha256": model.sha256}
    if p.design is not None:
        params["levels"] = {f.name: list(f.levels) for f in p.design.factors}
    return {
        "name": model.name,
        "versions": [model.version] if versions is None else versions,
        "platform": "onnxruntime_onnx",
        "inputs": input_tensors(model),
        "outputs": outputs,
        "parameters": params,
    }


def _fail(message: str, status: int = 400) -> ApiError:
    return ApiError(status, message)


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


def _check_request(request: Any) -> list[Any]:
    """The ``inputs`` of a parsed request, after the checks of its other fields (``id``
    a string, ``parameters`` an object, ``outputs`` a list)."""
    if not isinstance(request, dict):
        raise _fail(f"the request is a JSON {type(request).__name__}; expected an object")
    if "id" in request and not isinstance(request["id"], str | None):
        raise _fail(f"'id' {request['id']!r} is not a string")
    if not isinstance(request.get("parameters", {}), dict | None):
        raise _fail("'parameters' must be an object")
    if not isinstance(request.get("outputs", []), list | None):
        raise _fail("'outputs' must be a list")
    specs = request.get("inputs")
    if not isinstance(specs, list) or not specs:
        raise _fail("the request has no 'inputs' list")
    return specs


def parse_request(
    body: bytes | bytearray,
    header_length: str | None,
    model: LoadedModel,
    max_rows: int,
    max_json: int | None = None,
) -> tuple[np.ndarray | RawColumns, dict[str, Any]]:
    """The (n, k) matrix of a V2 request (a design model's: its :class:`RawColumns`),
    and the request's JSON header (at most ``max_json`` bytes). Every error is a 400
    (413 above the limits)."""
    request, binary = _header(body, header_length, model, max_rows, max_json)
    specs = _check_request(request)
    p = model.predictor
    if p.design is not None:
        return _design_columns(specs, binary, p.design, max_rows), request
    offset = 0
    tensors: dict[str, np.ndarray] = {}
    for i, spec in enumerate(specs):
        arr, offset = read_tensor(spec, i, binary, offset, model.predictor.features, max_rows)
        name = spec["name"]
        if name in tensors:
            raise _fail(f"input {name!r} is given twice; each input name may appear once")
        tensors[name] = arr
    if offset != len(binary):
        raise _fail(f"{len(binary) - offset} bytes of binary data that no input claims")
    try:
        return _matrix(tensors, p.features, p.dtype), request
    except InputError as exc:
        raise _fail(str(exc)) from None


def _design_columns(specs: list[Any], binary: memoryview, design: Any, max_rows: int) -> RawColumns:
    """The raw columns of a design model's request: one tensor per column."""
    offset = 0
    tensors = []
    for i, spec in enumerate(specs):
        name, datatype, values, offset = read_design_tensor(spec, i, binary, offset, max_rows)
        tensors.append((name, datatype, values))
    if offset != len(binary):
        raise _fail(f"{len(binary) - offset} bytes of binary data that no input claims")
    try:
        return assemble(tensors, design)
    except InputError as exc:
        raise _fail(str(exc)) from None


def _matrix(tensors: dict[str, np.ndarray], features: list[str], dtype: np.dtype) -> np.ndarray:
    """One [n, k] tensor (any name), or one [n] or [n, 1] tensor per feature, as the
    model's (n, k) matrix."""
    k = len(features)
    if len(tensors) == 1:
        name, X = next(iter(tensors.items()))
        if X.ndim == 2 or k != 1:
            if X.ndim == 1:
                raise _fail(
                    f"input {name!r} has shape {list(X.shape)}; expected [n, {k}] "
                    f"(or one [n] tensor per feature: {features})"
                )
            return as_matrix(X, features, dtype)
        if name not in features:  # one feature: its one tensor, whatever its name
            tensors = {features[0]: X}
    for name, arr in tensors.items():
        if arr.ndim == 2 and arr.shape[1] != 1:
            raise _fail(f"input {name!r} has shape {list(arr.shape)}; expected [n] or [n, 1]")
    missing = [f for f in features if f not in tensors]
    unknown = [n for n in tensors if n not in features]
    if missing or unknown:
        raise _fail(
            f"inputs {list(tensors)}: expected one [n, {k}] tensor, or one [n] tensor per "
            f"feature named {features}: missing {missing}, unexpected {unknown}"
        )
    return as_matrix({n: a.reshape(-1) for n, a in tensors.items()}, features, dtype, strict=True)


def _wants_binary(request: dict[str, Any], output: dict[str, Any] | None) -> bool:
    if output is not None:
        params = output.get("parameters")
        if isinstance(params, dict) and "binary_data" in params:
            return bool(params["binary_data"])
    params = request.get("parameters")
    return isinstance(params, dict) and bool(params.get("binary_data_output", False))


def requested_outputs(
    model: LoadedModel, request: dict[str, Any], interval: bool
) -> list[tuple[str, dict[str, Any] | None]]:
    """The outputs to answer, each once, in the order asked (all when ``outputs`` is
    absent or empty): 404 for one the model does not have, 400 for ``lower`` or
    ``upper`` without an ``interval`` parameter."""
    requested = request.get("outputs")
    if not requested and not interval:  # the usual request: only the prediction
        manifest = model.predictor.manifest
        return [(manifest.output_name if manifest is not None else "prediction", None)]
    names = output_names(model)
    if not requested:
        return [(n, None) for n in names if interval or n not in INTERVAL_OUTPUTS]
    wanted: dict[str, dict[str, Any]] = {}
    for i, spec in enumerate(requested):
        name = spec.get("name") if isinstance(spec, dict) else None
        if not isinstance(name, str):
            raise _fail(f"outputs[{i}]: expected an object with a 'name' string, got {spec!r}")
        if name not in names:
            raise _fail(f"no output {name!r}; this model has {names}", 404)
        if name in INTERVAL_OUTPUTS and not interval:
            raise _fail(
                f"output {name!r} needs the request parameter 'interval' "
                f"({' or '.join(map(repr, KINDS))}, and optionally 'level')"
            )
        wanted.setdefault(name, spec)
    return list(wanted.items())


def build_response(
    model: LoadedModel,
    request: dict[str, Any],
    outputs: dict[str, np.ndarray],
    wanted: list[tuple[str, dict[str, Any] | None]],
) -> Response:
    """JSON or binary (header + raw bytes) response holding the ``wanted`` outputs;
    ``id`` is the request's, or a new UUID."""
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
    rid = request.get("id")
    answer: dict[str, Any] = {
        "model_name": model.name,
        "model_version": model.version,
        "id": rid if rid is not None else new_request_id(),
        "outputs": tensors,
    }
    header = dumps(answer)
    if not blobs:
        return Response(header, media_type="application/json")
    return Response(
        b"".join([header, *blobs]),
        media_type="application/octet-stream",
        headers={"Inference-Header-Content-Length": str(len(header))},
    )


async def _parse(
    server: Any, request: Request, model: LoadedModel
) -> tuple[np.ndarray | RawColumns, Any]:
    """The request's matrix and JSON header, parsed on a worker thread when large."""
    header = request.headers.get(HEADER)
    body = await server.body(request, json=header is None)
    s = server.settings
    size = len(body) if header is None or not header.isdigit() else int(header)
    args = (body, header, model, s.max_rows, s.max_json_bytes)
    try:
        if size <= INLINE_BODY_BYTES:  # the JSON; binary data is never parsed
            return parse_request(*args)
        return await server.parse_in_thread(parse_request, *args)  # type: ignore[no-any-return]
    except ApiError:
        raise
    except InputError as exc:
        raise _fail(str(exc)) from None
    except Exception as exc:  # every exception of the parse is an answer
        raise unreadable(exc) from None


def _interval_outputs(
    server: Any,
    model: LoadedModel,
    X: np.ndarray | RawColumns,
    params: dict[str, Any],
    name: str,
) -> dict[str, np.ndarray]:
    """``name`` (the prediction, in the model's dtype as the metadata says), ``lower``
    and ``upper`` for ``X``, with the request's ``interval`` and ``level``."""
    try:
        res = server.intervals(model, X, params["interval"], params.get("level", 0.95))
    except InputError as exc:
        raise _fail(str(exc)) from None
    except ApiError as exc:
        raise _fail(exc.message, 400 if exc.status == 422 else exc.status) from None
    y = res.prediction.astype(model.predictor.dtype)
    return {name: y, "lower": res.lower, "upper": res.upper}


def routes(server: Any) -> list[Route]:
    """The V2 routes, bound to ``server`` (an :class:`inference.serve.app.Server`)."""

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
            {"name": "linreg-onnx", "version": inference.__version__, "extensions": EXTENSIONS}
        )

    async def model_meta(request: Request) -> Response:
        server.note(request, "v2_model")
        model = server.model_of(request)
        return json_response(model_metadata(model, server.registry.versions(model.name)))

    async def model_ready(request: Request) -> Response:
        server.note(request, "v2_model")
        model = server.model_of(request)
        return json_response({"name": model.name, "ready": True})

    async def infer(request: Request) -> Response:
        server.note(request, "v2_infer")
        model = server.model_of(request)
        timing = server.timing(request, model)
        X, req = await _parse(server, request, model)
        server.note_rows(request, model, X.shape[0])
        timing.rows = X.shape[0]
        timing.parsed_at = perf_counter_ns()
        params = req.get("parameters") or {}
        interval = params.get("interval") is not None
        wanted = requested_outputs(model, req, interval)
        manifest = model.predictor.manifest
        name = manifest.output_name if manifest is not None else "prediction"
        if interval:
            outputs = _interval_outputs(server, model, X, params, name)
            timing.ran_at = perf_counter_ns()
        else:
            try:
                outputs = {name: await server.runner.predict(model, X, timing)}
            except InputError as exc:  # a NaN or inf: the Predictor's message
                raise _fail(str(exc)) from None
            timing.ran_at = perf_counter_ns()
        response = build_response(model, req, outputs, wanted)
        timing.answered_at = perf_counter_ns()
        return response

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
