"""``linreg predict``: the batch job, scoring a file (or a directory of parts) in chunks."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any

from inference.intervals import KINDS
from inference.providers import SHORTHANDS
from linreg.common import (
    add_cluster_flags,
    add_progress_flags,
    check_cluster_flags,
    count,
    count0,
    csv_list,
    engine_name,
    fail,
    freeze_at_exit,
    level,
    require,
    usage,
)

__all__ = ["PREDICT_DESCRIPTION", "register"]


PREDICT_DESCRIPTION = """\
Score a CSV, TSV or Parquet file (or a directory of part files, in sorted order)
with a model, in chunks, in constant memory. The output's extension picks its
format (.csv, .tsv, optionally .gz/.bz2/.zst, or .parquet); it is written under a
temporary name and renamed into place only when every row was scored, so a failed
or killed job leaves nothing at the destination. A bad row (not a number, an empty
field, NaN or inf, a wrong number of fields) stops the job with its line (CSV) or
row number (Parquet) and column, unless --bad-rows skip or --bad-rows FILE sets it
aside. Exit status: 0 done, 1 bad input, I/O error or missing extra, 2 usage error."""

#: the engines of ``linreg predict`` (``stream`` is accepted for ``streaming``)
ENGINES = ("streaming", "dask", "spark")
#: interval coverage unless --level says otherwise
DEFAULT_LEVEL = 0.95


def _terminate(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds, so the temporary output is removed


def _check_usage(args: argparse.Namespace) -> None:
    """Refuse options given without the one they need, or with the other engine's."""
    check_cluster_flags("predict", args, dask=args.engine == "dask")
    require(
        "predict",
        args,
        [
            (("level",), "--interval", args.interval is not None),
            (
                ("parse_threads", "chunk_rows", "max_line_bytes"),
                "--engine streaming (the default)",
                args.engine == "streaming",
            ),
            (("bad_rows",), "--engine streaming or spark", args.engine != "dask"),
            (("master",), "--engine spark", args.engine == "spark"),
        ],
    )
    if args.engine == "spark" and args.bad_rows not in (None, "error", "null"):
        raise usage("predict", "--engine spark takes --bad-rows error or null")


def _predict(args: argparse.Namespace) -> int:
    from inference.errors import LinregError

    _check_usage(args)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if main_thread else None
    if main_thread:
        signal.signal(signal.SIGTERM, _terminate)
    try:
        with _trust(args.trusted_keys):
            report = _score(args)
    except (LinregError, OSError) as exc:  # a UsageError exits 2, the others 1
        raise fail("predict", exc) from exc
    except ValueError as exc:  # pyarrow's ArrowInvalid: bad data
        raise fail("predict", exc) from exc
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
    print(report.summary(), file=sys.stderr)
    freeze_at_exit()
    return 0


@contextlib.contextmanager
def _trust(keys: list[str]) -> Iterator[None]:
    """``--trusted-key``: while the job runs, this process (and its local Dask workers,
    which inherit the environment) loads the model only when one of these keys signed
    it; the environment is restored afterwards."""
    if not keys:
        yield
        return
    from inference.signing import TRUSTED_KEYS_ENV

    before = os.environ.get(TRUSTED_KEYS_ENV)
    os.environ[TRUSTED_KEYS_ENV] = os.pathsep.join(os.path.abspath(k) for k in keys)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(TRUSTED_KEYS_ENV, None)
        else:
            os.environ[TRUSTED_KEYS_ENV] = before


def _score(args: argparse.Namespace) -> Any:
    """Run the job with the engine ``args`` name; its report."""
    common: dict[str, Any] = dict(
        id_columns=csv_list(args.id_columns) if args.id_columns else None,
        keep_all=args.keep_all,
        interval=args.interval,
        level=DEFAULT_LEVEL if args.level is None else args.level,
        prediction_column=args.prediction_column,
        overwrite=args.overwrite,
        input_format=args.input_format,
        providers=args.providers,
        threads=args.threads,
        progress=args.progress,
    )
    if args.engine == "spark":
        from inference.spark import score_file_spark

        del common["providers"], common["progress"]  # CPU, and Spark shows its own progress
        return score_file_spark(
            args.model,
            args.input,
            args.output,
            master=args.master,
            bad_rows=args.bad_rows or "error",
            **common,
        )
    if args.engine == "dask":
        from inference.dask import score_file_dask

        return score_file_dask(
            args.model,
            args.input,
            args.output,
            scheduler=args.scheduler,
            workers=args.workers or 2,
            **common,
        )
    from inference.batch import score_file

    return score_file(
        args.model,
        args.input,
        args.output,
        bad_rows=args.bad_rows or "error",
        chunk_rows=args.chunk_rows,
        workers=args.parse_threads,
        **({} if args.max_line_bytes is None else {"max_line_bytes": args.max_line_bytes}),
        **common,
    )


