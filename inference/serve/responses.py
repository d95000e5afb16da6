"""JSON responses and the errors every endpoint raises.

An :class:`ApiError` becomes ``{"error": message}`` with its status (MLflow's
endpoints answer ``{"error_code": ..., "message": ...}`` as MLflow does, the code
named from the status by :data:`MLFLOW_ERROR_CODES`); nothing else reaches a
client, and never a stack trace.

JSON bodies are parsed by orjson, which refuses the tokens ``NaN``, ``Infinity``
and ``-Infinity`` that Python's ``json`` module (and so MLflow's client) writes for
non-finite floats. Only when orjson fails and such a token is in the body is it
parsed again by Python's ``json`` (:func:`loads`): valid JSON costs nothing more.
"""

from __future__ import annotations

import contextlib
import gc
import json
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
    "MLFLOW_ERROR_CODES",
    "dumps",
    "gc_paused",
    "json_response",
    "loads",
    "mlflow_code",
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

#: MLflow's ``error_code`` for each status (names of ``mlflow.protos.databricks_pb2.
#: ErrorCode``, the statuses of ``mlflow.exceptions.ERROR_CODE_TO_HTTP_STATUS`` where
#: MLflow has one); other 4xx: BAD_REQUEST, other 5xx: INTERNAL_ERROR
MLFLOW_ERROR_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "RESOURCE_DOES_NOT_EXIST",
    405: "ENDPOINT_NOT_FOUND",
    408: "BAD_REQUEST",  # DEADLINE_EXCEEDED is a 504 in MLflow: the server's time
    413: "REQUEST_LIMIT_EXCEEDED",
    415: "BAD_REQUEST",
    422: "INVALID_PARAMETER_VALUE",
    429: "REQUEST_LIMIT_EXCEEDED",
    499: "CANCELLED",
    501: "NOT_IMPLEMENTED",
    503: "TEMPORARILY_UNAVAILABLE",
}
#: what Python's json writes for non-finite floats, and orjson refuses
_NONFINITE_TOKENS = (b"NaN", b"Infinity")


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
            code = mlflow_code(self.status)
            body: dict[str, Any] = {"error_code": code, "message": self.message}
        else:
            body = {"error": self.message}
        headers = {"WWW-Authenticate": "Bearer"} if self.status == 401 else None
        return json_response(body, self.status, headers=headers)


def mlflow_code(status: int) -> str:
    """MLflow's ``error_code`` name for an answer of ``status``."""
    code = MLFLOW_ERROR_CODES.get(status)
    if code is not None:
        return code
    return "INTERNAL_ERROR" if status >= 500 else "BAD_REQUEST"


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
    :data:`INLINE_BODY_BYTES` is parsed with the garbage collector paused. ``NaN``,
    ``Infinity`` and ``-Infinity`` parse as floats (module docstring)."""
    if not body:
        raise ApiError(400, "the request body is empty; expected a JSON document", style=style)
    try:
        if len(body) <= INLINE_BODY_BYTES:
            return orjson.loads(body)
        with gc_paused():
            return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        error = exc
    value = _loads_nonfinite(body)
    if value is _INVALID:
        raise ApiError(400, f"the request body is not valid JSON: {error}", style=style)
    return value


_INVALID = object()


def _loads_nonfinite(body: bytes | bytearray | memoryview) -> Any:
    """``body`` parsed by Python's json module when it holds a token orjson refuses;
    else (or when json fails too) :data:`_INVALID`."""
    raw = bytes(body) if isinstance(body, memoryview) else body
    if not any(token in raw for token in _NONFINITE_TOKENS):
        return _INVALID
    try:
        with gc_paused():
            return json.loads(raw)
    except (ValueError, RecursionError):  # also UnicodeDecodeError, a ValueError
        return _INVALID


def json_response(
    value: Any, status: int = 200, *, headers: dict[str, str] | None = None
) -> Response:
    return Response(dumps(value), status, headers=headers, media_type="application/json")
