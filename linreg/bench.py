"""``linreg bench``: its flags and what it runs."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from linreg.common import add_progress_flags, count, csv_list, fail, nonnegative, positive, require
from training.bench.backends import BACKENDS
from training.bench.timing import BANDWIDTH_BYTES
from training.bench.workload import BATCH_SIZES, FEATURES

__all__ = ["register"]

#: seconds of calls per backend and group, with automatic rounds
DEFAULT_BUDGET = 0.5
#: where the report goes unless --out says otherwise
DEFAULT_OUT = Path("bench-results")


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

    require(
        "bench",
        args,
        [
            (("budget",), "automatic rounds (no --rounds)", args.rounds is None),
            (("budget",), "a full run (no --quick)", not args.quick),
        ],
    )
    quick = args.quick
    sizes = args.sizes or ([1, 64, 4096] if quick else list(BATCH_SIZES))
    try:
        with tempfile.TemporaryDirectory(prefix="linreg-bench-") as tmp:
            run = run_bench(
                sizes=sizes,
                features=args.features,
                backends=args.backends or list(BACKENDS),
                model_dir=args.models or tmp,
                rounds=args.rounds,
                budget=0.02 if quick else (args.budget or DEFAULT_BUDGET),
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
        "(pytest-benchmark's format) into --out. Exit status: 0 done, 1 a failed run or a "
        "missing extra, 2 usage error.",
    )
    p.add_argument(
        "--sizes",
        type=_int_list,
        metavar="N,N",
        help="comma-separated batch sizes (default: "
        f"{','.join(map(str, BATCH_SIZES))}; with --quick: 1,64,4096)",
    )
    p.add_argument(
        "--features",
        type=_int_list,
        default=list(FEATURES),
        metavar="K,K",
        help=f"comma-separated feature counts k (default: {','.join(map(str, FEATURES))})",
    )
    p.add_argument(
        "--backends",
        type=_name_list,
        metavar="NAME,NAME",
        help=f"comma-separated subset of {','.join(BACKENDS)} (default: all of them)",
    )
    p.add_argument(
        "--rounds",
        type=count,
        help="timed calls per backend and group (default: automatic, from --budget)",
    )
    p.add_argument(
        "--budget",
        type=positive,
        metavar="SECONDS",
        help="with automatic rounds: seconds of calls per backend and group (default: "
        f"{DEFAULT_BUDGET}; with --quick: 0.02)",
    )
    p.add_argument(
        "--cold-repeats",
        type=count,
        metavar="N",
        help="fresh processes per backend for the cold start (default: 3; with --quick: 1)",
    )
    p.add_argument(
        "--wait-quiet",
        type=nonnegative,
        default=0.0,
        metavar="SECONDS",
        help="before each timed block, wait up to SECONDS for other processes to leave the "
        "CPUs under 25%% busy (for shared machines) (default: 0, no waiting)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help=f"output directory for bench.md, bench.png and bench.json (default: {DEFAULT_OUT})",
    )
    p.add_argument(
        "--models",
        type=Path,
        help="directory for the synthetic models (default: a temporary one)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="small sizes, few rounds: a check, not a measurement (default: a full run)",
    )
    add_progress_flags(p)
    p.set_defaults(func=_bench)
