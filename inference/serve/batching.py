"""Running the model: inline, on a thread for big requests, or micro-batched.

Micro-batching merges the rows of concurrent small requests for one model into
one session run, as Triton's dynamic batcher does. A request that finds no open
batch opens one; the batch runs

- at once (at the event loop's next turn, so requests already parsed in this
  turn still join) when every request in flight is already in it: an idle
  server never waits;
- when it holds ``max_batch_rows`` rows;
- otherwise after ``max_batch_delay_us`` microseconds.

Each request gets its own slice of the output. When the merged run raises an
:class:`~inference.errors.InputError` (a NaN in one request's rows), each request
is run alone so that each gets its own answer or its own error.

A design model's requests (:class:`~inference.serve.design_body.RawColumns`, raw
columns by name) are merged column by column, the same way.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from inference.errors import InputError
from inference.serve.design_body import RawColumns
from inference.serve.registry import LoadedModel

__all__ = ["INLINE_ROWS", "Runner"]

#: above this many rows a request runs on a worker thread, not on the event loop
#: (ONNX Runtime releases the GIL, so other requests go on meanwhile)
INLINE_ROWS = 65_536


#: a request's rows and the future of its predictions and the run's nanoseconds
_Item = tuple["np.ndarray | RawColumns", "asyncio.Future[tuple[np.ndarray, int]]"]


class _Batch:
    __slots__ = ("model", "items", "rows", "timer", "soon")

    def __init__(self, model: LoadedModel) -> None:
        self.model = model
        self.items: list[_Item] = []
        self.rows = 0
        self.timer: asyncio.Handle | None = None
        self.soon = False


class Runner:
    """Predictions for (n, k) arrays already in the model's dtype (or a design model's
    :class:`~inference.serve.design_body.RawColumns`).

    Parameters
    ----------
    max_batch_rows, max_batch_delay_us : int
        Micro-batching; both 0: off. Requests larger than ``max_batch_rows`` never
        wait for a batch.
    inflight : callable returning the number of requests in flight
    observe_batch : callable(model name, rows), called once per session run
    observe_run : callable(model, rows, nanoseconds), called after each successful run
        of a micro-batch
    """

    def __init__(
        self,
        *,
        max_batch_rows: int = 0,
        max_batch_delay_us: int = 0,
        inflight: Callable[[], int] = lambda: 1,
        observe_batch: Callable[[str, int], None] = lambda name, rows: None,
        observe_run: Callable[[LoadedModel, int, int], None] = lambda model, rows, ns: None,
    ) -> None:
        self.enabled = max_batch_rows > 0 or max_batch_delay_us > 0
        self.max_rows = max_batch_rows if max_batch_rows > 0 else 1024
        self.delay = max_batch_delay_us / 1e6
        self.inflight = inflight
        self.observe_batch = observe_batch
        self.observe_run = observe_run
        self._open: dict[int, _Batch] = {}

    async def predict(
        self, model: LoadedModel, X: np.ndarray | RawColumns, timing: Any = None
    ) -> np.ndarray:
        """The predictions (n,) of ``X``. A request that waited for a micro-batch sets
        ``timing.run_ns`` (``timing``: a :class:`~inference.serve.metrics.Timing`) to
        the session run's time, the rest of its wait being queue; a run of its own is
        counted by the caller's statistics, a merged one here (``observe_run``)."""
        n = X.shape[0]
        if self.enabled and n < self.max_rows:
            y, ns = await self._submit(model, X)
            if timing is not None:
                timing.run_ns = ns
            return y
        self.observe_batch(model.name, n)
        if n > INLINE_ROWS:
            return await asyncio.to_thread(_run, model, X)
        return _run(model, X)

    def _run(self, model: LoadedModel, X: np.ndarray | RawColumns) -> tuple[np.ndarray, int]:
        """A micro-batch's run, timed and counted."""
        start = time.perf_counter_ns()
        y = _run(model, X)
        ns = time.perf_counter_ns() - start
        self.observe_run(model, X.shape[0], ns)
        return y, ns

    async def _submit(
        self, model: LoadedModel, X: np.ndarray | RawColumns
    ) -> tuple[np.ndarray, int]:
        loop = asyncio.get_running_loop()
        key = id(model)
        batch = self._open.get(key)
        if batch is None:
            batch = self._open[key] = _Batch(model)
        future: asyncio.Future[tuple[np.ndarray, int]] = loop.create_future()
        batch.items.append((X, future))
        batch.rows += X.shape[0]
        if batch.rows >= self.max_rows:
            if batch.timer is not None:
                batch.timer.cancel()
            self._close(key, batch)
            self._flush(batch)
        elif self.inflight() <= len(batch.items):  # nobody else to wait for
            if not batch.soon:
                if batch.timer is not None:
                    batch.timer.cancel()
                batch.timer = loop.call_soon(self._close_and_flush, key, batch)
                batch.soon = True
        elif batch.timer is None:
            batch.timer = loop.call_later(self.delay, self._close_and_flush, key, batch)
        return await future

    def _close(self, key: int, batch: _Batch) -> None:
        if self._open.get(key) is batch:
            del self._open[key]

    def _close_and_flush(self, key: int, batch: _Batch) -> None:
        self._close(key, batch)
        self._flush(batch)

    def _flush(self, batch: _Batch) -> None:
        items = [(X, f) for X, f in batch.items if not f.done()]
        if not items:
            return
        model = batch.model
        if len(items) == 1:
            self._settle(model, items)
            return
        X = _concat([x for x, _ in items])
        self.observe_batch(model.name, X.shape[0])
        try:
            y, ns = self._run(model, X)
        except InputError:
            for item in items:
                self._settle(model, [item])
            return
        except Exception as exc:  # handed to each request's own error handling
            for _, f in items:
                f.set_exception(exc)
            return
        start = 0
        for x, f in items:
            stop = start + x.shape[0]
            f.set_result((y[start:stop], ns))
            start = stop

    def _settle(self, model: LoadedModel, items: list[_Item]) -> None:
        for x, f in items:
            self.observe_batch(model.name, x.shape[0])
            try:
                f.set_result(self._run(model, x))
            except Exception as exc:
                f.set_exception(exc)


def _concat(parts: list[Any]) -> Any:
    """The rows of several requests in one: matrices, or a design model's raw columns."""
    if isinstance(parts[0], RawColumns):
        return RawColumns.concat(parts)
    return np.concatenate(parts)


def _run(model: LoadedModel, X: Any) -> np.ndarray:
    y: np.ndarray = model.predictor.predict(X)  # type: ignore[assignment]
    return y
