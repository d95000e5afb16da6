"""One-row latency of ``Predictor.predict`` and ``predict_one``, this tree against another.

Run: ``.venv/bin/python benchmarks/bench_one_row.py --base /tmp/bw-base [--rounds 6]``
(``git worktree add /tmp/bw-base main`` first, and build its C readers with
``python setup.py build_ext --inplace`` there).

Each round starts one fresh process per tree (``PYTHONPATH`` set to that tree, this
interpreter), in an order rotated from round to round. The process loads the bundled
models (``plant_richness_lr``, k = 1, and ``plant_richness_mlr``, k = 3) with
``Predictor.load`` defaults, checks one prediction against float64 numpy on the
manifest's parameters, then times ``predict`` on a (1, k) float32 array and
``predict_one(**row)`` call by call (``--calls`` calls after 1,000 warm-up calls) and
prints the p50 and p90 in µs. The table gives, per tree, the median over rounds of the
p50s, and this tree ÷ base (below 1: this tree is faster). The CPU model and the
1-minute load average at the start and end of each process are printed: on a shared
machine, compare within one run only.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = {
    "k=1": ROOT / "exported_models/plant_richness_lr",
    "k=3": ROOT / "exported_models/plant_richness_mlr",
}

CHILD = r"""
import json, os, sys, time
import numpy as np
import inference
from inference import Predictor

calls = int(sys.argv[1])
out = {"load_before": os.getloadavg()[0], "code": inference.__file__}
for name, model in json.loads(sys.argv[2]).items():
    p = Predictor.load(model)
    params = p.manifest.data["parameters"]
    x = (np.arange(p.n_features_in_, dtype=np.float32) + 1.5).reshape(1, -1)
    expected = float(x[0].astype(np.float64) @ np.array(params["coef"]) + params["intercept"])
    row = dict(zip(p.features, map(float, x[0])))
    for got in (float(p.predict(x)[0]), p.predict_one(**row)):
        assert abs(got - expected) <= 1e-5 * (1 + abs(expected)), (got, expected)
    one_row = {"predict": lambda: p.predict(x), "predict_one": lambda: p.predict_one(**row)}
    for label, call in one_row.items():
        for _ in range(1000):
            call()
        times = []
        clock = time.perf_counter_ns
        for _ in range(calls):
            start = clock()
            call()
            times.append(clock() - start)
        times.sort()
        out[f"{name} {label}"] = [times[len(times) // 2] / 1e3, times[len(times) * 9 // 10] / 1e3]
out["load_after"] = os.getloadavg()[0]
print(json.dumps(out))
"""


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo ("?" where absent)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


def run_tree(root: Path, calls: int) -> dict:
    """One fresh process on the code at ``root``: its measures (see CHILD)."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    models = json.dumps({name: str(path) for name, path in MODELS.items()})
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(calls), models],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        cwd=root,
    )
    if done.returncode != 0:
        raise SystemExit(f"{root}: failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=lambda v: Path(v).resolve(), required=True)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--calls", type=int, default=20000)
    args = parser.parse_args()
    trees = {"this tree": ROOT, "base": args.base}
    runs: dict[str, list[dict]] = {name: [] for name in trees}
    print(f"CPU: {cpu_model()}, {os.cpu_count()} CPUs; load average {os.getloadavg()} at the start")
    for r in range(args.rounds):
        order = list(trees)[r % 2 :] + list(trees)[: r % 2]
        for name in order:
            result = run_tree(trees[name], args.calls)
            runs[name].append(result)
            print(
                f"round {r} {name} ({result['code']}): load {result['load_before']:.2f} → "
                f"{result['load_after']:.2f}",
                file=sys.stderr,
            )
    measures = [key for key in runs["this tree"][0] if key.startswith("k=")]
    print("\n| measure | this tree p50 (µs) | base p50 (µs) | this tree ÷ base |")
    print("|---|---:|---:|---:|")
    for key in measures:
        mine = statistics.median(run[key][0] for run in runs["this tree"])
        base = statistics.median(run[key][0] for run in runs["base"])
        print(f"| {key} | {mine:.2f} | {base:.2f} | {mine / base:.2f} |")
    loads = [
        run[key] for rs in runs.values() for run in rs for key in ("load_before", "load_after")
    ]
    print(
        f"\n{args.rounds} rounds, {args.calls:,} timed calls per measure and process; "
        f"load average {min(loads):.2f}–{max(loads):.2f} during the processes, "
        f"{os.getloadavg()} at the end; CPU {cpu_model()}"
    )


if __name__ == "__main__":
    main()
