"""Timing: the timed loops, percentiles, the memory-bandwidth bound, waiting for quiet.

For each group (batch size n, k features) every backend is warmed up and called
``rounds`` times, each call timed alone with ``time.perf_counter_ns`` (garbage
collector off). The rounds are split into five passes; each pass visits the
backends in a fresh seeded order, one block per backend, so that a backend's
spinning threads (ORT's by default, OpenMP's in torch) do not land on another's
timed calls, and slow drifts of the machine's load are shared out.

The yardstick is the time to stream the input (n·k·4 bytes) in and the output
(n·4 bytes) out at the rate of a 256 MiB ``np.copyto`` (read + write bytes per
second). A batch that fits in the caches can beat that bound (more than 100 %).

The 1-minute load average is read before and after each timed block: a result
says how busy the machine was while it was measured (``Result.load_before``,
``Result.load_after``).
"""

from __future__ import annotations

import functools
import gc
import os
import random
import statistics
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from training.bench.backends import Backend
from training.bench.machine import load_average
from training.bench.workload import RTOL, SEED, relative_error

__all__ = [
    "BANDWIDTH_BYTES",
    "Result",
    "bound_seconds",
    "measure_bandwidth",
    "time_group",
    "wait_for_quiet",
]

BANDWIDTH_BYTES = 256 << 20


def measure_bandwidth(nbytes: int = BANDWIDTH_BYTES, repeats: int = 5) -> dict[str, Any]:
    """Streaming rate of this machine: read + write bytes per second of ``np.copyto``.

    Timed on one thread and split over every core; ``bytes_per_s`` is the faster.
    """
    n = nbytes // 4
    src = np.ones(n, dtype=np.float32)
    dst = np.zeros(n, dtype=np.float32)
    workers = os.cpu_count() or 1
    step = -(-n // workers)

    def part(i: int) -> None:
        np.copyto(dst[i * step : (i + 1) * step], src[i * step : (i + 1) * step])

    with ThreadPoolExecutor(workers) as pool:

        def threaded() -> None:
            list(pool.map(part, range(workers)))

        times: dict[str, list[float]] = {"one thread": [], f"{workers} threads": []}
        for _ in range(repeats):
            for label, fn in (
                ("one thread", functools.partial(np.copyto, dst, src)),
                (f"{workers} threads", threaded),
            ):
                start = time.perf_counter()
                fn()
                times[label].append(time.perf_counter() - start)
    rates = {label: 2 * src.nbytes / statistics.median(t) for label, t in times.items()}
    best = max(rates, key=rates.__getitem__)
    return {
        "bytes_per_s": rates[best],
        "method": f"np.copyto of {src.nbytes >> 20} MiB, {best}",
        **{f"bytes_per_s ({label})": rate for label, rate in rates.items()},
    }


def bound_seconds(n: int, k: int, bytes_per_s: float, itemsize: int = 4) -> float:
    """Time to stream an (n, k) input in and an (n,) output out at ``bytes_per_s``."""
    return (n * k + n) * itemsize / bytes_per_s


@dataclass
class Result:
    """The timings of one backend on one group (batch n, k features)."""

    backend: Backend
    n: int
    k: int
    times: list[float] = field(default_factory=list)  # seconds per call
    error: float = float("nan")  # relative error against float64 numpy
    #: (before, after) 1-minute load average of each timed block, in order
    loads: list[tuple[float | None, float | None]] = field(default_factory=list)

    @property
    def group(self) -> str:
        return f"batch={self.n} k={self.k}"

    @property
    def p50(self) -> float:
        return statistics.median(self.times)

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.times, q))

    @property
    def load_before(self) -> float | None:
        """The 1-minute load average before the first timed block (None: unknown)."""
        return self.loads[0][0] if self.loads else None

    @property
    def load_after(self) -> float | None:
        """The 1-minute load average after the last timed block (None: unknown)."""
        return self.loads[-1][1] if self.loads else None


