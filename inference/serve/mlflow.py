"""MLflow's scoring protocol: ``POST /invocations``, ``GET /ping``, ``/health``, ``/version``.

``/invocations`` scores the first model given to ``linreg serve`` (MLflow serves
one model per server; ``?model=NAME`` picks another). Bodies, as ``mlflow models
serve`` (MLflow 3) takes them:

- ``application/json`` with one of
  ``{"dataframe_split": {"columns": [...], "data": [[...], ...]}}``,
  ``{"dataframe_records": [{...}, ...]}``,
  ``{"instances": ...}`` or ``{"inputs": ...}`` (records, rows of k numbers, or
  columns ``{"name": [...]}``), and optionally ``"params"``: ``interval``
  ("confidence" or "prediction") and ``level``, as the model's MLflow signature
  declares them (other params and other keys are ignored, as MLflow ignores them);
- ``text/csv`` with a header row naming the columns;
- ``application/vnd.apache.parquet`` (:mod:`inference.serve.parquet_body`).

As with MLflow, columns the model does not read are ignored (``--strict-columns``
refuses them), ``NaN``, ``Infinity`` and ``null`` parse (a missing or non-finite
value is then a 400 naming its row and column), and a charset other than UTF-8 or
another content-type parameter is a 415. The answer is ``{"predictions": [...]}``
(with an interval, one ``{"prediction", "lower", "upper"}`` record per row, as
MLflow writes a DataFrame); errors are ``{"error_code": ..., "message": ...}``
with MLflow's codes (400 ``BAD_REQUEST`` for bad input,
:data:`~inference.serve.responses.MLFLOW_ERROR_CODES`). ``/ping`` and ``/version``
answer what MLflow's do, with its ``application/json`` content type.

A model fitted on raw columns (a design) takes the same bodies with text for its
factors (CSV cells, JSON strings, Parquet string or dictionary columns), read by
name (:mod:`inference.serve.design_body`); an unseen level or a missing value is a
400 ``BAD_REQUEST`` with the Predictor's message naming the row, the column, the
value and the known levels.
"""

from __future__ import annotations

from time import perf_counter_ns
from typing import Any

import numpy as np
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import inference
from inference.errors import InputError
from inference.inputs import as_matrix
from inference.serve.csv_body import parse_csv, parse_csv_columns
from inference.serve.design_body import RawColumns, from_json, from_split
from inference.serve.limits import check_json, check_rows, rows_in
from inference.serve.matrix import matrix_of, null_error, release, table_of
from inference.serve.parquet_body import CONTENT_TYPE as PARQUET
from inference.serve.parquet_body import parse_parquet, parse_parquet_columns
from inference.serve.registry import LoadedModel
from inference.serve.responses import INLINE_BODY_BYTES, ApiError, dumps, loads, unreadable

__all__ = ["decode", "parse_json", "routes"]

_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")
STYLE = "mlflow"
CSV, JSON = "text/csv", "application/json"


def _fail(message: str, status: int = 400) -> ApiError:
    return ApiError(status, message, style=STYLE)


def _split_parts(value: Any) -> tuple[list[str], list[Any]]:
    """The column names and the rows of a ``dataframe_split`` object (400 when it is not
    one, or repeats a name)."""
    if not isinstance(value, dict) or not isinstance(value.get("columns"), list):
        raise _fail("dataframe_split needs an object with a 'columns' list and a 'data' list")
    columns = [str(c) for c in value["columns"]]
    data = value.get("data")
    if not isinstance(data, list):
        raise _fail("dataframe_split needs a 'data' list of rows")
    if len(set(columns)) != len(columns):
        raise _fail(f"dataframe_split repeats column names: {columns}")
    return columns, data


