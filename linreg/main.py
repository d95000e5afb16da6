"""``linreg``: one command, subcommands for training, inspection, prediction, benchmarks.

torch is imported only by the subcommands that need it, so ``linreg info`` and
``linreg predict`` run where only the inference part is installed. A subcommand
reports a failure by raising :class:`linreg.common.CommandError`
(:func:`linreg.common.run_command` prints it and returns its exit status: 0 done, 1
bad data, a failed run or a missing extra, 2 usage error; ``docs/guide/cli.md``).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

__all__ = ["PROCESS_ENVIRONMENT", "build_parser", "main"]

#: the module whose ``register(subparsers)`` adds each subcommand, in the order
#: ``linreg --help`` lists them
SUBCOMMANDS = {
    "train": "linreg.train",
    "regenerate": "linreg.train",
    "predict": "linreg.predict",
    "info": "linreg.info",
    "bench": "linreg.bench",
    "serve": "linreg.serve",
    "mlflow": "linreg.mlflow",
    "keygen": "linreg.signing",
    "sign": "linreg.signing",
    "verify": "linreg.signing",
}


#: environment defaults for a subcommand's own process, set by :func:`main` when numpy is
#: not yet imported (a variable already set wins). ``predict`` leaves the arithmetic to ONNX
#: Runtime, so numpy's OpenBLAS needs no thread pool: at import it would start one
#: thread per core, which spins for about 0.1 s of CPU while the job reads its input.
PROCESS_ENVIRONMENT = {"predict": {"OPENBLAS_NUM_THREADS": "1"}}


class _Version(argparse.Action):
    """``--version``: the package's version and whether the native readers are active
    (worked out only when asked: it imports the I/O layer)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, help="show the version and the readers")

    def __call__(self, parser: argparse.ArgumentParser, *args: object) -> None:
        from inference import __version__
        from inference.io import native_status

        readers = ", ".join(f"{name} {state}" for name, state in native_status().items())
        print(f"linreg-onnx {__version__}\nnative readers: {readers}")
        parser.exit()


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """``linreg``'s parser; with a known ``command``, only the module that adds that
    subcommand is imported (the others cost a short job such as ``linreg predict``
    about 20 ms of imports), else all of them (for ``--help`` and usage errors)."""
    parser = argparse.ArgumentParser(
        prog="linreg",
        description="Fit a PyTorch linear regression, export it to ONNX and TorchScript, "
        "and serve it with ONNX Runtime.",
    )
    parser.add_argument("--version", action=_Version)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    wanted = SUBCOMMANDS.get(command or "")
    for module in dict.fromkeys(SUBCOMMANDS.values()):
        if wanted is None or module == wanted:
            importlib.import_module(module).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``linreg`` with ``argv`` (default: ``sys.argv[1:]``); the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    command = args[0] if args else None
    if "numpy" not in sys.modules:  # only a fresh process: the settings are read at import
        for name, value in PROCESS_ENVIRONMENT.get(command or "", {}).items():
            os.environ.setdefault(name, value)
    from linreg.common import CommandError, missing_extra, run_command  # imports numpy

    try:
        parser = build_parser(command)
    except ModuleNotFoundError as exc:  # a subcommand's options need an extra
        message = missing_extra(exc, command)
        if message is None:
            raise
        return CommandError(command or "?", message).report()
    try:
        return run_command(parser.parse_args(args))
    except BrokenPipeError:  # `linreg info ... | head`: the reader left
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
