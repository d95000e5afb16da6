"""``linreg bench``: its flags and what it runs."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from linreg.common import add_progress_flags, csv_list, fail
from training.bench.backends import BACKENDS
from training.bench.timing import BANDWIDTH_BYTES
from training.bench.workload import BATCH_SIZES, FEATURES

__all__ = ["register"]


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v.replace("_", "")) for v in csv_list(text)]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from exc
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def _name_list(text: str) -> list[str]:
    names = csv_list(text)
    unknown = [n for n in names if n not in BACKENDS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown backend(s) {unknown}; expected {list(BACKENDS)}")
    return names


def _bench(args: argparse.Namespace) -> int:
    import tempfile

    from training.bench.report import markdown, write_report
    from training.bench.run import run_bench

    quick = args.quick
    sizes = args.sizes or ([1, 64, 4096] if quick else list(BATCH_SIZES))
    try:
        with tempfile.TemporaryDirectory(prefix="linreg-bench-") as tmp:
            run = run_bench(
                sizes=sizes,
                features=args.features,
                backends=args.backends,
                model_dir=args.models or tmp,
                rounds=args.rounds,
                budget=0.02 if quick else args.budget,
                min_rounds=3 if quick else 15,
                cold_repeats=(1 if quick else 3)
                if args.cold_repeats is None
                else args.cold_repeats,
                bandwidth_bytes=(32 << 20) if quick else BANDWIDTH_BYTES,
                quiet_wait=args.wait_quiet,
                progress=args.progress,
            )
        paths = write_report(run, args.out)
    except OSError as exc:  # --models or --out not writable, disk full
        raise fail("bench", exc) from exc
    print(markdown(run))
    print("\n".join(f"wrote {path}" for path in paths.values()))
    return 0


def register(subparsers: Any) -> None:
    """Add ``linreg bench`` to the command line."""
    p = subparsers.add_parser(
        "bench",
        help="benchmark every backend side by side; write a table, a plot and JSON",
        description="Time numpy, torch eager, TorchScript, onnxruntime and the Predictor "
        "(and CUDA backends where a GPU is present) on the same seeded input at each batch "
        "size and feature count, against this machine's memory bandwidth; then the cold "
        "start of each in a fresh process. Writes bench.md, bench.png and bench.json "
        "(pytest-benchmark's format) into --out.",
    )
    p.add_argument(
        "--sizes",
        type=_int_list,
        help=f"comma-separated batch sizes (default: {','.join(map(str, BATCH_SIZES))})",
    )
    p.add_argument(
        "--features",
        type=_int_list,
        default=list(FEATURES),
        help="comma-separated feature counts k (default: 1,16)",
    )
    p.add_argument(
        "--backends",
        type=_name_list,
        default=list(BACKENDS),
        help=f"comma-separated subset of {','.join(BACKENDS)} (default: all)",
    )
    p.add_argument("--rounds", type=int, help="timed calls per backend and group (default: auto)")
    p.add_argument(
        "--budget",
        type=float,
        default=0.5,
        help="with automatic rounds, seconds of calls per backend and group (default: 0.5)",
    )
    p.add_argument("--cold-repeats", type=int, help="fresh processes per backend (default: 3)")
    p.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="before each timed block, wait up to SECONDS for other processes to leave the "
        "CPUs under 25%% busy (for shared machines; default: 0, no waiting)",
    )
    p.add_argument("--out", type=Path, default=Path("bench-results"), help="output directory")
    p.add_argument(
        "--models", type=Path, help="directory for the synthetic models (default: a temporary one)"
    )
    p.add_argument(
        "--quick", action="store_true", help="small sizes, few rounds: a check, not a measurement"
    )
    add_progress_flags(p)
    p.set_defaults(func=_bench)
