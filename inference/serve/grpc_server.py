"""V2 over gRPC: ``inference.GRPCInferenceService`` (``linreg serve --grpc-port``).

A ``grpc.aio`` server in the HTTP server's event loop, started and stopped with it
(on SIGTERM the RPCs in flight get ``--graceful-timeout`` to finish). It shares
everything with HTTP: the models and their versions, the runner (micro-batching
merges gRPC and HTTP requests), the bearer token (metadata ``authorization:
Bearer TOKEN``; ServerLive and ServerReady stay open, as the HTTP health checks do),
the limits (``--max-body-bytes`` is the largest message, ``--max-rows``,
``--limit-concurrency`` the RPCs taken at once), the metrics (method ``GRPC``) and
the access log (``grpc_status`` beside the HTTP status the answer stands for).

RPCs: ServerLive, ServerReady, ModelReady, ServerMetadata, ModelMetadata, ModelInfer
(:mod:`inference.serve.grpc_tensors`), RepositoryIndex, RepositoryModelLoad and
RepositoryModelUnload; the others of the service answer UNIMPLEMENTED. Messages are
Triton's (:mod:`inference.serve.proto`), so ``tritonclient.grpc`` works with its
defaults.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import numpy as np

import inference
from inference.errors import InputError
from inference.serve.control import change
from inference.serve.grpc_tensors import infer_response, parameter, request_matrix
from inference.serve.proto import grpc_service_pb2 as pb
from inference.serve.registry import ModelNotFound, ModelNotReady
from inference.serve.responses import ApiError
from inference.serve.v2 import model_metadata

__all__ = ["SERVICE", "Servicer", "start_grpc"]

log = logging.getLogger("linreg.serve")

SERVICE = "inference.GRPCInferenceService"
#: answered without the token (probes carry none)
OPEN = frozenset({"ServerLive", "ServerReady"})
#: the gRPC status of each HTTP status an answer stands for
CODES = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    404: grpc.StatusCode.NOT_FOUND,
    408: grpc.StatusCode.DEADLINE_EXCEEDED,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    415: grpc.StatusCode.INVALID_ARGUMENT,
    422: grpc.StatusCode.INVALID_ARGUMENT,
    499: grpc.StatusCode.CANCELLED,
    503: grpc.StatusCode.UNAVAILABLE,
}
#: the name of each answer's gRPC status, for the access log
CODE_NAMES = {status: code.name for status, code in CODES.items()} | {200: "OK"}
Handler = Callable[[Any, dict[str, Any]], Awaitable[Any]]


class Servicer:
    """The RPCs, each ``(request, info) -> response``; ``info`` collects the access
    log's fields. Errors are raised as :class:`ApiError` and answered by :meth:`wrap`."""

    def __init__(self, server: Any) -> None:
        self.server = server
        token = server.settings.token
        self._token = token.encode() if token else None
        self._needs_metadata = self._token is not None or server.access is not None

    async def ServerLive(self, request: Any, info: dict[str, Any]) -> Any:
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(self, request: Any, info: dict[str, Any]) -> Any:
        return pb.ServerReadyResponse(ready=self.server.ready())

    async def ModelReady(self, request: Any, info: dict[str, Any]) -> Any:
        try:
            self.server.registry.resolve(request.name, request.version or None)
        except (ModelNotFound, ModelNotReady):
            return pb.ModelReadyResponse(ready=False)
        return pb.ModelReadyResponse(ready=True)

    async def ServerMetadata(self, request: Any, info: dict[str, Any]) -> Any:
        return pb.ServerMetadataResponse(
            name="linreg-onnx",
            version=inference.__version__,
            extensions=["binary_tensor_data", "model_repository"],
        )

    async def ModelMetadata(self, request: Any, info: dict[str, Any]) -> Any:
        model = self.server.model(request.name, request.version or None)
        meta = model_metadata(model, self.server.registry.versions(model.name))
        tensor = pb.ModelMetadataResponse.TensorMetadata
        return pb.ModelMetadataResponse(
            name=meta["name"],
            versions=meta["versions"],
            platform=meta["platform"],
            inputs=[tensor(**t) for t in meta["inputs"]],
            outputs=[tensor(**t) for t in meta["outputs"]],
        )

    async def ModelInfer(self, request: Any, info: dict[str, Any]) -> Any:
        server = self.server
        model = server.model(request.model_name, request.model_version or None)
        X = request_matrix(request, model, server.settings.max_rows)
        info.update(model=model.name, version=model.version, rows=X.shape[0])
        server.metrics.observe_rows(model.name, X.shape[0])
        manifest = model.predictor.manifest
        out_name = manifest.output_name if manifest is not None else "prediction"
        interval = parameter(request.parameters, "interval")
        outputs: dict[str, np.ndarray]
        if interval is None:
            outputs = {out_name: await server.runner.predict(model, X)}
        else:
            level = parameter(request.parameters, "level")
            res = server.intervals(model, X, interval, 0.95 if level is None else level)
            outputs = {out_name: res.prediction, "lower": res.lower, "upper": res.upper}
        return infer_response(model, request, outputs)

    async def RepositoryIndex(self, request: Any, info: dict[str, Any]) -> Any:
        entries = await asyncio.to_thread(self.server.registry.index, request.ready)
        index = pb.RepositoryIndexResponse.ModelIndex
        return pb.RepositoryIndexResponse(models=[index(**e) for e in entries])

    async def RepositoryModelLoad(self, request: Any, info: dict[str, Any]) -> Any:
        await change(self.server, request.model_name, "load")
        return pb.RepositoryModelLoadResponse()

    async def RepositoryModelUnload(self, request: Any, info: dict[str, Any]) -> Any:
        await change(self.server, request.model_name, "unload")
        return pb.RepositoryModelUnloadResponse()

    # --- what every RPC goes through ------------------------------------------------
    def _authorized(self, metadata: Any) -> bool:
        assert self._token is not None
        for key, value in metadata or ():
            if key == "authorization":
                scheme, _, token = str(value).partition(" ")
                return scheme.lower() == "bearer" and hmac.compare_digest(
                    token.strip().encode(), self._token
                )
        return False

    def wrap(self, name: str, method: Handler, endpoint: str) -> Callable[..., Awaitable[Any]]:
        """``method`` as a grpc.aio handler: token, in-flight count, errors, metrics, log."""
        server = self.server

        async def handler(request: Any, context: grpc.aio.ServicerContext) -> Any:
            start = time.perf_counter()
            info: dict[str, Any] = {}
            status, message, response = 499, "cancelled", None
            server.inflight += 1
            server.metrics.inflight += 1
            metadata = context.invocation_metadata() if self._needs_metadata else None
            try:
                if self._token is not None and name not in OPEN and not self._authorized(metadata):
                    raise ApiError(401, "a valid 'authorization: Bearer <token>' is required")
                response = await method(request, info)
                status = 200
            except ApiError as exc:
                status, message = exc.status, exc.message
            except InputError as exc:
                status, message = 422, str(exc)
            except Exception as exc:
                log.error("internal error on gRPC %s", name, exc_info=exc)
                status, message = 500, "internal server error (logged on the server)"
            finally:
                server.inflight -= 1
                server.metrics.inflight -= 1
                self._record(name, endpoint, status, start, context, metadata, info)
            if response is None:
                await context.abort(CODES.get(status, grpc.StatusCode.INTERNAL), message)
            return response

        return handler

    def _record(
        self,
        name: str,
        endpoint: str,
        status: int,
        start: float,
        context: Any,
        metadata: Any,
        info: dict[str, Any],
    ) -> None:
        seconds = time.perf_counter() - start
        server = self.server
        server.metrics.observe(endpoint, "GRPC", status, seconds)
        if server.access is None:
            return
        line: dict[str, Any] = {
            "method": "GRPC",
            "path": f"/{SERVICE}/{name}",
            "status": status,
            "grpc_status": CODE_NAMES.get(status, "INTERNAL"),
            "ms": round(seconds * 1000, 3),
            "endpoint": endpoint,
            "client": context.peer(),
        }
        for key, value in metadata or ():
            if key == "x-request-id":
                line["request_id"] = str(value)[:200]
                break
        line.update(info)
        server.access.write(line)


