"""Triton's extensions that tools call: model configuration and inference statistics.

- ``GET /v2/models/{name}[/versions/{version}]/config``: the model's configuration
  as Triton writes it (``tritonclient``'s ``get_model_config``): ``name``,
  ``platform`` (``onnxruntime_onnx``), ``backend``, ``max_batch_size`` 0 (the batch
  axis is part of the dims, as the model metadata says: input ``[-1, k]``, or for a
  model fitted on raw columns one ``[-1]`` input per column, ``TYPE_STRING`` for a
  factor; outputs ``[-1]``), ``input`` and ``output`` with Triton's ``TYPE_*`` datatypes, the
  version policy, the instance group, ``dynamic_batching`` when micro-batching is
  on, and the feature names and target in ``parameters``.
- ``GET /v2/models[/{name}[/versions/{version}]]/stats``: Triton's statistics
  extension (``get_inference_statistics``): per model version, successful and
  failed requests with their cumulative time, rows scored (``inference_count``),
  session runs (``execution_count``), and the cumulative time parsing
  (``compute_input``), waiting for a micro-batch (``queue``), running the session
  (``compute_infer``) and writing the answer (``compute_output``), counted over
  every prediction protocol (V2, ``/predict``, ``/invocations``);
  ``batch_stats`` gives the session runs per batch size (``compute_infer`` only; at
  most :data:`~inference.serve.metrics.BATCH_SIZES` sizes). Since the server
  started, per worker process.

The model repository extension is :mod:`inference.serve.control`'s. Triton's other
extensions (logging, trace, shared memory) answer 501 with ``{"error": "... is not
supported ..."}`` (:func:`unsupported_routes`), rather than 404 "no route".
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from inference.errors import ModelLoadError
from inference.serve.models import version_key
from inference.serve.registry import LoadedModel, ModelNotFound
from inference.serve.repository import read_policy
from inference.serve.responses import ApiError, json_response
from inference.serve.v2 import EXTENSIONS, interval_outputs, model_metadata

__all__ = [
    "UNSUPPORTED",
    "config_of",
    "model_config",
    "routes",
    "statistics",
    "unsupported_routes",
    "version_policy",
]

#: Triton extensions not implemented here: their path prefixes, by name
UNSUPPORTED = {
    "logging": "/v2/logging",
    "trace": "/v2/trace",
    "system_shared_memory": "/v2/systemsharedmemory",
    "cuda_shared_memory": "/v2/cudasharedmemory",
}
#: Triton's type of each V2 datatype of the metadata (BYTES: a design model's factor)
_TYPES = {"FP32": "TYPE_FP32", "FP64": "TYPE_FP64", "BYTES": "TYPE_STRING"}


def _tensor(name: str, datatype: str, dims: list[int]) -> dict[str, Any]:
    return {"name": name, "data_type": _TYPES[datatype], "dims": dims}


def version_policy(model: LoadedModel, single: bool) -> dict[str, Any]:
    """Triton's ``version_policy`` of ``model``: a single directory serves its one
    version; a repository model, the policy of its ``config.json``."""
    if single:
        return {"latest": {"num_versions": 1}}
    try:
        policy = read_policy(model.path.parent)
    except ModelLoadError:  # the file changed since the load: the default is in force
        return {"latest": {"num_versions": 1}}
    if policy.kind == "all":
        return {"all": {}}
    if policy.kind == "specific":
        return {"specific": {"versions": list(policy.versions)}}
    return {"latest": {"num_versions": policy.num_versions}}


def model_config(
    model: LoadedModel, *, batching: bool = False, single: bool = True
) -> dict[str, Any]:
    """The Triton model configuration of ``model``, as JSON (module docstring);
    ``single``: a model directory given as such (not a repository's version)."""
    meta = model_metadata(model)
    inputs = [
        {**_tensor(t["name"], t["datatype"], t["shape"]), "format": "FORMAT_NONE"}
        for t in meta["inputs"]
    ]
    outputs = [_tensor(t["name"], t["datatype"], t["shape"]) for t in meta["outputs"]]
    config: dict[str, Any] = {
        "name": model.name,
        "platform": "onnxruntime_onnx",
        "backend": "onnxruntime",
        "version_policy": version_policy(model, single),
        "max_batch_size": 0,
        "input": inputs,
        "output": outputs,
        "instance_group": [{"name": model.name, "kind": "KIND_CPU", "count": 1}],
        "default_model_filename": model.predictor.manifest.onnx_file
        if model.predictor.manifest is not None
        else "model.onnx",
        "parameters": {
            "features": {"string_value": ",".join(model.predictor.features)},
            "target": {"string_value": str(model.predictor.target)},
            "version": {"string_value": model.version},
            "intervals": {"string_value": "true" if interval_outputs(model) else "false"},
        },
    }
    if batching:
        config["dynamic_batching"] = {}
    return config


def config_of(server: Any, model: LoadedModel) -> dict[str, Any]:
    """:func:`model_config` of ``model`` as ``server`` serves it."""
    entry = server.registry.entries.get(model.name)
    single = entry is None or entry.source.single
    return model_config(model, batching=server.runner.enabled, single=single)


def statistics(server: Any, name: str | None, version: str | None) -> dict[str, Any]:
    """Triton's ``{"model_stats": [...]}`` for every model (``name`` None), one model
    (each version that is ready or has answered requests, the default first) or one
    version. Raises :class:`ModelNotFound` for a model or version the server does not
    know, as :meth:`ModelRegistry.resolve` does."""
    registry = server.registry
    names = list(registry.order) if name is None else [name]
    found = []
    for n in names:
        if n not in registry.entries:
            raise ModelNotFound(f"no model {n!r}; this server has {registry.order}")
        if version is not None:
            registry.resolve(n, version)  # 404 or 503 for a version not served
            versions = [version]
        else:
            seen = {v for m, v in server.metrics.stats if m == n}
            versions = registry.versions(n)
            versions += sorted(seen - set(versions), key=version_key, reverse=True)
        for v in versions:
            found.append(server.metrics.model_stats(n, v).as_json(n, v))
    return {"model_stats": found}


def routes(server: Any) -> list[Route]:
    """The model configuration and statistics routes, bound to ``server``."""

    async def config(request: Request) -> Response:
        server.note(request, "v2_model_config")
        model = server.model_of(request)
        return json_response(config_of(server, model))

    async def stats(request: Request) -> Response:
        server.note(request, "v2_model_stats")
        params = request.path_params
        return json_response(statistics(server, params.get("name"), params.get("version")))

    out = [Route("/v2/models/stats", stats, methods=["GET"])]
    for prefix in ("/v2/models/{name}", "/v2/models/{name}/versions/{version}"):
        out.append(Route(f"{prefix}/config", config, methods=["GET"]))
        out.append(Route(f"{prefix}/stats", stats, methods=["GET"]))
    return out


def unsupported_routes(server: Any) -> list[Route]:
    """501 for each extension of :data:`UNSUPPORTED` (and per model trace settings).
    Listed after every other route, so that a route implementing one wins."""

    def answer(extension: str) -> Any:
        async def endpoint(request: Request) -> Response:
            server.note(request, "v2_unsupported")
            raise ApiError(
                501,
                f"the Triton extension {extension!r} is not supported by linreg serve "
                f"(GET /v2 lists the extensions it supports: {EXTENSIONS})",
            )

        return endpoint

    methods = ["GET", "POST"]
    out = []
    for extension, prefix in UNSUPPORTED.items():
        out.append(Route(prefix, answer(extension), methods=methods))
        out.append(Route(prefix + "/{rest:path}", answer(extension), methods=methods))
    for prefix in ("/v2/models/{name}", "/v2/models/{name}/versions/{version}"):
        out.append(Route(f"{prefix}/trace/setting", answer("trace"), methods=methods))
    return out