def _register_predict(subparsers: Any) -> None:
    q = subparsers.add_parser(
        "predict",
        help="score a CSV, TSV or Parquet file (or directory of parts) in chunks",
        description=PREDICT_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    q.add_argument("model", help="model directory (with manifest.json) or .onnx file")
    q.add_argument("input", help="CSV, TSV or Parquet file, or a directory of part files")
    q.add_argument(
        "-o",
        "--output",
        required=True,
        help="output .csv or .tsv (optionally .gz, .bz2 or .zst) or .parquet file (required)",
    )
    keep = q.add_mutually_exclusive_group()
    keep.add_argument(
        "--id-columns",
        metavar="A,B",
        help="comma-separated input columns copied beside the prediction (default: none)",
    )
    keep.add_argument(
        "--keep-all",
        action="store_true",
        help="copy every input column (default: only --id-columns)",
    )
    q.add_argument(
        "--interval",
        choices=KINDS,
        help="add the interval's bounds as <column>_lower and _upper (default: none)",
    )
    q.add_argument(
        "--level",
        type=level,
        help=f"with --interval: the interval's coverage (default: {DEFAULT_LEVEL})",
    )
    q.add_argument(
        "--prediction-column",
        default="prediction",
        help="name of the new column (default: prediction)",
    )
    _add_streaming_flags(q)
    q.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing output (default: refuse, exit status 2)",
    )
    q.add_argument(
        "--input-format",
        choices=["csv", "tsv", "parquet"],
        help="the input's format (default: from its extension)",
    )
    q.add_argument(
        "--providers",
        default="cpu",
        choices=SHORTHANDS,
        help="ONNX Runtime execution providers: cpu, cuda, or auto (cuda when this "
        "onnxruntime has it) (default: cpu)",
    )
    q.add_argument(
        "--threads",
        type=count0,
        default=1,
        metavar="N",
        help="ONNX Runtime intra-op threads; 0: one per core (default: 1)",
    )
    _add_engine_flags(q)
    q.add_argument(
        "--trusted-key",
        dest="trusted_keys",
        metavar="PEM",
        action="append",
        default=[],
        help="score only with a model directory signed by this public key (repeat for "
        "several) (default: the files in $LINREG_TRUSTED_KEYS)",
    )
    add_cluster_flags(q)
    add_progress_flags(q)
    q.set_defaults(func=_predict)


def _add_engine_flags(q: argparse.ArgumentParser) -> None:
    """``--engine`` and Spark's ``--master``."""
    q.add_argument(
        "--engine",
        type=engine_name,
        choices=ENGINES,
        default="streaming",
        help="streaming (this process, in chunks; 'stream' is accepted too), dask (a "
        "cluster) or spark (writes a directory of parts; --bad-rows error or null) "
        "(default: streaming)",
    )
    q.add_argument(
        "--master",
        metavar="URL",
        help="with --engine spark: the Spark master (default: an active session, else local[*])",
    )


def _add_streaming_flags(q: argparse.ArgumentParser) -> None:
    """The streaming engine's own options."""
    q.add_argument(
        "--bad-rows",
        metavar="error|skip|FILE",
        help="stop at the first bad row (error), skip and count them (skip), or write them "
        "to FILE as CSV (use ./skip for a file named skip) (default: error)",
    )
    q.add_argument(
        "--chunk-rows",
        type=count,
        metavar="N",
        help="rows per chunk (default: about 2 MiB of CSV text; Parquet: 65536)",
    )
    q.add_argument(
        "--parse-threads",
        type=count,
        metavar="N",
        help="threads parsing CSV (default: the number of CPUs, at most 4)",
    )
    q.add_argument(
        "--max-line-bytes",
        type=count,
        metavar="N",
        help="longest CSV/TSV line (and field) read, in bytes (default: 16777216, 16 MiB)",
    )


def register(subparsers: Any) -> None:
    """Add ``linreg predict`` to ``linreg``'s parser."""
    _register_predict(subparsers)
