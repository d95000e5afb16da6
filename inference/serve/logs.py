"""Structured logs: one JSON object per line on stderr.

Access lines (logger ``linreg.serve.access``) hold ``ts``, ``method``, ``path``,
``status``, ``ms``, ``endpoint``, ``client``, ``request_id`` (the
``X-Request-Id`` header, when sent) and, for predictions, ``model``,
``version`` and ``rows``. Other lines (model reloads, uvicorn's own) hold ``ts``,
``level``, ``logger`` and ``message``.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import orjson

__all__ = ["JsonFormatter", "configure_logging"]


def _now() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"


class JsonFormatter(logging.Formatter):
    """A record as one JSON line; a dict message is merged into the object."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {"ts": _now(), "level": record.levelname.lower()}
        if isinstance(record.msg, dict):
            out.update(record.msg)
        else:
            out["logger"] = record.name
            out["message"] = record.getMessage()
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


def configure_logging(level: int = logging.INFO) -> None:
    """Send every log record (uvicorn's too) to stderr as JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