#: each RPC: (request class, response class, endpoint label of the metrics)
METHODS: dict[str, tuple[Any, Any, str]] = {
    "ServerLive": (pb.ServerLiveRequest, pb.ServerLiveResponse, "grpc_health"),
    "ServerReady": (pb.ServerReadyRequest, pb.ServerReadyResponse, "grpc_health"),
    "ModelReady": (pb.ModelReadyRequest, pb.ModelReadyResponse, "grpc_model"),
    "ServerMetadata": (pb.ServerMetadataRequest, pb.ServerMetadataResponse, "grpc_server"),
    "ModelMetadata": (pb.ModelMetadataRequest, pb.ModelMetadataResponse, "grpc_model"),
    "ModelInfer": (pb.ModelInferRequest, pb.ModelInferResponse, "grpc_infer"),
    "RepositoryIndex": (pb.RepositoryIndexRequest, pb.RepositoryIndexResponse, "grpc_repository"),
    "RepositoryModelLoad": (
        pb.RepositoryModelLoadRequest,
        pb.RepositoryModelLoadResponse,
        "grpc_repository",
    ),
    "RepositoryModelUnload": (
        pb.RepositoryModelUnloadRequest,
        pb.RepositoryModelUnloadResponse,
        "grpc_repository",
    ),
}


def handlers(servicer: Servicer) -> grpc.GenericRpcHandler:
    """The service's method handlers (the generated ``*_pb2_grpc`` module's job)."""
    table = {
        name: grpc.unary_unary_rpc_method_handler(
            servicer.wrap(name, getattr(servicer, name), endpoint),
            request_deserializer=request.FromString,
            response_serializer=response.SerializeToString,
        )
        for name, (request, response, endpoint) in METHODS.items()
    }
    return grpc.method_handlers_generic_handler(SERVICE, table)


async def start_grpc(server: Any) -> grpc.aio.Server:
    """Start the gRPC server of ``server`` (an :class:`inference.serve.app.Server`) on
    ``settings.host:settings.grpc_port``; raises ``RuntimeError`` when the port
    cannot be bound."""
    s = server.settings
    options = [
        ("grpc.max_receive_message_length", s.max_body_bytes),
        ("grpc.max_send_message_length", -1),
        # one process: a port in use is an error; workers share the port (the kernel
        # spreads the connections)
        ("grpc.so_reuseport", 1 if s.workers > 1 else 0),
    ]
    grpc_server = grpc.aio.server(options=options, maximum_concurrent_rpcs=s.limit_concurrency)
    grpc_server.add_generic_rpc_handlers((handlers(Servicer(server)),))
    host = f"[{s.host}]" if ":" in s.host else s.host
    address = f"{host}:{s.grpc_port}"
    if grpc_server.add_insecure_port(address) == 0:
        raise RuntimeError(f"--grpc-port {s.grpc_port}: cannot listen on {address}")
    await grpc_server.start()
    log.info("gRPC: listening on %s (%s)", address, SERVICE)
    return grpc_server
