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

Beside them, :class:`InferenceStats` keeps Triton's inference statistics per model
version (``GET /v2/models/{name}/stats``, :mod:`inference.serve.triton`): each
prediction request's route fills a :class:`Timing` (parsing, queue, session run,
answer), which the ASGI layer hands to :meth:`Metrics.finish` with the status.

The counts are plain Python numbers updated on the event loop (every update
happens there, so no lock is needed) and turned into metric families only when
``/metrics`` is scraped: a request costs a few dict look-ups and additions
instead of prometheus_client's locked child objects (about 10 µs a request).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from time import perf_counter_ns, time_ns
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)

from inference.serve.registry import LoadedModel

__all__ = [
    "BATCH_SIZES",
    "CONTENT_TYPE_LATEST",
    "METHODS",
    "Histogram",
    "InferenceStats",
    "Metrics",
    "Timing",
]

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


#: distinct batch sizes whose session runs are kept in ``batch_stats``, per model
#: version (a client picks the sizes: the table must not grow without bound)
BATCH_SIZES = 256


class Timing:
    """One prediction request's clock readings (``perf_counter_ns()``), as its route
    goes: ``start`` (the model found), ``parsed_at`` (the body read into the matrix
    of ``rows`` rows: Triton's ``compute_input``), ``ran_at`` (the predictions made:
    ``queue`` and ``compute_infer``), ``answered_at`` (the answer's bytes made:
    ``compute_output``; 0 until then). The micro-batcher sets ``run_ns``, the session
    run's part of the time between parsing and running (-1: all of it, a run of the
    request's own). The routes write the attributes directly (a method call would
    cost as much as the rest of this bookkeeping); :meth:`Metrics.finish` does the
    arithmetic once the answer is sent.
    """

    __slots__ = ("model", "rows", "start", "parsed_at", "ran_at", "run_ns", "answered_at")
    rows: int
    parsed_at: int
    ran_at: int

    def __init__(self, model: LoadedModel) -> None:
        self.model = model
        self.start = perf_counter_ns()
        self.run_ns = -1
        self.answered_at = 0


#: the clock readings of one moment, to turn perf_counter_ns() readings into epoch time
_CLOCKS = (time_ns(), perf_counter_ns())


def _epoch_ms(perf_ns: int) -> int:
    """Milliseconds since the epoch of a ``perf_counter_ns()`` reading."""
    return (_CLOCKS[0] + perf_ns - _CLOCKS[1]) // 1_000_000


class InferenceStats:
    """Triton's statistics of one model version. Each successful request adds one to
    ``success`` and to each of ``compute_input``, ``queue``, ``compute_infer`` and
    ``compute_output``, so one count (``n``) serves the five; the durations are
    nanosecond sums. ``batches``: ``[runs, ns]`` of the session runs by batch size."""

    __slots__ = (
        "last_answer",
        "inference_count",
        "execution_count",
        "n",
        "success_ns",
        "fail_n",
        "fail_ns",
        "queue_ns",
        "input_ns",
        "infer_ns",
        "output_ns",
        "batches",
    )

    def __init__(self) -> None:
        self.last_answer = 0  # perf_counter_ns() of the last success; 0: none
        self.inference_count = 0
        self.execution_count = 0
        self.n = 0
        self.success_ns = 0
        self.fail_n = 0
        self.fail_ns = 0
        self.queue_ns = 0
        self.input_ns = 0
        self.infer_ns = 0
        self.output_ns = 0
        self.batches: dict[int, list[int]] = {}

    def as_json(self, name: str, version: str) -> dict[str, Any]:
        """The ``$model_stat`` object of Triton's statistics extension."""
        n = self.n
        return {
            "name": name,
            "version": version,
            "last_inference": _epoch_ms(self.last_answer) if self.last_answer else 0,
            "inference_count": self.inference_count,
            "execution_count": self.execution_count,
            "inference_stats": {
                "success": {"count": n, "ns": self.success_ns},
                "fail": {"count": self.fail_n, "ns": self.fail_ns},
                "queue": {"count": n, "ns": self.queue_ns},
                "compute_input": {"count": n, "ns": self.input_ns},
                "compute_infer": {"count": n, "ns": self.infer_ns},
                "compute_output": {"count": n, "ns": self.output_ns},
                "cache_hit": {"count": 0, "ns": 0},
                "cache_miss": {"count": 0, "ns": 0},
            },
            "batch_stats": [
                {"batch_size": size, "compute_infer": {"count": d[0], "ns": d[1]}}
                for size, d in sorted(self.batches.items())
            ],
        }


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
        self.stats: dict[tuple[str, str], InferenceStats] = {}
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

    def model_stats(self, name: str, version: str) -> InferenceStats:
        key = (name, version)
        stats = self.stats.get(key)
        if stats is None:
            stats = self.stats[key] = InferenceStats()
        return stats

    def observe_run(self, model: LoadedModel, rows: int, ns: int) -> None:
        """One successful session run of ``rows`` rows that took ``ns`` nanoseconds (a
        micro-batch's; :meth:`finish` counts the runs of one request)."""
        stats = self.stats.get((model.name, model.version))
        if stats is None:
            stats = self.model_stats(model.name, model.version)
        stats.execution_count += 1
        batch = stats.batches.get(rows)
        if batch is None:
            if len(stats.batches) >= BATCH_SIZES:
                return
            batch = stats.batches[rows] = [0, 0]
        batch[0] += 1
        batch[1] += ns

    def finish(self, timing: Timing, status: int, ns: int) -> None:
        """A prediction request answered with ``status`` after ``ns`` nanoseconds."""
        model = timing.model
        stats = self.stats.get((model.name, model.version))
        if stats is None:
            stats = self.model_stats(model.name, model.version)
        answered = timing.answered_at
        if status >= 400 or not answered:
            stats.fail_n += 1
            stats.fail_ns += ns
            return
        parsed, ran_at, run = timing.parsed_at, timing.ran_at, timing.run_ns
        ran = ran_at - parsed
        if run < 0:  # a run of its own, not counted by observe_run
            run = ran
            stats.execution_count += 1
            batch = stats.batches.get(timing.rows)
            if batch is None and len(stats.batches) < BATCH_SIZES:
                batch = stats.batches[timing.rows] = [0, 0]
            if batch is not None:
                batch[0] += 1
                batch[1] += run
        elif run > ran:
            run = ran
        stats.n += 1
        stats.success_ns += ns
        stats.last_answer = answered
        stats.inference_count += timing.rows
        stats.input_ns += parsed - timing.start
        stats.queue_ns += ran - run
        stats.infer_ns += run
        stats.output_ns += answered - ran_at

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
