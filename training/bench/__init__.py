"""``linreg bench``: every backend side by side, from cold start to million-row batches.

Each backend (:mod:`~training.bench.backends`) is fed the same seeded float32 array
of shape (n, k) (:mod:`~training.bench.workload`) and timed call by call, group by
group, against this machine's memory-bandwidth bound (:mod:`~training.bench.timing`);
then each starts cold in a fresh process (:mod:`~training.bench.coldstart`).
:func:`run_bench` (:mod:`~training.bench.run`) does all of it; the report
(:mod:`~training.bench.report`) is ``bench.md`` (tables), ``bench.png`` (plot) and
``bench.json`` in pytest-benchmark's format (``pytest-benchmark compare a.json
b.json`` works). The pytest-benchmark suite in ``benchmarks/`` uses the same backends.

Names are imported lazily: the cold-start child runs as ``python -m
training.bench.coldstart``, which imports this package first, and its clock must not
start after numpy or onnxruntime are already in memory.
"""

from __future__ import annotations

from training.lazy import lazy_names

__all__ = [
    "BACKENDS",
    "BANDWIDTH_BYTES",
    "BATCH_SIZES",
    "Backend",
    "BenchRun",
    "COLD_NOTES",
    "COLD_START_BACKENDS",
    "FEATURES",
    "RTOL",
    "Result",
    "SEED",
    "Unavailable",
    "bound_seconds",
    "cold_start",
    "cpu_description",
    "cpu_model",
    "load_average",
    "make_backend",
    "make_input",
    "make_models",
    "markdown",
    "measure_bandwidth",
    "model_parameters",
    "plot",
    "reference_output",
    "relative_error",
    "run_bench",
    "targets",
    "time_group",
    "to_json",
    "versions",
    "wait_for_quiet",
    "write_report",
]

_WHERE = {
    "BACKENDS": "training.bench.backends",
    "Backend": "training.bench.backends",
    "Unavailable": "training.bench.backends",
    "make_backend": "training.bench.backends",
    "to_json": "training.bench.benchjson",
    "COLD_NOTES": "training.bench.coldstart",
    "COLD_START_BACKENDS": "training.bench.coldstart",
    "cold_start": "training.bench.coldstart",
    "BATCH_SIZES": "training.bench.workload",
    "FEATURES": "training.bench.workload",
    "RTOL": "training.bench.workload",
    "SEED": "training.bench.workload",
    "make_input": "training.bench.workload",
    "make_models": "training.bench.workload",
    "model_parameters": "training.bench.workload",
    "reference_output": "training.bench.workload",
    "relative_error": "training.bench.workload",
    "cpu_description": "training.bench.machine",
    "cpu_model": "training.bench.machine",
    "load_average": "training.bench.machine",
    "versions": "training.bench.machine",
    "markdown": "training.bench.report",
    "plot": "training.bench.report",
    "targets": "training.bench.report",
    "write_report": "training.bench.report",
    "BenchRun": "training.bench.run",
    "run_bench": "training.bench.run",
    "BANDWIDTH_BYTES": "training.bench.timing",
    "Result": "training.bench.timing",
    "bound_seconds": "training.bench.timing",
    "measure_bandwidth": "training.bench.timing",
    "time_group": "training.bench.timing",
    "wait_for_quiet": "training.bench.timing",
}

__getattr__ = lazy_names(__name__, _WHERE)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
