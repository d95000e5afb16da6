"""Prometheus metrics at ``/metrics`` (one registry per worker process).

- ``linreg_requests_total{endpoint, method, status}``
- ``linreg_request_errors_total{endpoint, status}``: answers with status >= 400
- ``linreg_request_duration_seconds{endpoint}``: latency histogram
- ``linreg_requests_in_flight``
- ``linreg_request_rows{model}``: rows per request (histogram)
- ``linreg_batch_rows{model}``: rows per session run (with micro-batching, the merged size)
- ``linreg_model_info{model, version, sha256}``: 1 for the version being served
- ``linreg_model_reloads_total{model, result}``: "loaded" or "refused"

``endpoint`` is the route's name (``v2_infer``, ``predict``, ...), never the raw
path, so an unknown URL cannot grow the label set.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from inference.serve.registry import LoadedModel

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]

_LATENCY_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    10.0,
)
_ROW_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 1024, 4096, 16384, 65536, 262144, 1048576)


class Metrics:
    """The server's metrics; label children are cached so a request costs a few dict
    look-ups and increments."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "linreg_requests",
            "HTTP requests answered",
            ["endpoint", "method", "status"],
            registry=r,
        )
        self.errors = Counter(
            "linreg_request_errors",
            "answers with status >= 400",
            ["endpoint", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "linreg_request_duration_seconds",
            "time from the request's arrival to the end of its answer",
            ["endpoint"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.inflight = Gauge("linreg_requests_in_flight", "requests being answered", registry=r)
        self.rows = Histogram(
            "linreg_request_rows", "rows per request", ["model"], buckets=_ROW_BUCKETS, registry=r
        )
        self.batch_rows = Histogram(
            "linreg_batch_rows",
            "rows per session run",
            ["model"],
            buckets=_ROW_BUCKETS,
            registry=r,
        )
        self.model_info = Gauge(
            "linreg_model_info",
            "the model version being served (1)",
            ["model", "version", "sha256"],
            registry=r,
        )
        self.reloads = Counter(
            "linreg_model_reloads", "hot reloads by result", ["model", "result"], registry=r
        )
        self._done: dict[tuple[str, str, int], tuple[Any, Any, Any]] = {}
        self._rows: dict[str, Any] = {}
        self._batch: dict[str, Any] = {}
        self._info: dict[str, tuple[str, str]] = {}

    def observe(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        key = (endpoint, method, status)
        children = self._done.get(key)
        if children is None:
            children = (
                self.requests.labels(endpoint, method, str(status)),
                self.errors.labels(endpoint, str(status)) if status >= 400 else None,
                self.latency.labels(endpoint),
            )
            self._done[key] = children
        children[0].inc()
        if children[1] is not None:
            children[1].inc()
        children[2].observe(seconds)

    def observe_rows(self, model: str, rows: int) -> None:
        child = self._rows.get(model)
        if child is None:
            child = self._rows[model] = self.rows.labels(model)
        child.observe(rows)

    def observe_batch(self, model: str, rows: int) -> None:
        child = self._batch.get(model)
        if child is None:
            child = self._batch[model] = self.batch_rows.labels(model)
        child.observe(rows)

    def serving(self, model: LoadedModel) -> None:
        old = self._info.get(model.name)
        if old is not None and old != (model.version, model.sha256):
            self.model_info.remove(model.name, *old)
        self._info[model.name] = (model.version, model.sha256)
        self.model_info.labels(model.name, model.version, model.sha256).set(1)

    def reloaded(self, model: LoadedModel | None, name: str, result: str) -> None:
        self.reloads.labels(name, result).inc()
        if model is not None:
            self.serving(model)

    def render(self) -> bytes:
        return generate_latest(self.registry)
