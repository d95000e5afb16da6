"""Every backend at every batch size and feature count, against the numpy reference.

Each test first checks the backend's output against float64 numpy on the same
input (relative error at most ``bench.RTOL``), then times it. Each result's
``extra_info`` names the CPU model and the 1-minute load average before and after
the timing (a figure is that machine's, in that state). See conftest.py for how to
run the suite.
"""

from __future__ import annotations

import pytest

from training import bench


@pytest.mark.parametrize("name", bench.BACKENDS)
def test_backend(benchmark, name, batch, k, backend_for, inputs, models, bandwidth):
    backend = backend_for(name, k)
    if not backend.supports(batch):
        pytest.skip(f"{name} runs batch sizes {sorted(backend.batches or ())} only")
    x = inputs(batch, k)
    call = backend.prepare(x)
    error = bench.relative_error(backend.to_array(call()), bench.reference_output(x, models[k]))
    assert error <= bench.RTOL, f"{name}: relative error {error:.3g} from numpy"
    bound = bench.bound_seconds(batch, k, bandwidth["bytes_per_s"])
    benchmark.group = f"batch={batch} k={k}"
    benchmark.extra_info.update(
        backend=name,
        provider=backend.provider,
        device=backend.device,
        batch=batch,
        k=k,
        seed=bench.SEED,
        bound_s=bound,
        bandwidth_bytes_per_s=bandwidth["bytes_per_s"],
        max_relative_error=error,
        cpu=bench.cpu_model(),
        load_before=bench.load_average(),
    )
    benchmark(call)
    benchmark.extra_info["load_after"] = bench.load_average()
    stats = getattr(benchmark, "stats", None)
    if stats is not None:  # None when benchmarks are disabled (the smoke run)
        median = stats.stats.median
        benchmark.extra_info.update(
            rows_per_s=batch / median, percent_of_bound=100 * bound / median
        )


@pytest.mark.parametrize("name", bench.COLD_START_BACKENDS)
def test_cold_start(benchmark, name, models, smoke):
    """A fresh process: import, load the model, predict one row (timed: the process)."""
    k = max(models)
    samples: list[dict[str, float]] = []
    benchmark.group = f"cold start k={k}"
    benchmark.extra_info.update(backend=name, device="cpu", k=k, what=bench.COLD_NOTES[name])
    benchmark.pedantic(
        lambda: samples.append(bench.cold_start(name, models[k], k)),
        rounds=1 if smoke else 3,
        iterations=1,
    )
    assert samples and all(s["total_s"] > 0 and s["rss_mb"] > 0 for s in samples)
    for key in samples[0]:
        benchmark.extra_info[f"median_{key}"] = sorted(s[key] for s in samples)[len(samples) // 2]
