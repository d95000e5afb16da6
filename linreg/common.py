"""Rules every ``linreg`` subcommand shares: common flags, argument types, errors.

Torch-free, so the inference subcommands can use it. Each rule lives here once:

- ``--progress/--no-progress``: :func:`add_progress_flags` (``args.progress`` is
  ``None`` when neither is given: show a bar only on a terminal);
- comma-separated names: :func:`csv_list`; checked numbers: :func:`count`,
  :func:`positive`, :func:`fraction`;
- options that need another option: :func:`require` (a usage error);
- errors: a subcommand raises :class:`CommandError` (``raise fail("train", exc)``,
  ``raise usage("train", "...")``); :func:`run_command`, which every entry point
  calls, prints it as ``linreg COMMAND: error: MESSAGE`` on stderr and returns its
  status. The library's messages name its keyword arguments (``overwrite=True``);
  :func:`flag_spelling` words them as the command line's flags (``--overwrite``).
  A module of a missing extra is reported with the ``pip install`` line that brings
  it (:func:`missing_extra`), never with a traceback.

Exit statuses (:data:`EXIT_STATUSES`, listed in ``docs/guide/cli.md``): 0 done, 1 bad
data, a failed run or a missing extra, 2 usage error (argparse's own included).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Iterable
from typing import Any

from inference.errors import LinregError, UsageError

__all__ = [
    "EXIT_DATA",
    "EXIT_OK",
    "EXIT_STATUSES",
    "EXIT_USAGE",
    "EXTRAS",
    "CommandError",
    "add_cluster_flags",
    "add_progress_flags",
    "check_cluster_flags",
    "count",
    "csv_list",
    "engine_name",
    "fail",
    "flag_spelling",
    "fraction",
    "freeze_at_exit",
    "missing_extra",
    "positive",
    "require",
    "run_command",
    "usage",
]

#: Exit status of a command that did its work.
EXIT_OK = 0
#: Exit status for bad input data, a failed run (I/O, a fit that diverged or did not
#: converge and was not exported) or a missing extra.
EXIT_DATA = 1
#: Exit status for usage errors: unknown or malformed options, options that
#: contradict each other or need another one (argparse uses 2 too).
EXIT_USAGE = 2
EXIT_STATUSES = {
    EXIT_OK: "success",
    EXIT_DATA: "bad data, a failed run, or a missing extra",
    EXIT_USAGE: "usage error",
}

#: the extra that installs each optional top-level module the commands import
EXTRAS = {
    "torch": "training",
    "onnx": "training",
    "onnxscript": "training",
    "scipy": "training",
    "sklearn": "training",
    "matplotlib": "training",
    "threadpoolctl": "training",
    "pandas": "tables",
    "pyarrow": "tables",
    "tqdm": "tables",
    "onnxruntime": "cpu",
    "dask": "dask",
    "distributed": "dask",
    "uvicorn": "serve",
    "starlette": "serve",
    "orjson": "serve",
    "prometheus_client": "serve",
    "swagger_ui_bundle": "serve",
    "polars": "bench",
    "duckdb": "bench",
}

#: the library's keyword arguments, as the command line spells them
_FLAGS = (
    ("overwrite=True", "--overwrite"),
    ("allow_unconverged=True", "--allow-unconverged"),
    ("dtype='float64'", "--dtype float64"),
    ("input_format='csv', 'tsv' or 'parquet'", "--input-format csv, tsv or parquet"),
    ("prediction_column", "--prediction-column"),
    ("test_size", "--test-size"),
    ("chunk_rows", "--chunk-rows"),
    ("batch_size", "--batch-size"),
)


class CommandError(Exception):
    """A subcommand's failure, reported as ``linreg COMMAND: error: MESSAGE``."""

    def __init__(self, command: str, message: object, status: int = EXIT_DATA) -> None:
        self.command = command
        self.message = str(message)
        self.status = status
        super().__init__(f"linreg {command}: error: {self.message}")

    def report(self) -> int:
        """Print the message on stderr and return the exit status."""
        print(self, file=sys.stderr)
        return self.status


def flag_spelling(message: str) -> str:
    """``message`` with the library's keyword arguments spelled as flags
    (``pass overwrite=True`` -> ``pass --overwrite``)."""
    for python, flag in _FLAGS:
        if "=" not in python:  # a bare name: "test_size=0.9" -> "--test-size 0.9"
            message = re.sub(rf"(?<![\w-]){python}=", flag + " ", message)
        message = re.sub(rf"(?<![\w-]){re.escape(python)}(?![\w])", flag, message)
    return message


def fail(command: str, exc: BaseException | str, status: int | None = None) -> CommandError:
    """The error to raise for ``linreg COMMAND`` failing with ``exc``: status 2 for a
    :class:`~inference.errors.UsageError`, else ``status`` (default 1)."""
    if status is None:
        status = EXIT_USAGE if isinstance(exc, UsageError) else EXIT_DATA
    return CommandError(command, flag_spelling(str(exc)), status)


def usage(command: str, message: str) -> CommandError:
    """A usage error of ``linreg COMMAND`` (exit status 2)."""
    return CommandError(command, message, EXIT_USAGE)


#: the extra that brings every module a command needs (train: torch and pyarrow alike)
COMMAND_EXTRAS = {"train": "training", "regenerate": "training", "bench": "training"}
#: the modules the ``training`` extra installs
_TRAINING = {m for m, extra in EXTRAS.items() if extra == "training"} | {
    "pandas",
    "pyarrow",
    "tqdm",
}