def _split(value: Any, model: LoadedModel, max_rows: int, strict: bool) -> np.ndarray:
    """The matrix of a ``dataframe_split`` object (its ``index``, if any, ignored)."""
    p = model.predictor
    columns, data = _split_parts(value)
    if not data:
        return as_matrix({c: [] for c in columns}, p.features, p.dtype, strict=strict, ignored=[])
    check_rows(len(data), max_rows, style=STYLE)
    try:
        table = table_of(data)
    except (ValueError, TypeError) as exc:
        raise _fail(f"dataframe_split 'data' is not a table of numbers ({exc})") from None
    if table.ndim != 2 or table.shape[1] != len(columns):
        raise _fail(
            f"dataframe_split 'data' has shape {list(table.shape)}; expected rows of "
            f"{len(columns)} values, one per column {columns}"
        )
    if table.dtype.kind in "iuf":
        named: dict[str, Any] = {c: table[:, j] for j, c in enumerate(columns)}
    else:  # text or nulls somewhere: each column alone (those the model does not read
        # are ignored whatever they hold, as MLflow hands a DataFrame to the model)
        named = {
            c: [row[j] for row in data] for j, c in enumerate(columns) if strict or c in p.features
        }
    try:
        return as_matrix(named, p.features, p.dtype, strict=strict, ignored=[])
    except InputError:
        error = null_error(data, p.features, columns)
        if error is not None:
            raise error from None
        raise


def _design_split(value: Any, model: LoadedModel, max_rows: int, strict: bool) -> RawColumns:
    """The raw columns of a ``dataframe_split`` object, for a design model."""
    columns, data = _split_parts(value)
    check_rows(len(data), max_rows, style=STYLE)
    assert model.predictor.design is not None
    return from_split(columns, data, model.predictor.design, strict=strict)


def parse_json(
    payload: Any, model: LoadedModel, max_rows: int, *, strict: bool = False
) -> np.ndarray | RawColumns:
    """The (n, k) matrix of an MLflow JSON request (a design model's: its raw columns;
    413 when its lists hold more than ``max_rows`` rows, before an array is built)."""
    p = model.predictor
    if not isinstance(payload, dict):
        raise _fail(
            f"the request is a JSON {type(payload).__name__}; expected an object with one of "
            f"the keys {list(_KEYS)}"
        )
    given = [k for k in _KEYS if k in payload]
    if len(given) != 1:
        raise _fail(
            f"the request has the keys {list(payload)}; expected exactly one of {list(_KEYS)} "
            "(and optionally 'params')"
        )
    key = given[0]
    value = payload[key]
    if key == "dataframe_split":
        if p.design is not None:
            return _design_split(value, model, max_rows, strict)
        return _split(value, model, max_rows, strict)
    if key == "dataframe_records" and not (
        isinstance(value, list) and all(isinstance(r, dict) for r in value)
    ):
        raise _fail("dataframe_records needs a list of records (objects)")
    if isinstance(value, list) and not value and p.design is None:
        return np.empty((0, len(p.features)), dtype=p.dtype)
    if not isinstance(value, list | dict):
        raise _fail(f"{key} is a {type(value).__name__}; expected a list or an object")
    check_rows(rows_in(value), max_rows, style=STYLE)
    if p.design is not None:
        return from_json(value, p.design, strict=strict)
    return matrix_of(value, p.features, p.dtype, strict=strict)


def decode(
    body: bytes | bytearray, ctype: str, model: LoadedModel, max_rows: int, strict: bool = False
) -> tuple[np.ndarray | RawColumns, Any]:
    """The (n, k) matrix (a design model's: its raw columns) and the ``params`` of an
    /invocations body of content type
    ``ctype``; 413 above ``max_rows`` rows, checked before parsing for a large body,
    then on the parsed lists, then on the matrix."""
    p = model.predictor
    params = None
    X: np.ndarray | RawColumns
    if ctype == CSV and p.design is not None:
        X = parse_csv_columns(body, p.design, max_rows, strict=strict)
    elif ctype == CSV:
        X = parse_csv(body, p.features, p.dtype, max_rows, strict=strict)
    elif ctype == PARQUET and p.design is not None:
        X = parse_parquet_columns(body, p.design, max_rows, strict=strict)
    elif ctype == PARQUET:
        X = parse_parquet(body, p.features, p.dtype, max_rows, strict=strict)
    elif ctype in (JSON, ""):
        if len(body) > INLINE_BODY_BYTES:
            check_json(body, max_rows, p.n_features_in_, style=STYLE)
        payload = loads(body, style=STYLE)
        X = parse_json(payload, model, max_rows, strict=strict)
        params = payload.get("params")
        for value in payload.values():
            release(value)  # here, a slice at a time, not in one call on the event loop
    else:
        raise _fail(
            f"content type {ctype!r} is not supported; expected {JSON}, {CSV} or {PARQUET}",
            415,
        )
    check_rows(X.shape[0], max_rows, style=STYLE)
    return X, params