def _busy_fraction(interval: float = 0.2) -> float | None:
    """Share of this machine's CPU time busy over ``interval`` (None without /proc/stat).

    Called between timed blocks, when this process is idle: it is the load of others.
    """

    def sample() -> tuple[int, int]:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(fields), fields[3] + fields[4]  # total, idle + iowait

    try:
        total0, idle0 = sample()
        time.sleep(interval)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    return 1.0 - (idle1 - idle0) / max(total1 - total0, 1)


def wait_for_quiet(max_wait: float, threshold: float = 0.25) -> float:
    """Sleep until other processes use under ``threshold`` of the CPUs, at most
    ``max_wait`` seconds; returns the seconds waited."""
    start = time.perf_counter()
    while time.perf_counter() - start < max_wait:
        busy = _busy_fraction()
        if busy is None or busy < threshold:
            break
    return time.perf_counter() - start


def _rounds_for(seconds_per_call: float, budget: float, min_rounds: int, max_rounds: int) -> int:
    wanted = int(budget / max(seconds_per_call, 1e-9))
    return max(min_rounds, min(max_rounds, wanted))


def _checked_call(backend: Backend, x: np.ndarray, reference: np.ndarray) -> tuple[Any, float]:
    """``backend.prepare(x)`` and its relative error; AssertionError above ``RTOL``."""
    call = backend.prepare(x)
    err = relative_error(backend.to_array(call()), reference)
    if not err <= RTOL:
        n, k = x.shape
        raise AssertionError(
            f"{backend.name} on batch={n} k={k}: relative error {err:.3g} from numpy "
            f"float64, above {RTOL:g}"
        )
    return call, err


def _timed_block(call: Callable[[], Any], todo: int, samples: list[float]) -> None:
    """Warm ``call`` up again, then append ``todo`` timings (seconds) to ``samples``."""
    timer = time.perf_counter_ns
    for _ in range(max(2, min(50, todo // 10))):
        call()
    for _ in range(todo):
        start = timer()
        call()
        samples.append((timer() - start) * 1e-9)


def time_group(
    backends: Sequence[Backend],
    x: np.ndarray,
    reference: np.ndarray,
    *,
    rounds: int | None = None,
    budget: float = 0.5,
    min_rounds: int = 15,
    max_rounds: int = 10_000,
    passes: int = 5,
    seed: int = SEED,
    quiet_wait: float = 0.0,
) -> list[Result]:
    """Time every backend on ``x`` (block per backend, ``passes`` shuffled passes).

    ``rounds`` fixes the calls per backend; else about ``budget`` seconds each,
    within [min_rounds, max_rounds]. Each output is checked against ``reference``
    first; a backend off by more than ``RTOL`` raises AssertionError. With
    ``quiet_wait``, each block waits (up to that many seconds) for the other
    processes on the machine to go quiet: on a shared machine, a thread of a
    parallel kernel (torch's OpenMP above all) that loses its core stalls the call.
    """
    n, k = x.shape
    calls: dict[str, Callable[[], Any]] = {}
    results: dict[str, Result] = {}
    counts: dict[str, int] = {}
    for backend in backends:
        call, err = _checked_call(backend, x, reference)
        start = time.perf_counter()
        for _ in range(3):
            call()
        per_call = (time.perf_counter() - start) / 3
        calls[backend.name] = call
        results[backend.name] = Result(backend, n, k, error=err)
        counts[backend.name] = rounds or _rounds_for(per_call, budget, min_rounds, max_rounds)
    order = list(calls)
    shuffle = random.Random(seed + n + k)
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for p in range(passes):
            shuffle.shuffle(order)
            for name in order:
                if quiet_wait:
                    wait_for_quiet(quiet_wait)
                todo = counts[name] // passes + (1 if p < counts[name] % passes else 0)
                before = load_average()
                _timed_block(calls[name], todo, results[name].times)
                results[name].loads.append((before, load_average()))
    finally:
        if gc_was_enabled:
            gc.enable()
    return [results[b.name] for b in backends]
