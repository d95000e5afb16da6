"""The OpenAPI document, built from each model's manifest, and its docs page offline.

``GET /openapi.json`` describes every endpoint; each model's prediction endpoints
name its features (JSON numbers), dtype and shapes, so a client generator or a
fuzzer knows what a valid request is. ``GET /docs`` is Swagger UI, its assets
served by this server from the ``swagger-ui-bundle`` package: no CDN, so it
works offline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import Route

import inference
from inference.intervals import KINDS
from inference.serve.registry import LoadedModel
from inference.serve.responses import dumps
from inference.serve.v2 import DATATYPES

__all__ = ["build_document", "routes"]

#: the Swagger UI files served under /docs/assets/
ASSETS = {
    "swagger-ui.css": "text/css",
    "swagger-ui-bundle.js": "text/javascript",
    "favicon-32x32.png": "image/png",
}
_CSP = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'"


def _assets_dir() -> Path | None:
    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:
        return None
    return Path(str(swagger_ui_path))


def _model_schemas(model: LoadedModel) -> dict[str, Any]:
    """The request schemas of one model's endpoints, from its features and dtype."""
    p = model.predictor
    number = {"type": "number", "format": "float" if p.dtype.itemsize == 4 else "double"}
    features, k = list(p.features), len(p.features)
    record = {
        "type": "object",
        "description": f"one row of {model.name}: {', '.join(features)}",
        "properties": {f: number for f in features},
        "required": features,
        "additionalProperties": False,
        "example": {f: 1.0 for f in features},
    }
    columns = {
        "type": "object",
        "properties": {f: {"type": "array", "items": number} for f in features},
        "required": features,
        "additionalProperties": False,
    }
    rows = {
        "type": "array",
        "items": {"type": "array", "items": number, "minItems": k, "maxItems": k},
    }
    inputs = {"anyOf": [record, {"type": "array", "items": record}, columns, rows]}
    return {
        "predict": _predict_schema(inputs),
        "infer": _infer_schema(number, k, "FP32" if p.dtype.itemsize == 4 else "FP64"),
        "mlflow": _mlflow_schema(features, record, rows, inputs),
    }


def _predict_schema(inputs: dict[str, Any]) -> dict[str, Any]:
    """``/predict``: the inputs alone, or wrapped with ``interval`` and ``level``."""
    wrapped = {
        "type": "object",
        "properties": {
            "inputs": inputs,
            "interval": {"type": "string", "enum": list(KINDS)},
            "level": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
        },
        "required": ["inputs"],
        "additionalProperties": False,
    }
    return {"anyOf": [*inputs["anyOf"], wrapped]}


def _infer_schema(number: dict[str, Any], k: int, datatype: str) -> dict[str, Any]:
    """V2 ``/infer`` with JSON tensors."""
    tensor = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
            "datatype": {"type": "string", "enum": list(DATATYPES)},
            "data": {"type": "array", "items": number},
            "parameters": {"type": "object"},
        },
        "required": ["name", "shape", "datatype"],
        "example": {"name": "features", "shape": [1, k], "datatype": datatype, "data": [1.0] * k},
    }
    return {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "inputs": {"type": "array", "items": tensor, "minItems": 1},
            "outputs": {"type": "array", "items": {"type": "object"}},
            "parameters": {"type": "object"},
        },
        "required": ["inputs"],
    }


def _mlflow_schema(
    features: list[str], record: dict[str, Any], rows: dict[str, Any], inputs: dict[str, Any]
) -> dict[str, Any]:
    """MLflow's ``/invocations`` JSON: exactly one of its four formats."""
    return {
        "type": "object",
        "properties": {
            "dataframe_split": {
                "type": "object",
                "properties": {
                    "columns": {"type": "array", "items": {"type": "string", "enum": features}},
                    "data": rows,
                },
                "required": ["columns", "data"],
            },
            "dataframe_records": {"type": "array", "items": record},
            "instances": inputs,
            "inputs": inputs,
        },
        "minProperties": 1,
        "maxProperties": 1,
    }