def content_type(header: str | None) -> str:
    """The media type of a Content-Type header; 415 for a charset other than UTF-8 or
    another parameter, as MLflow's scoring server answers."""
    if header is None:
        return JSON
    media, _, rest = header.partition(";")
    if rest:
        for pair in rest.split(";"):
            key, _, value = pair.strip().partition("=")
            key = key.strip().lower()
            if key == "charset" and value.strip().strip('"').lower() in ("utf-8", "utf8"):
                continue
            if key:
                raise _fail(
                    f"content type {header!r}: only the parameter charset=utf-8 is supported",
                    415,
                )
    return media.strip().lower()


def interval_params(params: Any) -> tuple[str | None, float]:
    """``interval`` and ``level`` of MLflow's ``params`` (other keys ignored, as MLflow
    ignores params its signature does not declare)."""
    if params is None:
        return None, 0.95
    if not isinstance(params, dict):
        raise _fail(f"'params' must be an object, got a {type(params).__name__}")
    interval = params.get("interval")
    level = params.get("level", 0.95)
    if level is None:
        level = 0.95
    if interval is not None and not isinstance(interval, str):
        raise _fail(f"params: interval {interval!r} is not a string")
    if not isinstance(level, int | float) or isinstance(level, bool):
        raise _fail(f"params: level {level!r} is not a number")
    return interval or None, float(level)


def _interval_records(
    server: Any, model: LoadedModel, X: np.ndarray | RawColumns, interval: str, level: float
) -> list[dict[str, float]]:
    """One ``{"prediction", "lower", "upper"}`` record per row of ``X``, as MLflow writes
    the DataFrame the pyfunc model returns with an interval."""
    try:
        res = server.intervals(model, X, interval, level)
    except ApiError as exc:
        raise _fail(exc.message, 400 if exc.status == 422 else exc.status) from None
    except (InputError, ValueError) as exc:
        raise _fail(str(exc)) from None
    return [
        {"prediction": y, "lower": lo, "upper": hi}
        for y, lo, hi in zip(
            res.prediction.tolist(), res.lower.tolist(), res.upper.tolist(), strict=True
        )
    ]


def routes(server: Any) -> list[Route]:
    async def invocations(request: Request) -> Response:
        server.note(request, "mlflow_invocations")
        name = request.query_params.get("model")
        model = server.model(name, style=STYLE) if name else server.registry.first()
        timing = server.timing(request, model)
        ctype = content_type(request.headers.get("content-type"))
        body = await server.body(request, style=STYLE, json=ctype not in (CSV, PARQUET))
        try:
            args = (body, ctype, model, server.settings.max_rows, server.settings.strict_columns)
            if len(body) <= INLINE_BODY_BYTES:
                X, params = decode(*args)
            else:
                X, params = await server.parse_in_thread(decode, *args)
        except ApiError:
            raise
        except (InputError, ValueError) as exc:
            raise _fail(str(exc)) from None
        except Exception as exc:  # every exception of the parse is an answer
            raise unreadable(exc, STYLE) from None
        server.note_rows(request, model, X.shape[0])
        timing.rows = X.shape[0]
        timing.parsed_at = perf_counter_ns()
        interval, level = interval_params(params)
        if interval is None:
            try:
                y = await server.runner.predict(model, X, timing)
            except InputError as exc:  # a NaN or inf: the Predictor's message
                raise _fail(str(exc)) from None
        else:
            y = _interval_records(server, model, X, interval, level)
        timing.ran_at = perf_counter_ns()
        answer = dumps({"predictions": y})
        timing.answered_at = perf_counter_ns()
        return Response(answer, media_type=JSON)

    async def ping(request: Request) -> Response:
        server.note(request, "mlflow_health")
        return Response("\n", media_type=JSON)  # MLflow's body and content type

    async def version(request: Request) -> Response:
        server.note(request, "mlflow_health")
        return Response(inference.__version__, media_type=JSON)  # as MLflow answers it

    return [
        Route("/invocations", invocations, methods=["POST"]),
        Route("/ping", ping, methods=["GET"]),
        Route("/health", ping, methods=["GET"]),
        Route("/version", version, methods=["GET"]),
    ]
