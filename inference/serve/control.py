"""The V2 repository extension: the index of models and versions, load and unload.

- ``POST /v2/repository/index``: ``[{"name", "version", "state", "reason"}]`` for every
  model and version the server knows, loaded or not (``state`` is ``READY``,
  ``UNAVAILABLE`` or ``LOADING``; ``reason`` says why one is not ready). The body may
  be empty (``tritonclient`` sends none) or ``{"ready": true}`` for the ready ones only.
- ``POST /v2/repository/models/{name}/load``: load the model now, each version its
  policy wants (files that failed before are tried again); 200 ``{}`` once loaded,
  400 with the reasons when a version failed (what was serving goes on).
- ``POST /v2/repository/models/{name}/unload``: unload every version; polling leaves
  the model alone until it is loaded again.

Load and unload are refused (400) with ``--model-control-mode none``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from inference.errors import ModelLoadError
from inference.serve.registry import ModelNotFound
from inference.serve.responses import ApiError, json_response, loads

__all__ = ["ready_only", "routes"]


def ready_only(body: bytes | bytearray) -> bool:
    """The ``ready`` flag of an index request (an empty body: False)."""
    if not body.strip():
        return False
    request = loads(body)
    if not isinstance(request, dict):
        raise ApiError(400, f"the request is a JSON {type(request).__name__}; expected an object")
    ready = request.get("ready", False)
    if not isinstance(ready, bool):
        raise ApiError(400, f"'ready' is {ready!r}; expected true or false")
    return ready


async def change(server: Any, name: str, action: str) -> None:
    """Load or unload ``name`` (``action``), as an :class:`ApiError` when refused."""
    mode = server.settings.model_control_mode
    if mode == "none":
        raise ApiError(
            400, f"cannot {action} {name!r}: model control is off (--model-control-mode none)"
        )
    registry = server.registry
    try:
        await (registry.load(name) if action == "load" else registry.unload(name))
    except ModelNotFound as exc:
        raise ApiError(404, str(exc)) from None
    except ModelLoadError as exc:
        raise ApiError(400, str(exc)) from None


def routes(server: Any) -> list[Route]:
    """The repository routes, bound to ``server`` (an :class:`inference.serve.app.Server`)."""

    async def index(request: Request) -> Response:
        server.note(request, "v2_repository")
        body = await server.body(request, json=True)
        entries = await asyncio.to_thread(server.registry.index, ready_only(body))
        return json_response(entries)

    async def load(request: Request) -> Response:
        server.note(request, "v2_repository")
        await server.body(request, json=True)  # parameters (Triton's config override): none
        await change(server, request.path_params["name"], "load")
        return json_response({})

    async def unload(request: Request) -> Response:
        server.note(request, "v2_repository")
        await server.body(request, json=True)
        await change(server, request.path_params["name"], "unload")
        return json_response({})

    return [
        Route("/v2/repository/index", index, methods=["POST"]),
        Route("/v2/repository/models/{name}/load", load, methods=["POST"]),
        Route("/v2/repository/models/{name}/unload", unload, methods=["POST"]),
    ]
