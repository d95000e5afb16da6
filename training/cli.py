"""``linreg``: one command, subcommands for training, inspection, prediction, benchmarks.

torch is imported only by the subcommands that need it, so ``linreg info`` and
``linreg predict`` run where only the inference part is installed. A subcommand
reports a failure by raising :class:`inference.cli_common.CommandError`
(:func:`inference.cli_common.run_command` prints it and returns its exit status).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from inference import cli as inference_cli
from inference.cli_common import run_command
from inference.serve import cli as serve_cli

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    from training import bench, commands

    parser = argparse.ArgumentParser(
        prog="linreg",
        description="Fit a PyTorch linear regression, export it to ONNX and TorchScript, "
        "and serve it with ONNX Runtime.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.register(sub)
    inference_cli.register(sub)
    bench.register(sub)
    serve_cli.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``linreg`` with ``argv`` (default: ``sys.argv[1:]``); the exit status."""
    return run_command(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
