"""Reading a request body with a size limit and a deadline for slow clients."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from inference.serve.responses import ApiError

__all__ = ["ClientGone", "read_body"]


class ClientGone(Exception):
    """The client closed the connection before its body arrived."""


if sys.version_info >= (3, 11):
    _timeout: Any = asyncio.timeout
else:  # pragma: no cover - Python 3.10

    class _timeout:  # noqa: N801 - stands in for asyncio.timeout
        def __init__(self, delay: float) -> None:
            self.delay = delay

        async def __aenter__(self) -> None:
            return None

        async def __aexit__(self, *exc: object) -> None:
            return None


async def read_body(
    receive: Any,
    headers: Any,
    *,
    limit: int,
    timeout: float,
    style: str = "plain",
) -> bytes:
    """The whole body: 413 above ``limit`` bytes, 408 when it takes over ``timeout`` s.

    ``headers`` is the request's header mapping (``content-length`` is checked before
    anything is read). On Python 3.10 the deadline is not enforced.
    """
    length = headers.get("content-length")
    if length is not None:
        try:
            declared = int(length)
        except ValueError:
            raise ApiError(400, f"Content-Length {length!r} is not a number", style=style) from None
        if declared > limit:
            raise ApiError(
                413, f"the body is {declared} bytes, above the limit of {limit}", style=style
            )
    chunks: list[bytes] = []
    size = 0
    try:
        async with _timeout(timeout):
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise ClientGone()
                chunk = message.get("body", b"")
                if chunk:
                    size += len(chunk)
                    if size > limit:
                        raise ApiError(
                            413, f"the body is over the limit of {limit} bytes", style=style
                        )
                    chunks.append(chunk)
                if not message.get("more_body", False):
                    break
    except TimeoutError:
        raise ApiError(
            408, f"the request body did not arrive within {timeout:g} s", style=style
        ) from None
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)
