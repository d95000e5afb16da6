"""Prometheus metrics at ``/metrics`` (one registry per worker process).

- ``linreg_requests_total{endpoint, method, status}``
- ``linreg_request_errors_total{endpoint, status}``: answers with status >= 400
- ``linreg_request_duration_seconds{endpoint}``: latency histogram
- ``linreg_requests_in_flight``
- ``linreg_request_rows{model}``: rows per request (histogram)
- ``linreg_batch_rows{model}``: rows per session run (with micro-batching, the merged size)
- ``linreg_model_info{model, version, sha256}``: 1 for each version being served
- ``linreg_model_reloads_total{model, result}``: loads after start-up ("loaded"),
  failed loads ("refused") and versions unloaded ("unloaded")

``endpoint`` is the route's name (``v2_infer``, ``predict``, ``grpc_infer``, ...),
never the raw path, and ``method`` one of :data:`METHODS` (``GRPC`` for gRPC calls) or
``"other"`` (uvicorn's h11 parser
passes any token as a method), so no request can grow the label set.

The counts are plain Python numbers updated on the event loop (every update
happens there, so no lock is needed) and turned into metric families only when
``/metrics`` is scraped: a request costs a few dict look-ups and additions
instead of prometheus_client's locked child objects (about 10 µs a request).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)

from inference.serve.registry import LoadedModel

__all__ = ["CONTENT_TYPE_LATEST", "METHODS", "Histogram", "Metrics"]

#: the methods that get a label of their own
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "GRPC"})

LATENCY_BUCKETS = (
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
ROW_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 1024, 4096, 16384, 65536, 262144, 1048576)


class Histogram:
    """Counts per bucket (``le`` bounds, then +Inf) and the sum of observations."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def cumulative(self) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = []
        running = 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += count
            out.append(("+Inf" if bound == float("inf") else repr(float(bound)), running))
        return out


class Metrics:
    """The server's metrics, exposed through a collector of its own registry."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, str], int] = {}
        self.latency: dict[str, Histogram] = {}
        self.rows: dict[str, Histogram] = {}
        self.batch_rows: dict[str, Histogram] = {}
        self.inflight = 0
        self.model_info: dict[tuple[str, str], str] = {}
        self.reloads: dict[tuple[str, str], int] = {}
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(self))  # type: ignore[arg-type]

    def observe(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        key = (endpoint, method if method in METHODS else "other", str(status))
        self.requests[key] = self.requests.get(key, 0) + 1
        hist = self.latency.get(endpoint)
        if hist is None:
            hist = self.latency[endpoint] = Histogram(LATENCY_BUCKETS)
        hist.observe(seconds)

    def observe_rows(self, model: str, rows: int) -> None:
        hist = self.rows.get(model)
        if hist is None:
            hist = self.rows[model] = Histogram(ROW_BUCKETS)
        hist.observe(rows)

    def observe_batch(self, model: str, rows: int) -> None:
        hist = self.batch_rows.get(model)
        if hist is None:
            hist = self.batch_rows[model] = Histogram(ROW_BUCKETS)
        hist.observe(rows)

    def serving(self, model: LoadedModel) -> None:
        self.model_info[(model.name, model.version)] = model.sha256

    def reloaded(self, model: LoadedModel | None, name: str, result: str) -> None:
        """A registry event: "serving" (loaded at start-up, not counted), "loaded",
        "refused" or "unloaded" (``model`` is the version unloaded)."""
        if result != "serving":
            key = (name, result)
            self.reloads[key] = self.reloads.get(key, 0) + 1
        if model is None:
            return
        if result == "unloaded":
            self.model_info.pop((name, model.version), None)
        else:
            self.serving(model)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _Collector:
    def __init__(self, metrics: Metrics) -> None:
        self.m = metrics

    def collect(self) -> Iterator[Any]:
        m = self.m
        requests = CounterMetricFamily(
            "linreg_requests", "HTTP requests answered", labels=["endpoint", "method", "status"]
        )
        errors = CounterMetricFamily(
            "linreg_request_errors", "answers with status >= 400", labels=["endpoint", "status"]
        )
        failed: dict[tuple[str, str], int] = {}
        for (endpoint, method, status), n in sorted(m.requests.items()):
            requests.add_metric([endpoint, method, status], n)
            if int(status) >= 400:
                failed[(endpoint, status)] = failed.get((endpoint, status), 0) + n
        for labels, n in sorted(failed.items()):
            errors.add_metric(list(labels), n)
        yield requests
        yield errors
        yield _histograms(
            "linreg_request_duration_seconds",
            "time from the request's arrival to the end of its answer",
            "endpoint",
            m.latency,
        )
        yield GaugeMetricFamily("linreg_requests_in_flight", "requests being answered", m.inflight)
        yield _histograms("linreg_request_rows", "rows per request", "model", m.rows)
        yield _histograms("linreg_batch_rows", "rows per session run", "model", m.batch_rows)
        info = GaugeMetricFamily(
            "linreg_model_info",
            "the model version being served (1)",
            labels=["model", "version", "sha256"],
        )
        for (name, version), sha in sorted(m.model_info.items()):
            info.add_metric([name, version, sha], 1)
        yield info
        reloads = CounterMetricFamily(
            "linreg_model_reloads", "hot reloads by result", labels=["model", "result"]
        )
        for labels, n in sorted(m.reloads.items()):
            reloads.add_metric(list(labels), n)
        yield reloads


def _histograms(name: str, doc: str, label: str, hists: dict[str, Histogram]) -> Any:
    family = HistogramMetricFamily(name, doc, labels=[label])
    for value, hist in sorted(hists.items()):
        family.add_metric([value], hist.cumulative(), hist.total)
    return family