def _json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _answers(ok: str, media: str = "application/json") -> dict[str, Any]:
    error = {
        "description": "error",
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
    return {
        "200": {"description": ok, "content": {media: {"schema": {}}}},
        "400": error,
        "404": error,
        "413": error,
        "422": error,
    }


def build_document(models: dict[str, LoadedModel]) -> dict[str, Any]:
    """The OpenAPI 3.0 document for ``models`` (the first is the default model)."""
    paths: dict[str, Any] = {}
    first = next(iter(models.values()))
    for i, model in enumerate(models.values()):
        s = _model_schemas(model)
        p = model.predictor
        what = f"{p.target} from {', '.join(p.features)} ({p.dtype.name})"
        predict = {
            "post": {
                "summary": f"Predict {what}",
                "operationId": f"predict_{model.name}",
                "requestBody": _json_body(s["predict"]),
                "parameters": [
                    {
                        "name": "interval",
                        "in": "query",
                        "schema": {"type": "string", "enum": list(KINDS)},
                    },
                    {"name": "level", "in": "query", "schema": {"type": "number"}},
                ],
                "responses": _answers("predictions"),
            }
        }
        paths[f"/models/{model.name}/predict"] = predict
        if i == 0:
            paths["/predict"] = {"post": {**predict["post"], "operationId": "predict"}}
        base = f"/v2/models/{model.name}"
        paths[f"{base}/infer"] = {
            "post": {
                "summary": f"V2 inference: input [n, {len(p.features)}] -> output [n]",
                "operationId": f"v2_infer_{model.name}",
                "requestBody": _json_body(s["infer"]),
                "responses": _answers("inference response"),
            }
        }
        paths[base] = {"get": {"summary": "V2 model metadata", "responses": _answers("metadata")}}
        paths[f"{base}/ready"] = {
            "get": {"summary": "V2 model ready", "responses": _answers("ready")}
        }
        if model is first:
            paths["/invocations"] = {
                "post": {
                    "summary": f"MLflow scoring ({model.name})",
                    "operationId": "mlflow_invocations",
                    "requestBody": _json_body(s["mlflow"]),
                    "responses": _answers("{predictions: [...]}"),
                }
            }
    for path, summary in (
        ("/v2/health/live", "V2 liveness"),
        ("/v2/health/ready", "V2 readiness"),
        ("/v2", "V2 server metadata"),
        ("/ping", "MLflow health"),
        ("/health", "MLflow health"),
    ):
        paths[path] = {"get": {"summary": summary, "responses": _answers("ok")}}
    paths["/version"] = {
        "get": {"summary": "version", "responses": _answers("version", "text/plain")}
    }
    paths["/metrics"] = {
        "get": {"summary": "Prometheus metrics", "responses": _answers("metrics", "text/plain")}
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "linreg serve",
            "version": inference.__version__,
            "description": "Models: "
            + ", ".join(
                f"{m.name} ({m.predictor.target} from {', '.join(m.predictor.features)})"
                for m in models.values()
            ),
        },
        "paths": paths,
    }


_DOCS_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>linreg serve: API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
<link rel="icon" href="/docs/assets/favicon-32x32.png"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script></body></html>
"""
_INIT_JS = """window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui",
  deepLinking: true, validatorUrl: null});
"""


def routes(server: Any) -> list[Route]:
    cache: dict[tuple[str, ...], bytes] = {}

    async def document(request: Request) -> Response:
        server.note(request, "openapi")
        models = server.registry.models
        key = tuple(m.version for m in models.values())
        body = cache.get(key)
        if body is None:
            cache.clear()
            body = cache[key] = dumps(build_document(models))
        return Response(body, media_type="application/json")

    async def docs(request: Request) -> Response:
        server.note(request, "docs")
        return HTMLResponse(_DOCS_HTML, headers={"Content-Security-Policy": _CSP})

    async def init(request: Request) -> Response:
        server.note(request, "docs")
        return Response(_INIT_JS, media_type="text/javascript")

    async def asset(request: Request) -> Response:
        server.note(request, "docs")
        name = request.path_params["file"]
        root = _assets_dir()
        if name not in ASSETS or root is None or not (root / name).is_file():
            return Response(
                dumps({"error": f"no docs asset {name!r} (the 'serve' extra installs them)"}),
                404,
                media_type="application/json",
            )
        return FileResponse(root / name, media_type=ASSETS[name])

    return [
        Route("/openapi.json", document, methods=["GET"]),
        Route("/docs", docs, methods=["GET"]),
        Route("/docs/init.js", init, methods=["GET"]),
        Route("/docs/assets/{file}", asset, methods=["GET"]),
    ]
