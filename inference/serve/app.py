"""The application: routes of every protocol behind one pure-ASGI layer.

The layer around the Starlette router does, per request, what must never be
skipped: the bearer token check, the in-flight count (micro-batching reads it),
the status, latency and error metrics, and the access log line. It is plain ASGI
rather than Starlette middleware classes, which cost a task and a queue per
request.

Request bodies above 64 KiB (:data:`~inference.serve.responses.INLINE_BODY_BYTES`)
are parsed on a worker thread, at most :data:`PARSE_SLOTS` at once
(:meth:`Server.parse_in_thread`), after the checks of
:mod:`inference.serve.limits`: health checks and small requests go on meanwhile,
and the memory spent on parsing is bounded by the number of slots.

A path with a trailing slash is answered as the path without it (``/v2/`` as
``/v2``): no redirect, which clients such as httpx do not follow by default.
Bodies with ``Content-Encoding: gzip`` or ``deflate`` are decompressed by
:meth:`Server.body`, the body limit applying to the decompressed size.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, MutableMapping
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from inference.errors import InputError, ModelLoadError
from inference.intervals import IntervalPrediction
from inference.serve import control, mlflow, openapi, page, plain, triton, v2
from inference.serve.batching import Runner
from inference.serve.body import ClientGone, Deadlines, content_codings, decompress, read_body
from inference.serve.design_body import RawColumns
from inference.serve.logs import AccessLog
from inference.serve.metrics import CONTENT_TYPE_LATEST, Metrics, Timing
from inference.serve.models import ModelRegistry
from inference.serve.registry import LoadedModel, ModelNotFound, ModelNotReady
from inference.serve.repository import ModelSource, is_model_dir, scan_repository
from inference.serve.responses import ApiError, json_response
from inference.serve.settings import SETTINGS_ENV, TOKEN_ENV, Settings

__all__ = ["PARSE_SLOTS", "Server", "create_app", "from_environment"]

log = logging.getLogger("linreg.serve")
T = TypeVar("T")

#: larger bodies parsed at once, each on a worker thread (the others wait their turn)
PARSE_SLOTS = max(1, min(4, os.cpu_count() or 1))

#: compressed bodies up to this size are decompressed on the event loop (at most
#: about 1000 times larger: a few milliseconds), larger ones on a worker thread
_INLINE_COMPRESSED = 4096

#: answered without the bearer token (probes of orchestrators carry none)
OPEN_PATHS = frozenset({"/v2/health/live", "/v2/health/ready", "/ping", "/health"})


class Server:
    """Models, runner, metrics and settings, shared by every route; ``asgi`` is the app."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.registry = build_registry(settings)
        self.metrics = Metrics()
        self.registry.listeners.append(self.metrics.reloaded)
        if settings.model_dirs:  # loaded before the server listens (exit 1 on failure)
            self.registry.load_now()
        self.grpc: Any = None
        self.inflight = 0
        self.runner = Runner(
            max_batch_rows=settings.max_batch_rows,
            max_batch_delay_us=settings.max_batch_delay_us,
            inflight=lambda: self.inflight,
            observe_batch=self.metrics.observe_batch,
            observe_run=self.metrics.observe_run,
        )
        self.parse_slots = asyncio.Semaphore(PARSE_SLOTS)
        self._body_limit = (settings.max_body_bytes, "--max-body-bytes")
        self._json_limit = (
            (settings.max_json_bytes, "--max-json-bytes")
            if settings.max_json_bytes < settings.max_body_bytes
            else self._body_limit
        )
        self._token = settings.token.encode() if settings.token else None
        self._tasks: list[asyncio.Task[None]] = []
        self.deadlines = Deadlines()
        self.access = AccessLog() if settings.access_log else None
        routes: list[Any] = [
            *plain.routes(self),
            *triton.routes(self),  # before v2's: GET /v2/models/stats is not a model
            *v2.routes(self),
            *control.routes(self),
            *mlflow.routes(self),
            Route("/metrics", self._metrics, methods=["GET"]),
            *openapi.routes(self),
            *page.routes(self),
            *triton.unsupported_routes(self),  # last: a route implementing one wins
        ]
        # the prediction routes are also dispatched directly (_fast_route), skipping
        # the router's walk over every route and Starlette's two exception layers
        endpoints = {r.path: r.endpoint for r in routes if isinstance(r, Route)}
        self._exact = {p: endpoints[p] for p in ("/predict", "/invocations")}
        self._model_predict = endpoints["/models/{name}/predict"]
        self._v2_infer = endpoints["/v2/models/{name}/infer"]
        self._v2_version_infer = endpoints["/v2/models/{name}/versions/{version}/infer"]
        self.app = Starlette(
            routes=routes,
            lifespan=self._lifespan,
            exception_handlers={
                ApiError: _api_error,
                InputError: _input_error,
                ModelNotFound: _not_found,
                ModelNotReady: _not_ready,
                HTTPException: _http_error,
                ClientGone: _client_gone,
                Exception: _internal_error,
            },
        )

    # --- helpers the routes call -----------------------------------------------
    def note(self, request: Request, endpoint: str) -> None:
        request.scope["linreg"]["endpoint"] = endpoint

    def note_rows(self, request: Request, model: LoadedModel, rows: int) -> None:
        info = request.scope["linreg"]
        info["model"] = model.name
        info["version"] = model.version
        info["rows"] = rows
        self.metrics.observe_rows(model.name, rows)

    def timing(self, request: Request, model: LoadedModel) -> Timing:
        """A prediction request's :class:`Timing`, counted in the statistics of
        ``model`` when the request is answered (:meth:`Metrics.finish`)."""
        timing = request.scope["linreg"]["stats"] = Timing(model)
        return timing

    def model(self, name: str, version: str | None = None, *, style: str = "plain") -> LoadedModel:
        """Version ``version`` of ``name`` (None: its highest ready version); 404 for a
        model or version the server does not know, 503 for one not loaded now."""
        try:
            return self.registry.resolve(name, version)
        except ModelNotFound as exc:
            raise ApiError(404, str(exc), style=style) from None
        except ModelNotReady as exc:
            raise ApiError(503, str(exc), style=style) from None

    def model_of(self, request: Request) -> LoadedModel:
        """:meth:`model` named by a route's ``name`` and optional ``version`` parameters."""
        params = request.path_params
        return self.model(params["name"], params.get("version"))

    async def body(
        self, request: Request, *, style: str = "plain", json: bool = False
    ) -> bytes | bytearray:
        """The request's body, decompressed (gzip, deflate); with ``json``, no larger
        than ``max_json_bytes`` either (the limits apply to the decompressed size)."""
        limit, flag = self._json_limit if json else self._body_limit
        codings = None
        for key, value in request.scope["headers"]:  # Headers.get raises when it is absent
            if key == b"content-encoding":
                codings = content_codings(value.decode("latin-1"), style=style)
                break
        body = await read_body(
            request.receive,
            request.headers,
            limit=limit,
            timeout=self.settings.body_timeout,
            deadlines=self.deadlines,
            style=style,
            flag=flag,
        )
        if not codings:
            return body
        if len(body) <= _INLINE_COMPRESSED:
            return decompress(body, codings, limit=limit, flag=flag, style=style)
        async with self.parse_slots:
            return await asyncio.to_thread(
                decompress, body, codings, limit=limit, flag=flag, style=style
            )

    async def parse_in_thread(self, parse: Callable[..., T], *args: Any) -> T:
        """``parse(*args)``, the reading of a body above 64 KiB of JSON or CSV, on a
        worker thread once one of :data:`PARSE_SLOTS` is free (the route turns what it
        raises into an answer: :func:`inference.serve.responses.unreadable`)."""
        async with self.parse_slots:
            return await asyncio.to_thread(parse, *args)

    def intervals(
        self, model: LoadedModel, X: np.ndarray | RawColumns, kind: Any, level: Any
    ) -> IntervalPrediction:
        if not isinstance(kind, str):
            raise ApiError(422, f"interval {kind!r}: expected 'confidence' or 'prediction'")
        if not isinstance(level, int | float) or isinstance(level, bool):
            raise ApiError(422, f"level {level!r} is not a number")
        try:
            res = model.predictor.predict(X, interval=kind, level=float(level))
        except InputError:
            raise
        except (ValueError, ImportError) as exc:
            raise ApiError(422, str(exc)) from None
        assert isinstance(res, IntervalPrediction)
        return res

    def ready(self) -> bool:
        return self.registry.ready()

    # --- routes of the server itself -----------------------------------------
    async def _metrics(self, request: Request) -> Response:
        self.note(request, "metrics")
        return Response(self.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    async def _start_models(self) -> None:
        """Start-up loading (when the server listens first), then polling."""
        s = self.settings
        if not self.registry.started:
            await self.registry.start()
        if s.model_control_mode == "poll" and s.reload_interval > 0:
            await self.registry.watch(s.reload_interval)

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        self._tasks.append(asyncio.create_task(self.deadlines.run()))
        self._tasks.append(asyncio.create_task(self._start_models()))
        if self.settings.grpc_port is not None:
            from inference.serve.grpc_server import start_grpc

            self.grpc = await start_grpc(self)
        try:
            yield
        finally:
            if self.grpc is not None:  # the RPCs in flight finish first
                await self.grpc.stop(self.settings.graceful_timeout)
            for task in self._tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if self.access is not None:
                self.access.flush()

    # --- the ASGI entry --------------------------------------------------------
    def _authorized(self, scope: dict[str, Any]) -> bool:
        assert self._token is not None
        for key, value in scope["headers"]:
            if key == b"authorization":
                scheme, _, token = value.partition(b" ")
                return scheme.lower() == b"bearer" and hmac.compare_digest(
                    token.strip(), self._token
                )
        return False

    def _fast_route(self, scope: dict[str, Any]) -> tuple[Any, dict[str, str]] | None:
        """The endpoint and path parameters of a prediction request, or None."""
        if scope["method"] != "POST":
            return None
        path = scope["path"]
        endpoint = self._exact.get(path)
        if endpoint is not None:
            return endpoint, {}
        parts = path.split("/")
        if len(parts) == 4 and parts[1] == "models" and parts[3] == "predict" and parts[2]:
            return self._model_predict, {"name": parts[2]}
        if (
            len(parts) == 5
            and parts[1] == "v2"
            and parts[2] == "models"
            and parts[4] == "infer"
            and parts[3]
        ):
            return self._v2_infer, {"name": parts[3]}
        if (
            len(parts) == 7
            and parts[1] == "v2"
            and parts[2] == "models"
            and parts[4] == "versions"
            and parts[6] == "infer"
            and parts[3]
            and parts[5]
        ):
            return self._v2_version_infer, {"name": parts[3], "version": parts[5]}
        return None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        path = scope["path"]
        if len(path) > 1 and path[-1] == "/":  # answered as without it, not redirected
            scope["path"] = path = path.rstrip("/") or "/"
        info: dict[str, Any] = {"endpoint": "other"}
        scope["linreg"] = info
        status = 0

        async def send_status(message: MutableMapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        self.inflight += 1
        self.metrics.inflight += 1
        try:
            if self._token is not None and path not in OPEN_PATHS and not self._authorized(scope):
                response = ApiError(
                    401, "a valid 'Authorization: Bearer <token>' header is required"
                ).response()
                await response(scope, receive, send_status)
            else:
                fast = self._fast_route(scope)
                if fast is None:
                    await self.app(scope, receive, send_status)
                else:
                    scope["path_params"] = fast[1]
                    request = Request(scope, receive, send_status)
                    try:
                        response = await fast[0](request)
                    except Exception as exc:
                        response = await _ERRORS.get(type(exc), _error_of_kind)(request, exc)
                    await response(scope, receive, send_status)
        except Exception:  # already answered 500 by the handler below; never raised to uvicorn
            pass
        finally:
            self.inflight -= 1
            self.metrics.inflight -= 1
            seconds = time.perf_counter() - start
            self.metrics.observe(info["endpoint"], scope["method"], status, seconds)
            if "stats" in info:
                self.metrics.finish(info["stats"], status, int(seconds * 1e9))
            if self.access is not None:
                client = scope.get("client")
                line = {
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "ms": round(seconds * 1000, 3),
                    "endpoint": info["endpoint"],
                    "client": client[0] if client else None,
                }
                for key, value in scope["headers"]:
                    if key == b"x-request-id":
                        line["request_id"] = value.decode("latin-1")[:200]
                        break
                if "model" in info:
                    line["model"] = info["model"]
                    line["version"] = info["version"]
                    line["rows"] = info["rows"]
                self.access.write(line)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return exc.response()


async def _input_error(request: Request, exc: Exception) -> Response:
    return json_response({"error": str(exc)}, 422)


async def _not_found(request: Request, exc: Exception) -> Response:
    return json_response({"error": str(exc)}, 404)


async def _not_ready(request: Request, exc: Exception) -> Response:
    return json_response({"error": str(exc)}, 503)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        message = f"no route {request.url.path!r}; see /docs for the endpoints"
    elif exc.status_code == 405:
        message = f"method {request.method} is not allowed on {request.url.path!r}"
    else:
        message = str(exc.detail)
    return json_response({"error": message}, exc.status_code, headers=dict(exc.headers or {}))


async def _client_gone(request: Request, exc: Exception) -> Response:
    return Response(b"", 499)


async def _internal_error(request: Request, exc: Exception) -> Response:
    log.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
    return json_response({"error": "internal server error (logged on the server)"}, 500)


async def _error_of_kind(request: Request, exc: Exception) -> Response:
    """The answer to ``exc`` from the handler of its nearest class (as Starlette picks)."""
    for kind in type(exc).__mro__:
        handler = _ERRORS.get(kind)
        if handler is not None:
            return await handler(request, exc)
    return await _internal_error(request, exc)


_ERRORS: dict[type, Any] = {
    ApiError: _api_error,
    InputError: _input_error,
    ModelNotFound: _not_found,
    ModelNotReady: _not_ready,
    ClientGone: _client_gone,
    Exception: _internal_error,
}


def build_registry(settings: Settings) -> ModelRegistry:
    """The registry of ``settings``' models: the model directories given, or the
    single model or repository of ``model_dir``, or ``model_repository``."""
    threads = settings.session_threads()
    explicit = settings.model_control_mode == "explicit"
    wanted = None if not explicit or "*" in settings.load_models else set(settings.load_models)
    root = None
    if settings.model_dirs:
        paths = [Path(d).absolute() for d in settings.model_dirs]
        sources = [ModelSource(p.name, p, single=True) for p in paths]
    else:
        given = settings.model_repository or settings.model_dir
        if given is None:
            raise ModelLoadError("no model directory or repository given")
        path = Path(given).absolute()
        if settings.model_dir is not None and is_model_dir(path):
            sources = [ModelSource(settings.model_name or path.name, path, single=True)]
        else:
            root = path
            sources = list(scan_repository(path).values())
    return ModelRegistry(
        sources,
        threads=threads,
        root=root,
        wanted=wanted,
        poll_new=settings.model_control_mode == "poll",
        trusted_keys=settings.trusted_keys,
    )


def create_app(settings: Settings) -> Server:
    """Load the models of ``settings`` and build the ASGI application."""
    return Server(settings)


def from_environment() -> Server:
    """uvicorn's factory for worker processes: settings from ``LINREG_SERVE_SETTINGS``."""
    import os

    from inference.serve.logs import configure_logging

    configure_logging()
    settings = Settings.from_json(os.environ[SETTINGS_ENV])
    settings.token = settings.token or os.environ.get(TOKEN_ENV) or None
    return Server(settings)