def missing_extra(exc: ModuleNotFoundError, command: str | None = None) -> str | None:
    """The message for an import that failed because an extra is not installed
    (None when ``exc`` is about a module of this project, or names none): the extra
    of ``command`` when it brings that module, else the module's own extra."""
    name = (exc.name or "").split(".")[0]
    if not name or name in ("linreg", "training", "inference"):
        return None
    extra = EXTRAS.get(name)
    if COMMAND_EXTRAS.get(command or "") == "training" and name in _TRAINING:
        extra = "training"
    hint = f"pip install 'linreg-onnx[{extra}]'" if extra else f"pip install {name}"
    return f"this command needs {name}, which is not installed: {hint}"


def run_command(args: argparse.Namespace) -> int:
    """Run the subcommand the parser chose (``args.func``); its exit status, with a
    :class:`CommandError`, any other of the project's errors and a missing extra
    reported on stderr in one line."""
    command = getattr(args, "command", None) or "?"
    try:
        return int(args.func(args) or 0)
    except CommandError as exc:
        return exc.report()
    except ImportError as exc:
        # the library's own ImportErrors carry their install hint already
        message = missing_extra(exc, command) if isinstance(exc, ModuleNotFoundError) else None
        if message is None and "pip install" in str(exc):
            message = str(exc)
        if message is None:
            raise
        return CommandError(command, message).report()
    except LinregError as exc:
        return fail(command, exc).report()


def require(command: str, args: argparse.Namespace, rules: Iterable[Rule]) -> None:
    """Refuse options given without the option they need (a usage error).

    Each rule is ``(options, needed, given)``: ``options`` are the dests checked
    (given when not None and not False), ``needed`` says in words what they need,
    ``given`` says whether it is there.
    """
    for options, needed, present in rules:
        used = [o for o in options if getattr(args, o, None) not in (None, False)]
        if used and not present:
            flags = " and ".join("--" + o.replace("_", "-") for o in used)
            verb = "need" if len(used) > 1 else "needs"
            raise usage(command, f"{flags} {verb} {needed}")


#: ``(dests, what they need in words, whether it is given)``
Rule = tuple[tuple[str, ...], str, bool]


def _number(kind: Callable[[str], Any], ok: Callable[[Any], bool], expected: str) -> Any:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r}: expected {expected}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"{text!r}: expected {expected}")
        return value

    return parse


#: an integer >= 1
count = _number(int, lambda v: v >= 1, "an integer >= 1")
#: an integer >= 0
count0 = _number(int, lambda v: v >= 0, "an integer >= 0")
#: a finite number > 0
positive = _number(float, lambda v: 0 < v < float("inf"), "a number > 0")
#: a number >= 0
nonnegative = _number(float, lambda v: 0 <= v < float("inf"), "a number >= 0")
#: a number in [0, 1)
fraction = _number(float, lambda v: 0 <= v < 1, "a number >= 0 and < 1")
#: a number in (0, 1)
level = _number(float, lambda v: 0 < v < 1, "a number between 0 and 1")


#: older spellings of ``--engine`` still accepted
ENGINE_ALIASES = {"stream": "streaming"}


def engine_name(text: str) -> str:
    """``--engine``'s argument, old spellings (``stream``) mapped to the current ones
    (one spelling of each engine in every command: docs/guide/cli.md)."""
    return ENGINE_ALIASES.get(text.lower(), text.lower())


def csv_list(text: str) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``: a comma-separated list, blanks dropped."""
    return [t.strip() for t in text.split(",") if t.strip()]


def add_progress_flags(parser: argparse.ArgumentParser) -> None:
    """Add ``--progress`` / ``--no-progress`` (``args.progress``: True, False or None)."""
    bar = parser.add_mutually_exclusive_group()
    bar.add_argument(
        "--progress",
        dest="progress",
        action="store_true",
        default=None,
        help="show a progress bar on stderr (default: only when stderr is a terminal)",
    )
    bar.add_argument(
        "--no-progress",
        dest="progress",
        action="store_false",
        help="never show one (default: shown when stderr is a terminal)",
    )


def add_cluster_flags(parser: Any) -> None:
    """Add ``--scheduler ADDRESS`` and ``--workers N`` (a Dask cluster to use, or the
    size of a local one) to ``parser`` (an ``ArgumentParser`` or an argument group)."""
    parser.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="with --engine dask: the scheduler to use, e.g. tcp://host:8786 (default: "
        "a local cluster)",
    )
    parser.add_argument(
        "--workers",
        type=count,
        metavar="N",
        help="with --engine dask and no --scheduler: worker processes of the local "
        "cluster (default: 2)",
    )


def check_cluster_flags(command: str, args: argparse.Namespace, dask: bool) -> None:
    """Refuse ``--scheduler`` / ``--workers`` when the engine is not Dask (usage error)."""
    require(command, args, [(("scheduler", "workers"), "--engine dask", dask)])


def freeze_at_exit() -> None:
    """At interpreter exit, move every object still alive to the garbage collector's
    permanent generation before the final collections run.

    For a short process, such as a big-data ``linreg train`` or a ``linreg predict``,
    the collections at shutdown would walk every object its imports made: torch's,
    scipy's and scikit-learn's take 2.0 s without this and 0.2 s with it (measured
    on this project's 2-core machine), numpy's, pyarrow's and ONNX Runtime's about
    15 ms. An atexit handler runs before them; finalizers and the other handlers run
    as usual, and a process that calls ``main`` and goes on is not affected.
    """
    import atexit
    import gc

    atexit.unregister(gc.freeze)  # once, however often main runs
    atexit.register(gc.freeze)
