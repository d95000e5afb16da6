"""MLflow's scoring protocol: ``POST /invocations``, ``GET /ping``, ``/health``, ``/version``.

``/invocations`` scores the first model given to ``linreg serve`` (MLflow serves
one model per server; ``?model=NAME`` picks another). Bodies, as MLflow 2 takes them:

- ``application/json`` with one of
  ``{"dataframe_split": {"columns": [...], "data": [[...], ...]}}``,
  ``{"dataframe_records": [{...}, ...]}``,
  ``{"instances": ...}`` or ``{"inputs": ...}`` (records, rows of k numbers, or
  columns ``{"name": [...]}``); a ``"params"`` key is accepted and ignored;
- ``text/csv`` with a header row naming the columns.

The answer is ``{"predictions": [...]}``; errors are
``{"error_code": "BAD_REQUEST", "message": ...}`` as MLflow writes them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

import inference
from inference.errors import InputError
from inference.inputs import as_matrix
from inference.serve.csv_body import parse_csv
from inference.serve.limits import check_json, check_rows, rows_in
from inference.serve.matrix import matrix_of, release, table_of
from inference.serve.registry import LoadedModel
from inference.serve.responses import INLINE_BODY_BYTES, ApiError, dumps, loads, unreadable

__all__ = ["decode", "parse_json", "routes"]

_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")
STYLE = "mlflow"


def _fail(message: str, status: int = 400) -> ApiError:
    return ApiError(status, message, style=STYLE)


def parse_json(payload: Any, model: LoadedModel, max_rows: int) -> np.ndarray:
    """The (n, k) matrix of an MLflow JSON request (413 when its lists hold more than
    ``max_rows`` rows, before an array is built)."""
    p = model.predictor
    if not isinstance(payload, dict):
        raise _fail(
            f"the request is a JSON {type(payload).__name__}; expected an object with one of "
            f"the keys {list(_KEYS)}"
        )
    given = [k for k in _KEYS if k in payload]
    unknown = [k for k in payload if k not in _KEYS and k != "params"]
    if len(given) != 1 or unknown:
        raise _fail(
            f"the request has the keys {list(payload)}; expected exactly one of {list(_KEYS)} "
            "(and optionally 'params')"
        )
    key = given[0]
    value = payload[key]
    if key == "dataframe_split":
        if not isinstance(value, dict) or not isinstance(value.get("columns"), list):
            raise _fail("dataframe_split needs an object with a 'columns' list and a 'data' list")
        columns = [str(c) for c in value["columns"]]
        data = value.get("data")
        if not isinstance(data, list):
            raise _fail("dataframe_split needs a 'data' list of rows")
        if len(set(columns)) != len(columns):
            raise _fail(f"dataframe_split repeats column names: {columns}", 422)
        if not data:
            return as_matrix({c: [] for c in columns}, p.features, p.dtype)
        check_rows(len(data), max_rows, style=STYLE)
        try:
            table = table_of(data)
        except (ValueError, TypeError) as exc:
            raise _fail(f"dataframe_split 'data' is not a table of numbers ({exc})", 422) from None
        if table.ndim != 2 or table.shape[1] != len(columns):
            raise _fail(
                f"dataframe_split 'data' has shape {list(table.shape)}; expected rows of "
                f"{len(columns)} values, one per column {columns}",
                422,
            )
        return as_matrix({c: table[:, j] for j, c in enumerate(columns)}, p.features, p.dtype)
    if key == "dataframe_records" and not (
        isinstance(value, list) and all(isinstance(r, dict) for r in value)
    ):
        raise _fail("dataframe_records needs a list of records (objects)")
    if isinstance(value, list) and not value:
        return np.empty((0, len(p.features)), dtype=p.dtype)
    if not isinstance(value, list | dict):
        raise _fail(f"{key} is a {type(value).__name__}; expected a list or an object")
    check_rows(rows_in(value), max_rows, style=STYLE)
    return matrix_of(value, p.features, p.dtype)


def decode(body: bytes | bytearray, ctype: str, model: LoadedModel, max_rows: int) -> np.ndarray:
    """The (n, k) matrix of an /invocations body of content type ``ctype``; 413 above
    ``max_rows`` rows, checked before parsing for a large body, then on the parsed
    lists, then on the matrix."""
    p = model.predictor
    if ctype == "text/csv":
        X = parse_csv(body, p.features, p.dtype, max_rows)
    elif ctype in ("application/json", ""):
        if len(body) > INLINE_BODY_BYTES:
            check_json(body, max_rows, p.n_features_in_, style=STYLE)
        payload = loads(body, style=STYLE)
        X = parse_json(payload, model, max_rows)
        for value in payload.values():
            release(value)  # here, a slice at a time, not in one call on the event loop
    else:
        raise _fail(
            f"content type {ctype!r} is not supported; expected application/json or text/csv",
            415,
        )
    check_rows(X.shape[0], max_rows, style=STYLE)
    return X


def routes(server: Any) -> list[Route]:
    async def invocations(request: Request) -> Response:
        server.note(request, "mlflow_invocations")
        name = request.query_params.get("model")
        model = server.model(name, style=STYLE) if name else server.registry.first()
        ctype = request.headers.get("content-type", "application/json").split(";")[0].strip()
        body = await server.body(request, style=STYLE, json=ctype != "text/csv")
        try:
            args = (body, ctype, model, server.settings.max_rows)
            if len(body) <= INLINE_BODY_BYTES:
                X = decode(*args)
            else:
                X = await server.parse_in_thread(decode, *args)
        except ApiError:
            raise
        except (InputError, ValueError) as exc:
            raise _fail(str(exc), 422) from None
        except Exception as exc:  # every exception of the parse is an answer
            raise unreadable(exc, STYLE) from None
        try:
            server.note_rows(request, model, X.shape[0])
            y = await server.runner.predict(model, X)
        except (InputError, ValueError) as exc:
            if isinstance(exc, ApiError):
                raise
            raise _fail(str(exc), 422) from None
        return Response(dumps({"predictions": y}), media_type="application/json")

    async def ping(request: Request) -> Response:
        server.note(request, "mlflow_health")
        return PlainTextResponse("\n")

    async def version(request: Request) -> Response:
        server.note(request, "mlflow_health")
        return PlainTextResponse(inference.__version__)

    return [
        Route("/invocations", invocations, methods=["POST"]),
        Route("/ping", ping, methods=["GET"]),
        Route("/health", ping, methods=["GET"]),
        Route("/version", version, methods=["GET"]),
    ]
