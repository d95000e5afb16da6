"""JSON responses and the errors every endpoint raises.

An :class:`ApiError` becomes ``{"error": message}`` with its status (MLflow's
endpoints answer ``{"error_code": ..., "message": ...}`` as MLflow does); nothing
else reaches a client, and never a stack trace.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

__all__ = [
    "ApiError",
    "JSON_OPTIONS",
    "dumps",
    "json_response",
    "loads",
]

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


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=JSON_OPTIONS)


def loads(body: bytes | bytearray | memoryview, *, style: str = "plain") -> Any:
    """Parse a JSON body; malformed JSON is a 400 saying where it broke."""
    if not body:
        raise ApiError(400, "the request body is empty; expected a JSON document", style=style)
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, f"the request body is not valid JSON: {exc}", style=style) from None


def json_response(
    value: Any, status: int = 200, *, headers: dict[str, str] | None = None
) -> Response:
    return Response(dumps(value), status, headers=headers, media_type="application/json")
