"""``python -m inference.serve MODEL_DIR ...``: ``linreg serve`` without the training package."""

from __future__ import annotations

import argparse
import sys

from inference.cli_common import CommandError
from inference.serve.cli import register


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="linreg")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["serve", *(sys.argv[1:] if argv is None else argv)])
    try:
        return int(args.func(args) or 0)
    except CommandError as exc:
        return exc.report()


if __name__ == "__main__":
    sys.exit(main())
