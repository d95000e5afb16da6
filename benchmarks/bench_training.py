"""Default fit against the tutorial preset: epochs, wall time and distance to the optimum.

Run: ``.venv/bin/python benchmarks/bench_training.py [--repeats 5]``. Prints a
Markdown table. Wall time is the median of the repeats (the fit alone, not data
loading); "distance" is the largest absolute parameter difference from numpy's
least squares, and "excess MSE" how much the fit's MSE exceeds the optimum's.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from training.data import DATASETS, load_dataset
from training.errors import DivergenceError
from training.solver.estimator import LinearRegressionSGD


def measure(name: str, preset: str, repeats: int) -> dict[str, object]:
    t = load_dataset(name)
    Z = np.column_stack([np.ones(len(t.y)), t.X])
    ls = np.linalg.lstsq(Z, t.y, rcond=None)[0]  # independent of training.solver.lstsq
    ls_mse = float(np.mean((t.y - Z @ ls) ** 2))
    times = []
    for _ in range(repeats):
        est = LinearRegressionSGD.from_preset(preset, progress=False)
        started = time.perf_counter()
        try:
            est.fit(t.X, t.y)
        except DivergenceError as exc:
            return {"data": name, "preset": preset, "result": f"diverged ({str(exc)[:60]}…)"}
        times.append(time.perf_counter() - started)
    params = np.r_[est.intercept_, est.coef_]
    mse = float(np.mean((t.y - Z @ params) ** 2))
    return {
        "data": name,
        "preset": preset,
        "epochs": est.n_epochs_,
        "converged": est.converged_,
        "seconds": statistics.median(times),
        "distance": float(np.abs(params - ls).max()),
        "excess_mse": mse - ls_mse,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(
        "| data | preset | epochs | converged | wall time (median) "
        "| max abs. param. diff. from lstsq | excess MSE |"
    )
    print("|---|---|---:|---|---:|---:|---:|")
    for name in DATASETS:
        for preset in ("default", "tutorial"):
            r = measure(name, preset, args.repeats)
            if "result" in r:
                print(f"| {name} | {preset} | – | – | {r['result']} | – | – |")
                continue
            print(
                f"| {name} | {preset} | {r['epochs']} | {r['converged']} "
                f"| {r['seconds'] * 1e3:.1f} ms | {r['distance']:.2e} | {r['excess_mse']:.2e} |"
            )


if __name__ == "__main__":
    main()
