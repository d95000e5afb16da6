"""Reading a request body with a size limit and a deadline for slow clients.

Deadlines are kept by one sweeper task per server (:class:`Deadlines`) rather than
a timer per request: a read registers its task and deadline in a dict (a fraction
of a microsecond), and the sweeper, every half second, cancels the reads that
are late, which then answer 408. A deadline is thus kept to within the sweep period.

A body of several chunks is gathered in one ``bytearray`` (grown in place), not in
a list joined at the end, which held it twice.
"""

from __future__ import annotations

import asyncio
from typing import Any

from inference.serve.responses import ApiError

__all__ = ["ClientGone", "Deadlines", "read_body"]


class ClientGone(Exception):
    """The client closed the connection before its body arrived."""


class Deadlines:
    """Body reads in progress and their deadlines (event-loop time)."""

    def __init__(self) -> None:
        self.waiting: dict[asyncio.Task[Any], float] = {}
        self.expired: set[asyncio.Task[Any]] = set()

    def sweep(self, now: float) -> None:
        for task, deadline in list(self.waiting.items()):
            if deadline <= now and task not in self.expired:
                self.expired.add(task)
                task.cancel()

    async def run(self, period: float = 0.5) -> None:
        """Sweep every ``period`` seconds until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(period)
            self.sweep(loop.time())


async def read_body(
    receive: Any,
    headers: Any,
    *,
    limit: int,
    timeout: float,
    deadlines: Deadlines | None = None,
    style: str = "plain",
    flag: str = "--max-body-bytes",
) -> bytes | bytearray:
    """The whole body: 413 above ``limit`` bytes, 408 when it takes over ``timeout`` s.

    ``headers`` is the request's header mapping (``content-length`` is checked before
    anything is read); without ``deadlines`` no deadline is kept; ``flag`` names the
    limit in the message.
    """
    length = headers.get("content-length")
    if length is not None:
        try:
            declared = int(length)
        except ValueError:
            raise ApiError(400, f"Content-Length {length!r} is not a number", style=style) from None
        if declared > limit:
            raise ApiError(
                413,
                f"the body is {declared} bytes, above the limit of {limit} ({flag})",
                style=style,
            )
    first: bytes | None = None
    gathered: bytearray | None = None
    size = 0
    task = asyncio.current_task() if deadlines is not None else None
    if task is not None and deadlines is not None:
        deadlines.waiting[task] = asyncio.get_running_loop().time() + timeout
    try:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGone()
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > limit:
                    raise ApiError(
                        413, f"the body is over the limit of {limit} bytes ({flag})", style=style
                    )
                if first is None:
                    first = chunk
                elif gathered is None:
                    gathered = bytearray(first)
                    gathered += chunk
                else:
                    gathered += chunk
            if not message.get("more_body", False):
                break
    except asyncio.CancelledError:
        if task is None or deadlines is None or task not in deadlines.expired:
            raise
        deadlines.expired.discard(task)
        uncancel = getattr(task, "uncancel", None)
        if uncancel is not None:
            uncancel()
        raise ApiError(
            408, f"the request body did not arrive within {timeout:g} s", style=style
        ) from None
    finally:
        if task is not None and deadlines is not None:
            deadlines.waiting.pop(task, None)
    if gathered is not None:
        return gathered
    return first if first is not None else b""
