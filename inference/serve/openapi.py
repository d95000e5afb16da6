"""The OpenAPI document, built from the application's routes and each model's manifest,
and its docs page offline.

``GET /openapi.json`` describes every route the application has (its paths come
from the router, so routes added later, such as the versioned ones, are in it
without a change here): each model's prediction endpoints name its features (JSON
numbers), dtype and shapes, every content type each endpoint takes (JSON, CSV,
Parquet, V2 binary tensors) and the answers each operation can give, so a client
generator or a fuzzer knows what a valid request is. A route this module does not
know gets a generic operation (its docstring's first line, JSON answers).
``GET /docs`` is Swagger UI, its assets served by this server from the
``swagger-ui-bundle`` package: no CDN, so it works offline.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import Route

import inference
from inference.intervals import KINDS
from inference.serve.openapi_design import design_schemas
from inference.serve.openapi_schemas import COMPONENTS, ERRORS, model_schemas, ref
from inference.serve.registry import LoadedModel
from inference.serve.responses import dumps
from inference.serve.triton import UNSUPPORTED
from inference.serve.v2 import input_tensors

__all__ = ["build_document", "routes"]

#: the Swagger UI files served under /docs/assets/
ASSETS = {
    "swagger-ui.css": "text/css",
    "swagger-ui-bundle.js": "text/javascript",
    "favicon-32x32.png": "image/png",
}
_CSP = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'"
#: answered without the token (as :data:`inference.serve.app.OPEN_PATHS`)
_OPEN = frozenset({"/v2/health/live", "/v2/health/ready", "/ping", "/health"})
_PARAM = re.compile(r"{([^}:]+)(?::[^}]*)?}")
_BODY_ERRORS = ("400", "408", "413", "415")
_JSON = "application/json"


def _assets_dir() -> Path | None:
    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:
        return None
    return Path(str(swagger_ui_path))


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {_JSON: {"schema": schema}}


def _binary(description: str) -> dict[str, Any]:
    return {"schema": {"type": "string", "format": "binary", "description": description}}


def _header(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "header", "schema": schema, "description": description}


_ENCODING = _header(
    "Content-Encoding",
    {"type": "string", "enum": ["gzip", "deflate", "identity"]},
    "a compressed body; the body limits apply to its decompressed size",
)
_V2_BINARY = (
    "the JSON header (its length in Inference-Header-Content-Length), then each input's "
    "raw little-endian bytes (parameters.binary_data_size), in input order; BYTES "
    "elements each as a 4-byte little-endian length and its UTF-8 bytes"
)


class Op:
    """One operation: summary, tag, request body, parameters, 200 answer, errors."""

    def __init__(
        self,
        summary: str,
        tag: str,
        ok: dict[str, Any],
        errors: Iterable[str] = (),
        *,
        body: dict[str, Any] | None = None,
        params: list[dict[str, Any]] | None = None,
        style: str = "plain",
        ok_status: str = "200",
        body_required: bool = True,
    ) -> None:
        self.summary, self.tag, self.ok, self.body = summary, tag, ok, body
        self.errors = list(errors)
        self.params = list(params or [])
        self.style = style
        self.ok_status = ok_status
        self.body_required = body_required

    def render(self, op_id: str, path_params: list[str], token: bool, open_: bool) -> Any:
        error = ref("MlflowError" if self.style == "mlflow" else "Error")
        errors = [*self.errors, *(["401"] if token and not open_ else [])]
        responses: dict[str, Any] = {self.ok_status: self.ok}
        for status in sorted(set(errors)):
            responses[status] = {"description": ERRORS[status], "content": _json(error)}
        out: dict[str, Any] = {
            "summary": self.summary,
            "operationId": op_id,
            "tags": [self.tag],
            "responses": responses,
        }
        params = [
            {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
            for p in path_params
        ] + self.params
        if params:
            out["parameters"] = params
        if self.body is not None:
            out["requestBody"] = {"required": self.body_required, "content": self.body}
        if token:
            out["security"] = [] if open_ else [{"bearer": []}]
        return out


def _ok(description: str, content: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"description": description}
    if content is not None:
        out["content"] = content
    return out


def _predict(model: LoadedModel, s: dict[str, Any]) -> Op:
    p = model.predictor
    query = [
        {"name": "interval", "in": "query", "schema": {"type": "string", "enum": list(KINDS)}},
        {"name": "level", "in": "query", "schema": {"type": "number"}},
    ]
    return Op(
        f"Predict {p.target} from {', '.join(p.features)} ({p.dtype.name}) with {model.name}",
        "predict",
        _ok("predictions (and intervals)", _json(ref("PredictResponse"))),
        [*_BODY_ERRORS, "404", "422", "503"],
        body=_json(s["predict"]),
        params=[*query, _ENCODING],
    )


def _infer(model: LoadedModel, s: dict[str, Any]) -> Op:
    k = model.predictor.n_features_in_
    header = _header(
        "Inference-Header-Content-Length",
        {"type": "integer", "minimum": 1},
        "with binary tensor data: the length of the JSON header at the start of the body",
    )
    answer = {**_json(ref("InferenceResponse")), "application/octet-stream": _binary(_V2_BINARY)}
    inputs = f"input [n, {k}]"
    if model.predictor.design is not None:  # one tensor per raw column
        inputs = "inputs " + ", ".join(
            f"{t['name']} {t['datatype']} [n]" for t in input_tensors(model)
        )
    return Op(
        f"V2 inference with {model.name}: {inputs} -> output [n]",
        "V2",
        _ok("the outputs (binary when asked, after the JSON header)", answer),
        [*_BODY_ERRORS, "404", "503"],
        body={**_json(s["infer"]), "application/octet-stream": _binary(_V2_BINARY)},
        params=[header, _ENCODING],
    )


def _invocations(model: LoadedModel, s: dict[str, Any]) -> Op:
    table = "a table with a header row naming the columns (others ignored)"
    return Op(
        f"MLflow scoring (default model {model.name}; ?model=NAME for another)",
        "MLflow",
        _ok("predictions", _json(ref("MlflowPredictions"))),
        [*_BODY_ERRORS, "404", "503"],
        body={
            **_json(s["mlflow"]),
            "text/csv": {"schema": {"type": "string", "description": table}},
            "application/vnd.apache.parquet": _binary(table),
        },
        params=[{"name": "model", "in": "query", "schema": {"type": "string"}}, _ENCODING],
        style="mlflow",
    )


def _model_get(kind: str) -> Callable[[LoadedModel, dict[str, Any]], Op]:
    summary, schema = {
        "model_metadata": ("V2 model metadata", ref("ModelMetadata")),
        "model_ready": ("V2 model readiness", {"type": "object"}),
        "model_config": ("Triton model configuration", ref("ModelConfig")),
        "model_stats": ("Triton inference statistics", ref("ModelStatistics")),
    }[kind]
    tag = "Triton" if kind in ("model_config", "model_stats") else "V2"

    def make(model: LoadedModel, s: dict[str, Any]) -> Op:
        answer = _ok(summary, _json(schema))
        return Op(f"{summary} of {model.name}", tag, answer, ["404", "503"])

    return make


def _plot(model: LoadedModel, s: dict[str, Any]) -> Op:
    png = {"image/png": {"schema": {"type": "string", "format": "binary"}}}
    return Op(f"A plot of {model.name}", "page", _ok("PNG", png), ["404"])


#: operations of one model, by (method, path without "/versions/{version}")
_PER_MODEL: dict[tuple[str, str], Callable[[LoadedModel, dict[str, Any]], Op]] = {
    ("POST", "/models/{name}/predict"): _predict,
    ("POST", "/v2/models/{name}/infer"): _infer,
    ("GET", "/v2/models/{name}"): _model_get("model_metadata"),
    ("GET", "/v2/models/{name}/ready"): _model_get("model_ready"),
    ("GET", "/v2/models/{name}/config"): _model_get("model_config"),
    ("GET", "/v2/models/{name}/stats"): _model_get("model_stats"),
    ("GET", "/models/{name}/plots/{file}"): _plot,
}


def _text(media: str, description: str) -> dict[str, Any]:
    return _ok(description, {media: {"schema": {"type": "string"}}})


def _server_ops() -> dict[tuple[str, str], Op]:
    """The operations that are not of one model."""
    obj = _json({"type": "object"})
    return {
        ("GET", "/v2/health/live"): Op("V2 liveness", "V2", _ok("live", obj)),
        ("GET", "/v2/health/ready"): Op("V2 readiness", "V2", _ok("ready", obj), ["503"]),
        ("GET", "/v2"): Op(
            "V2 server metadata", "V2", _ok("metadata", _json(ref("ServerMetadata")))
        ),
        ("POST", "/v2/repository/index"): Op(
            "V2 repository index: every model and version, loaded or not",
            "V2",
            _ok("the index", _json(ref("RepositoryIndex"))),
            ["400", "413", "415"],
            body=_json(ref("RepositoryIndexRequest")),
            body_required=False,
        ),
        ("POST", "/v2/repository/models/{name}/load"): Op(
            "V2 repository: load a model (each version its policy wants)",
            "V2",
            _ok("loaded", obj),
            ["400", "404", "413", "415"],
        ),
        ("POST", "/v2/repository/models/{name}/unload"): Op(
            "V2 repository: unload every version of a model",
            "V2",
            _ok("unloaded", obj),
            ["400", "404", "413", "415"],
        ),
        ("GET", "/v2/models/stats"): Op(
            "Triton inference statistics of every model",
            "Triton",
            _ok("statistics", _json(ref("ModelStatistics"))),
        ),
        ("GET", "/ping"): Op("MLflow health", "MLflow", _text(_JSON, "a line break (as MLflow)")),
        ("GET", "/health"): Op("MLflow health", "MLflow", _text(_JSON, "a line break (as MLflow)")),
        ("GET", "/version"): Op("version", "MLflow", _text(_JSON, "the version (as MLflow)")),
        ("GET", "/metrics"): Op("Prometheus metrics", "server", _text("text/plain", "metrics")),
        ("GET", "/openapi.json"): Op("this document", "server", _ok("OpenAPI 3.0", obj)),
        ("GET", "/docs"): Op("Swagger UI", "server", _text("text/html", "the page")),
        ("GET", "/docs/init.js"): Op("Swagger UI", "server", _text("text/javascript", "script")),
        ("GET", "/docs/assets/{file}"): Op(
            "Swagger UI's files", "server", _text("application/octet-stream", "a file"), ["404"]
        ),
        ("GET", "/"): Op("the model page", "page", _text("text/html", "the page")),
        ("GET", "/assets/page.js"): Op("the model page", "page", _text("text/javascript", "js")),
    }


def _unsupported(path: str) -> Op | None:
    for name, prefix in UNSUPPORTED.items():
        if path == prefix or path.startswith(prefix + "/"):
            return _not_supported(name)
    if path.endswith("/trace/setting"):
        return _not_supported("trace")
    return None


def _not_supported(name: str) -> Op:
    answer = _ok(ERRORS["501"], _json(ref("Error")))
    return Op(f"Triton's {name} extension: not supported", "Triton", answer, ok_status="501")


def _generic(route: Any, method: str) -> Op:
    doc = (getattr(route.endpoint, "__doc__", None) or "").strip().split("\n")[0]
    errors = ["400", "404"] if method == "POST" else ["404"]
    return Op(doc or f"{method} {route.path}", "other", _ok("ok", _json({})), errors)


def _operations(
    route: Any, models: dict[str, LoadedModel], schemas: dict[str, Any], server_ops: Any
) -> Iterable[tuple[str, str, Op, str]]:
    """``(path, method, operation, operationId)`` for each method of ``route``, one per
    model where the route is a model's."""
    template = _PARAM.sub(lambda m: "{" + m.group(1) + "}", route.path)
    base = template.replace("/versions/{version}", "")
    suffix = "_version" if base != template else ""
    first = next(iter(models.values()), None)
    for method in sorted((route.methods or set()) - {"HEAD"}):
        make = _PER_MODEL.get((method, base))
        if first is None:  # no model ready yet (a repository): the generic operation
            op = server_ops.get((method, base)) or _unsupported(base) or _generic(route, method)
            yield template, method, op, _slug(f"{method}_{template}")
        elif make is not None:
            for model in models.values():
                op = make(model, schemas[model.name])
                path = template.replace("{name}", model.name)
                yield path, method, op, _slug(f"{method}_{base}_{model.name}{suffix}")
        elif (method, base) == ("POST", "/predict"):
            yield template, method, _predict(first, schemas[first.name]), "predict"
        elif (method, base) == ("POST", "/invocations"):
            yield template, method, _invocations(first, schemas[first.name]), "mlflow_invocations"
        else:
            op = server_ops.get((method, base)) or _unsupported(base) or _generic(route, method)
            yield template, method, op, _slug(f"{method}_{template}")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").lower()


