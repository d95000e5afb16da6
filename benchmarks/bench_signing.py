"""Cold start with signature verification against cold start without, in the same run.

Each round starts fresh Python processes that import ``inference``, call
``Predictor.load`` on a signed copy of a bundled model, with a trusted key
(``trusted_keys=[public.pem]``: the bundle's ECDSA signature and every file's
sha256, ``cryptography`` imported) or without (``trusted_keys=()``: the manifest's
hashes), and predict one row. The two kinds alternate within each round (which goes
first alternates too), so a change of the machine's load hits both alike. Each
process's prediction is checked against ``x @ coef + intercept`` from the manifest
(numpy, float64) before any time counts. Reported: the median time inside the child
(imports, load, first prediction) and of the whole process (interpreter start and
exit included), their ratio (with / without), and the same for ``Predictor.load``
alone, repeated in one warm process. The machine (CPU, cores, memory), the versions
and ``uptime`` before and after are printed: the machine may be shared.

    .venv/bin/python benchmarks/bench_signing.py [--rounds 15] [--model plant_richness_mlr]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import json, sys, time
t0 = time.perf_counter()
from inference import Predictor
directory, keys = sys.argv[1], sys.argv[2:]
p = Predictor.load(directory, providers="cpu", trusted_keys=keys)
y = p.predict_one(dict.fromkeys(p.features, 1.0))
t1 = time.perf_counter()
print(json.dumps({"inside_s": t1 - t0, "prediction": y}))
"""


def _machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 2**20:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return f"{cpu}, {os.cpu_count()} CPUs{mem}, Python {platform.python_version()}"


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return f"load average {os.getloadavg()}"


def prepare(model: str, work: Path) -> tuple[Path, Path, float]:
    """A signed copy of the bundled ``model`` and its public key; the expected
    prediction for all features 1.0 (numpy, float64, from the manifest)."""
    from inference.signing import generate_key_pair, sign_directory

    directory = work / model
    shutil.copytree(ROOT / "exported_models" / model, directory)
    generate_key_pair(work / "private.pem", work / "public.pem")
    sign_directory(directory, work / "private.pem")
    params = json.loads((directory / "manifest.json").read_text())["parameters"]
    expected = float(np.sum(params["coef"]) + params["intercept"])
    return directory, work / "public.pem", expected


def cold(directory: Path, keys: list[Path], expected: float) -> tuple[float, float]:
    """One fresh process: (time inside it, whole process wall time), prediction checked."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("LINREG_TRUSTED_KEYS", None)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(directory), *map(str, keys)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"the child failed: {done.stderr}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    if not np.isclose(out["prediction"], expected, rtol=1e-5):
        raise AssertionError(f"predicted {out['prediction']}, numpy says {expected}")
    return out["inside_s"], wall


def warm_loads(directory: Path, public: Path, rounds: int) -> dict[str, float]:
    """Median ``Predictor.load`` in this process (imports done), without and with the key."""
    from inference import Predictor

    times: dict[str, list[float]] = {"without": [], "with": []}
    for _ in range(rounds):
        for kind, keys in (("without", ()), ("with", (public,))):
            t = time.perf_counter()
            Predictor.load(directory, providers="cpu", trusted_keys=keys)
            times[kind].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def run(rounds: int, model: str) -> dict[str, float]:
    """Time both kinds ``rounds`` times each, interleaved; print and return the medians."""
    print(f"machine: {_machine()}")
    print(f"before:  {_uptime()}")
    with tempfile.TemporaryDirectory() as tmp:
        directory, public, expected = prepare(model, Path(tmp))
        samples: dict[str, list[tuple[float, float]]] = {"without": [], "with": []}
        for i in range(rounds):
            order = [("without", []), ("with", [public])]
            for kind, keys in order if i % 2 == 0 else order[::-1]:
                samples[kind].append(cold(directory, keys, expected))
        warm = warm_loads(directory, public, max(rounds, 5))
    print(f"after:   {_uptime()}")
    med = {
        f"{kind}_{what}": statistics.median(s[j] for s in samples[kind])
        for kind in samples
        for j, what in enumerate(("inside_s", "wall_s"))
    }
    result = {
        **med,
        "ratio_inside": med["with_inside_s"] / med["without_inside_s"],
        "ratio_wall": med["with_wall_s"] / med["without_wall_s"],
        "warm_load_without_s": warm["without"],
        "warm_load_with_s": warm["with"],
        "ratio_warm_load": warm["with"] / warm["without"],
    }
    print(f"model {model}, {rounds} cold starts of each kind, interleaved (medians):")
    print(f"{'':28}{'without key':>14}{'with key':>14}{'ratio':>8}")
    rows = [
        ("cold start, in the process", "without_inside_s", "with_inside_s", "ratio_inside"),
        ("cold start, whole process", "without_wall_s", "with_wall_s", "ratio_wall"),
        ("Predictor.load, warm", "warm_load_without_s", "warm_load_with_s", "ratio_warm_load"),
    ]
    for label, a, b, r in rows:
        print(f"{label:28}{result[a] * 1e3:>11.1f} ms{result[b] * 1e3:>11.1f} ms{result[r]:>8.2f}")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--model", default="plant_richness_mlr")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    result = run(args.rounds, args.model)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
