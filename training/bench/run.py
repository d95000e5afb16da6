"""One ``linreg bench`` run: every backend on every (batch, k) group, then the cold starts."""

from __future__ import annotations

import dataclasses
import datetime as dt
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.bench.backends import BACKENDS, Backend, Unavailable, make_backend
from training.bench.coldstart import COLD_START_BACKENDS, cold_start
from training.bench.machine import load_average
from training.bench.timing import (
    BANDWIDTH_BYTES,
    Result,
    measure_bandwidth,
    time_group,
    wait_for_quiet,
)
from training.bench.workload import (
    BATCH_SIZES,
    FEATURES,
    SEED,
    make_input,
    make_models,
    reference_output,
)

__all__ = ["BenchRun", "run_bench"]


@dataclass
class BenchRun:
    """Everything one ``linreg bench`` measured."""

    results: list[Result]
    skipped: dict[str, str]
    bandwidth: dict[str, Any]
    cold: dict[str, list[dict[str, float]]]
    cold_k: int
    settings: dict[str, Any]
    started: str
    #: the 1-minute load average when the run started and when its timed groups ended
    load: dict[str, float | None] = dataclasses.field(default_factory=dict)

    def p50(self, name: str, n: int, k: int) -> float | None:
        """Median seconds per call of backend ``name`` on group (n, k); None if not run."""
        for r in self.results:
            if r.backend.name == name and r.n == n and r.k == k:
                return r.p50
        return None

    def cold_median(self, name: str) -> dict[str, float]:
        """The median of each cold-start measure of backend ``name``."""
        samples = self.cold[name]
        return {key: statistics.median(s[key] for s in samples) for key in samples[0]}


def _build(
    backends: Sequence[str], models: dict[int, Path], skipped: dict[str, str]
) -> dict[int, list[Backend]]:
    """k -> the backends that can run here; the others go into ``skipped`` with why."""
    built: dict[int, list[Backend]] = {}
    for k, model in models.items():
        built[k] = []
        for name in backends:
            try:
                built[k].append(make_backend(name, model))
            except Unavailable as exc:
                skipped[name] = str(exc)
    return built


def _mean_bandwidth(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    bandwidth: dict[str, Any] = {
        key: (value + after[key]) / 2 for key, value in before.items() if isinstance(value, float)
    }
    bandwidth["method"] = f"{before['method']}; mean of before and after the groups"
    return bandwidth


def _cold_starts(
    names: list[str], model_dir: Path, k: int, repeats: int, quiet_wait: float, show: bool
) -> dict[str, list[dict[str, float]]]:
    from tqdm.auto import tqdm

    cold: dict[str, list[dict[str, float]]] = {}
    for r in tqdm(range(repeats if names else 0), desc="cold starts", disable=not show):
        shift = r % len(names)  # rotate the order: no backend always goes first
        for name in names[shift:] + names[:shift]:
            if quiet_wait:
                wait_for_quiet(quiet_wait)
            cold.setdefault(name, []).append(cold_start(name, model_dir, k))
    return cold


def run_bench(
    *,
    sizes: Sequence[int] = BATCH_SIZES,
    features: Sequence[int] = FEATURES,
    backends: Sequence[str] = BACKENDS,
    model_dir: str | Path,
    rounds: int | None = None,
    budget: float = 0.5,
    min_rounds: int = 15,
    cold_repeats: int = 3,
    bandwidth_bytes: int = BANDWIDTH_BYTES,
    quiet_wait: float = 0.0,
    progress: bool | None = None,
) -> BenchRun:
    """Measure every backend on every (batch, k) group, then the cold starts."""
    from tqdm.auto import tqdm

    started = dt.datetime.now(tz=dt.timezone.utc).replace(microsecond=0).isoformat()
    load = {"start": load_average()}
    models = make_models(model_dir, features)
    show = sys.stderr.isatty() if progress is None else progress
    bw_before = measure_bandwidth(bandwidth_bytes)
    results: list[Result] = []
    skipped: dict[str, str] = {}
    built = _build(backends, {k: models[k] for k in features}, skipped)
    largest = {k: make_input(max(sizes), k) for k in features}
    groups = [(n, k) for k in features for n in sizes]
    for n, k in tqdm(groups, desc="groups", disable=not show):
        x = largest[k][:n]
        here = [b for b in built[k] if b.supports(n)]
        results += time_group(
            here,
            x,
            reference_output(x, models[k]),
            rounds=rounds,
            budget=budget,
            min_rounds=min_rounds,
            quiet_wait=quiet_wait,
        )
    load["end of the timed groups"] = load_average()
    bandwidth = _mean_bandwidth(bw_before, measure_bandwidth(bandwidth_bytes))
    cold_k = max(features)
    names = [b for b in COLD_START_BACKENDS if b in backends]
    cold = _cold_starts(names, models[cold_k], cold_k, cold_repeats, quiet_wait, show)
    settings = {
        "sizes": list(sizes),
        "features": list(features),
        "rounds": rounds or f"auto (~{budget:g} s per backend and group, at least {min_rounds})",
        "seed": SEED,
        "cold_repeats": cold_repeats,
        "quiet_wait_s": quiet_wait,
    }
    return BenchRun(results, skipped, bandwidth, cold, cold_k, settings, started, load)
