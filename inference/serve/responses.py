"""JSON responses and the errors every endpoint raises.

An :class:`ApiError` becomes ``{"error": message}`` with its status (MLflow's
endpoints answer ``{"error_code": ..., "message": ...}`` as MLflow does); nothing
else reaches a client, and never a stack trace.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import threading
from collections.abc import Iterator
from typing import Any

import orjson
from starlette.responses import Response

__all__ = [
    "ApiError",
    "INLINE_BODY_BYTES",
    "JSON_OPTIONS",
    "dumps",
    "gc_paused",
    "json_response",
    "loads",
    "unreadable",
]

log = logging.getLogger("linreg.serve")

#: bodies up to this size are parsed as they are, on the event loop (a one-row request
#: takes microseconds; parsing 64 KiB of JSON builds at most a few MiB of objects);
#: larger ones are checked first (:mod:`inference.serve.limits`) and parsed on a
#: worker thread with the cyclic garbage collector paused (:func:`gc_paused`)
INLINE_BODY_BYTES = 64 << 10

#: numpy arrays serialize natively (no per-element Python floats)
JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


class ApiError(ValueError):
    """A request that cannot be answered: ``status`` and a message for the client.

    ``style`` picks the body's shape: "plain" (``{"error": message}``) or
    "mlflow" (``{"error_code": ..., "message": ...}``).
    """

    def __init__(self, status: int, message: str, *, style: str = "plain") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.style = style

    def response(self) -> Response:
        if self.style == "mlflow":
            code = {
                400: "BAD_REQUEST",
                401: "UNAUTHENTICATED",
                404: "RESOURCE_DOES_NOT_EXIST",
                413: "BAD_REQUEST",
                422: "BAD_REQUEST",
            }.get(self.status, "INTERNAL_ERROR")
            body: dict[str, Any] = {"error_code": code, "message": self.message}
        else:
            body = {"error": self.message}
        headers = {"WWW-Authenticate": "Bearer"} if self.status == 401 else None
        return json_response(body, self.status, headers=headers)


def unreadable(exc: Exception, style: str = "plain") -> ApiError:
    """The 4xx for an exception a request's parsing raised that is not already an
    answer (an :class:`ApiError` or an ``InputError``): ``MemoryError`` a 413, any other
    a 400 naming it, with its traceback in the server's log as a warning."""
    if isinstance(exc, MemoryError):
        return ApiError(
            413, "the request needs more memory than the server could allocate", style=style
        )
    log.warning("a request body could not be read", exc_info=exc)
    return ApiError(
        400,
        f"the request body could not be read ({type(exc).__name__}: {str(exc)[:300]})",
        style=style,
    )


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=JSON_OPTIONS)


_gc_lock = threading.Lock()
_gc_pausing = 0
_gc_was_enabled = True


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic garbage collector off for the block (and while any other thread is in
    such a block). orjson builds a list or dict per row in one call that holds the
    interpreter, and the collections its allocations trigger, each over every object
    made so far, tripled that time (0.39 s against 1.15 s for 16 MiB of rows):
    what a health check waits. The parsed objects are freed by reference counting."""
    global _gc_pausing, _gc_was_enabled
    with _gc_lock:
        if _gc_pausing == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pausing += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pausing -= 1
            if _gc_pausing == 0 and _gc_was_enabled:
                gc.enable()


def loads(body: bytes | bytearray | memoryview, *, style: str = "plain") -> Any:
    """Parse a JSON body; malformed JSON is a 400 saying where it broke. A body above
    :data:`INLINE_BODY_BYTES` is parsed with the garbage collector paused."""
    if not body:
        raise ApiError(400, "the request body is empty; expected a JSON document", style=style)
    try:
        if len(body) <= INLINE_BODY_BYTES:
            return orjson.loads(body)
        with gc_paused():
            return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, f"the request body is not valid JSON: {exc}", style=style) from None


def json_response(
    value: Any, status: int = 200, *, headers: dict[str, str] | None = None
) -> Response:
    return Response(dumps(value), status, headers=headers, media_type="application/json")
