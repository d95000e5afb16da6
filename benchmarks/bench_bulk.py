"""Where the Predictor's bulk session pays off: the ``bulk_rows`` threshold, the
non-finite check, and the CPU an idle Predictor takes (docs/guide/bandwidth.md).

Run: ``.venv/bin/python benchmarks/bench_bulk.py [--repeats 200] [--idle 5]``

For each k (1 and 16) and batch size, the same seeded float32 input
(``training.bench.make_input``) goes to four Predictors on the same model, timed
call by call in interleaved blocks (five passes, a shuffled order per pass):

- ``one session``: ``bulk_rows=None``, every batch on the app session (the
  Predictor before the bulk session): onnxruntime's default threads (one per
  physical core), the check ``np.isfinite(y).all()``;
- ``bulk``: ``bulk_rows=1``, every batch of two rows or more on the bulk session
  (a thread on every CPU, the check an ``np.einsum`` sum of the predictions);
- the same two with ``allow_nonfinite=True`` (no check): the check's own cost is the
  difference.

It prints the p50 of each in µs and ``one session ÷ bulk`` (above 1: the bulk session
is faster), and for each k the smallest batch from which that ratio stays at 0.95
or more (within 5 %, the noise of a shared machine) at every larger batch. Then it
scores ``--idle-rows`` rows ten times on a default Predictor and reports the CPU
seconds the process used in the ``--idle`` seconds after (``os.times``: user +
system, every thread). Each Predictor's output is checked against float64 numpy
first. The CPU model and the 1-minute load average before and after are printed
with the figures: on a shared machine, compare ratios within one run only.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from inference import Predictor
from training import bench

SIZES = (2048, 4096, 8192, 16384, 32768, 65536, 131072, 262144, 1 << 20)


def _variants(model: Path) -> dict[str, tuple[Predictor, bool]]:
    one = Predictor.load(model, providers="cpu", bulk_rows=None)
    bulk = Predictor.load(model, providers="cpu", bulk_rows=1)
    return {
        "one session": (one, False),
        "bulk": (bulk, False),
        "one session, no check": (one, True),
        "bulk, no check": (bulk, True),
    }


def _time(calls: dict[str, Callable[[], object]], repeats: int, seed: int) -> dict[str, float]:
    """p50 seconds per call of each, in five shuffled passes of blocks."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    order = list(calls)
    shuffle = random.Random(seed)
    for _ in range(5):
        shuffle.shuffle(order)
        for name in order:
            call = calls[name]
            for _ in range(3):
                call()
            for _ in range(max(1, repeats // 5)):
                start = time.perf_counter_ns()
                call()
                times[name].append((time.perf_counter_ns() - start) * 1e-9)
    return {name: statistics.median(t) for name, t in times.items()}


def sweep(model: Path, k: int, sizes: list[int], repeats: int) -> int | None:
    """Print the table for ``k``; the smallest size from which the bulk session is as
    fast as one session (within 5 %) at every size."""
    variants = _variants(model)
    largest = bench.make_input(max(sizes), k)
    print(f"\nk = {k} (p50, µs; load {bench.load_average()})\n")
    print("| rows | " + " | ".join(variants) + " | one session ÷ bulk |")
    print("|---:|" + "---:|" * (len(variants) + 1))
    wins_from = None
    for n in sizes:
        x = largest[:n]
        expected = bench.reference_output(x, model)
        for name, (p, _) in variants.items():
            error = bench.relative_error(p.predict(x), expected)
            assert error <= bench.RTOL, f"{name}: relative error {error:.3g}"
        calls = {
            name: (lambda p=p, a=a, x=x: p.predict(x, allow_nonfinite=a))
            for name, (p, a) in variants.items()
        }
        p50 = _time(calls, repeats, seed=n + k)
        ratio = p50["one session"] / p50["bulk"]
        if ratio >= 0.95 and wins_from is None:
            wins_from = n
        elif ratio < 0.95:
            wins_from = None
        cells = " | ".join(f"{p50[name] * 1e6:.1f}" for name in variants)
        print(f"| {n:,} | {cells} | {ratio:.2f} |")
    return wins_from


def idle_cpu(model: Path, k: int, rows: int, seconds: float) -> float:
    """CPU seconds this process uses in ``seconds`` after ten ``rows``-row predictions."""
    p = Predictor.load(model, providers="cpu")
    x = bench.make_input(rows, k)
    for _ in range(10):
        p.predict(x)
    assert rows < (p.bulk_rows or sys.maxsize) or p.bulk_session is not None
    before = os.times()
    time.sleep(seconds)
    after = os.times()
    return (after.user - before.user) + (after.system - before.system)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--features", default="1,16")
    parser.add_argument("--repeats", type=int, default=200, help="timed calls per variant")
    parser.add_argument("--idle", type=float, default=5.0, help="idle seconds measured")
    parser.add_argument("--idle-rows", type=int, default=1 << 20)
    args = parser.parse_args()
    sizes = [int(v) for v in args.sizes.split(",")]
    features = [int(v) for v in args.features.split(",")]
    print(f"CPU: {bench.cpu_description()}; load average {os.getloadavg()} at the start")
    with tempfile.TemporaryDirectory() as tmp:
        models = bench.make_models(tmp, features)
        wins = {k: sweep(models[k], k, sizes, args.repeats) for k in features}
        print(f"\nthe bulk session is as fast (within 5 %) or faster from: {wins} rows on")
        for k in features:
            cpu = idle_cpu(models[k], k, args.idle_rows, args.idle)
            print(
                f"k = {k}: {cpu:.3f} CPU seconds in the {args.idle:g} s after ten "
                f"{args.idle_rows:,}-row predictions (default Predictor)"
            )
    print(f"load average {os.getloadavg()} at the end")


if __name__ == "__main__":
    main()
