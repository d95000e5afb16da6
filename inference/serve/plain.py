"""``POST /predict`` (the first model) and ``POST /models/{name}/predict``.

The body is what :meth:`inference.Predictor.predict` takes, as JSON:

- a record ``{"area": 3.0}`` (one row),
- records ``[{"area": 3.0}, {"area": 4.5}]``,
- columns ``{"area": [3.0, 4.5]}``,
- rows ``[[3.0], [4.5]]``,

or any of these wrapped as ``{"inputs": ..., "interval": "prediction", "level": 0.9}``.
``interval`` ("confidence" or "prediction") and ``level`` may also be query
parameters. The answer::

    {"model": "plant_richness_lr", "version": "07c3e64295fe", "predictions": [...],
     "interval": "prediction", "level": 0.9, "lower": [...], "upper": [...]}
"""

from __future__ import annotations

from typing import Any

import numpy as np
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from inference.errors import InputError
from inference.serve.limits import check_json, check_rows, rows_in
from inference.serve.matrix import matrix_of, release
from inference.serve.registry import LoadedModel
from inference.serve.responses import INLINE_BODY_BYTES, ApiError, dumps, loads, unreadable

__all__ = ["decode", "routes", "split_request"]

_PLAIN = frozenset({float, int})


def split_request(payload: Any, model: LoadedModel) -> tuple[Any, Any, Any]:
    """``(inputs, interval, level)`` of a /predict body (the wrapper is optional)."""
    if (
        isinstance(payload, dict)
        and "inputs" in payload
        and "inputs" not in model.predictor.features
    ):
        extra = [k for k in payload if k not in ("inputs", "interval", "level")]
        if extra:
            raise ApiError(
                400, f"unknown keys {extra}; a wrapped request has 'inputs', 'interval', 'level'"
            )
        return payload["inputs"], payload.get("interval"), payload.get("level")
    return payload, None, None


def decode(
    body: bytes | bytearray, model: LoadedModel, max_rows: int, one_row: bool
) -> tuple[Any, np.ndarray | None, Any, Any]:
    """``(inputs, X, interval, level)`` of a /predict body: X is None for one record
    of plain numbers when ``one_row`` (the Predictor's one-row path takes it as is),
    else ``inputs`` is None (the parsed lists are freed here).

    A large body is checked before it is parsed, the parsed lists before an array is
    built (:func:`rows_in`), the array's rows last: each is a 413 above ``max_rows``.
    """
    p = model.predictor
    if len(body) > INLINE_BODY_BYTES:
        check_json(body, max_rows, p.n_features_in_)
    inputs, interval, level = split_request(loads(body), model)
    if (
        one_row
        and interval is None
        and isinstance(inputs, dict)
        and len(inputs) == p.n_features_in_
        and _PLAIN.issuperset(map(type, inputs.values()))
    ):
        return inputs, None, None, None
    check_rows(rows_in(inputs), max_rows)
    X = matrix_of(inputs, p.features, p.dtype)
    check_rows(X.shape[0], max_rows)
    release(inputs)  # here, a slice at a time, not in one call on the event loop
    return None, X, interval, level


def routes(server: Any) -> list[Route]:
    async def predict(request: Request) -> Response:
        server.note(request, "predict")
        name = request.path_params.get("name")
        model = server.model(name) if name is not None else server.registry.first()
        body = await server.body(request, json=True)
        query = request.query_params if request.scope["query_string"] else {}
        one_row = not server.runner.enabled and "interval" not in query
        args = (body, model, server.settings.max_rows, one_row)
        try:
            if len(body) <= INLINE_BODY_BYTES:
                inputs, X, interval, level = decode(*args)
            else:
                inputs, X, interval, level = await server.parse_in_thread(decode, *args)
        except (ApiError, InputError):
            raise
        except Exception as exc:  # every exception of the parse is an answer
            raise unreadable(exc) from None
        if interval is None:
            interval = query.get("interval")
        if level is None and "level" in query:
            try:
                level = float(query["level"])
            except ValueError:
                raise ApiError(422, f"level {query['level']!r} is not a number") from None
        if level is not None and interval is None:
            raise ApiError(422, "'level' without 'interval'; say 'confidence' or 'prediction'")
        p = model.predictor
        answer: dict[str, Any] = {"model": model.name, "version": model.version}
        if X is None:
            server.note_rows(request, model, 1)
            # one record of plain numbers: the Predictor's one-row path, no array built
            answer["predictions"] = [p.predict_one(inputs)]
        elif interval is not None:
            if level is None:
                level = 0.95
            if not isinstance(level, int | float) or isinstance(level, bool):
                raise ApiError(422, f"level {level!r} is not a number")
            server.note_rows(request, model, X.shape[0])
            res = server.intervals(model, X, interval, level)
            answer.update(
                predictions=res.prediction,
                interval=interval,
                level=level,
                lower=res.lower,
                upper=res.upper,
            )
        else:
            server.note_rows(request, model, X.shape[0])
            answer["predictions"] = await server.runner.predict(model, X)
        return Response(dumps(answer), media_type="application/json")

    return [
        Route("/predict", predict, methods=["POST"]),
        Route("/models/{name}/predict", predict, methods=["POST"]),
    ]
