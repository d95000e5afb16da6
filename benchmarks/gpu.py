"""Run the GPU rows of the benchmark: onnxruntime with CUDA and torch on CUDA.

Usage, on a machine with an NVIDIA GPU, onnxruntime-gpu in place of onnxruntime
and a CUDA build of torch::

    python benchmarks/gpu.py [--out bench-gpu]

It runs ``linreg bench`` with the CUDA backends beside numpy, torch eager, a plain
onnxruntime session and the Predictor on CPU (all sizes, k = 1 and 16, no cold
starts) and writes bench.md, bench.png and bench.json into ``--out``; the table
names the card. The same rows in pytest-benchmark form:
``python -m pytest benchmarks/ --benchmark-enable -k "cuda or numpy"``.
Exits with status 2, saying why, where neither CUDA backend can run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from training import bench

GPU_BACKENDS = ("ort-cuda", "torch-cuda")
BESIDE = ("numpy", "torch-eager", "ort-session", "predictor")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench-gpu"))
    parser.add_argument("--sizes", default=",".join(map(str, bench.BATCH_SIZES)))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="linreg-bench-gpu-") as tmp:
        model = bench.make_models(tmp, [1])[1]
        reasons = {}
        for name in GPU_BACKENDS:
            try:
                bench.make_backend(name, model)
            except bench.Unavailable as exc:
                reasons[name] = str(exc)
        if len(reasons) == len(GPU_BACKENDS):
            for name, reason in reasons.items():
                print(f"{name}: {reason}", file=sys.stderr)
            print("no GPU backend can run here; nothing measured", file=sys.stderr)
            return 2
        run = bench.run_bench(
            sizes=[int(s) for s in args.sizes.split(",")],
            backends=BESIDE + GPU_BACKENDS,
            model_dir=tmp,
            cold_repeats=0,
        )
    paths = bench.write_report(run, args.out)
    print(bench.markdown(run))
    print("\n".join(f"wrote {p}" for p in paths.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