def build_document(
    models: dict[str, LoadedModel],
    app_routes: Iterable[Any],
    *,
    token: bool = False,
    strict: bool = False,
) -> dict[str, Any]:
    """The OpenAPI 3.0.3 document of the application whose routes are ``app_routes``
    (Starlette routes: ``path``, ``methods``, ``endpoint``), serving ``models`` (the
    first is the default model); ``token``: every operation but the health checks
    needs a bearer token; ``strict``: ``--strict-columns``."""
    schemas = {
        name: (model_schemas if m.predictor.design is None else design_schemas)(m, strict)
        for name, m in models.items()
    }
    server_ops = _server_ops()
    paths: dict[str, dict[str, Any]] = {}
    ids: set[str] = set()
    for route in app_routes:
        if not isinstance(route, Route):
            continue
        for path, method, op, op_id in _operations(route, models, schemas, server_ops):
            while op_id in ids:
                op_id += "_"
            ids.add(op_id)
            item = paths.setdefault(path, {})
            if method.lower() not in item:  # the first route of a path answers it
                params = _PARAM.findall(path)
                item[method.lower()] = op.render(op_id, params, token, path in _OPEN)
    components: dict[str, Any] = {"schemas": COMPONENTS}
    if token:
        components["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "linreg serve",
            "version": inference.__version__,
            "description": "Models: "
            + (
                ", ".join(
                    f"{m.name} ({m.predictor.target} from {', '.join(m.predictor.features)})"
                    for m in models.values()
                )
                or "none ready yet"
            ),
        },
        "paths": paths,
        "components": components,
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
        app_routes = server.app.routes
        key = (*(m.version for m in models.values()), len(app_routes))
        body = cache.get(key)
        if body is None:
            cache.clear()
            s = server.settings
            doc = build_document(models, app_routes, token=bool(s.token), strict=s.strict_columns)
            body = cache[key] = dumps(doc)
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
