"""One-row latency of a model fitted on raw columns (text factors) beside a numeric one.

Run: ``.venv/bin/python benchmarks/bench_factor_row.py [--runs 3]``

Loads the bundled ``penguins`` (three text factors and three numbers) and
``plant_richness_mlr`` (three numbers) with ``Predictor.load`` defaults, checks that
the one-row paths agree with ``predict`` on a DataFrame, then times ``predict_one``
and ``predict`` of one row (a record for the factor model, a (1, 3) float32 array for
the numeric one): each figure is the best of ``--runs`` runs, each run the median of 7
batches of 3,000 calls, in µs. Prints the CPU model and the load average around the
timing: on a shared machine, compare within one run only.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from inference import Predictor
from training.bench.machine import cpu_description

ROOT = Path(__file__).resolve().parents[1]
FACTOR_ROW = {
    "species": "Gentoo",
    "island": "Biscoe",
    "bill_length_mm": 47.0,
    "bill_depth_mm": 15.0,
    "flipper_length_mm": 217.0,
    "sex": "male",
}
NUMERIC_ROW = {"area": 3.2, "latitude": 41.5, "dist_mainland": 120.0}


def per_call_us(call: Callable[[], object], calls: int = 3000) -> float:
    """The median over 7 batches of ``calls`` calls of the µs per call (after 300)."""
    for _ in range(300):
        call()
    batches = []
    for _ in range(7):
        start = time.perf_counter_ns()
        for _ in range(calls):
            call()
        batches.append((time.perf_counter_ns() - start) / calls / 1000)
    return statistics.median(batches)


def main(argv: list[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--calls", type=int, default=3000)
    args = ap.parse_args(argv)
    factor = Predictor.load(ROOT / "exported_models" / "penguins")
    numeric = Predictor.load(ROOT / "exported_models" / "plant_richness_mlr")
    X = np.array([list(NUMERIC_ROW.values())], dtype=np.float32)
    want = factor.predict(pd.DataFrame([FACTOR_ROW]))
    if factor.predict_one(**FACTOR_ROW) != float(want[0]) or factor.predict([FACTOR_ROW]) != want:
        raise SystemExit("the factor model's one-row paths disagree with predict(DataFrame)")
    if numeric.predict_one(**NUMERIC_ROW) != float(numeric.predict(X)[0]):
        raise SystemExit("the numeric model's predict_one disagrees with predict")
    kinds: dict[str, Callable[[], object]] = {
        "predict_one, factor model": lambda: factor.predict_one(**FACTOR_ROW),
        "predict_one, numeric model": lambda: numeric.predict_one(**NUMERIC_ROW),
        "predict of one row, factor model": lambda: factor.predict([FACTOR_ROW]),
        "predict of one row, numeric model": lambda: numeric.predict(X),
    }
    print(f"{cpu_description()}; load average before: {os.getloadavg()[0]:.2f}")
    runs: dict[str, list[float]] = {name: [] for name in kinds}
    for _ in range(args.runs):
        for name, call in kinds.items():
            runs[name].append(per_call_us(call, args.calls))
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    best = {name: min(values) for name, values in runs.items()}
    print("| call | µs (best of runs) | runs |\n|---|---:|---|")
    for name, values in runs.items():
        print(f"| {name} | {best[name]:.1f} | {', '.join(f'{v:.1f}' for v in values)} |")
    for call in ("predict_one", "predict of one row"):
        ratio = best[f"{call}, factor model"] / best[f"{call}, numeric model"]
        print(f"{call}: factor / numeric = {ratio:.2f}")
    return best


if __name__ == "__main__":
    main()
