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

from inference.errors import ModelLoadError
from inference.intervals import KINDS
from inference.providers import SHORTHANDS
from linreg.common import (
    EXIT_DATA,
    EXIT_USAGE,
    add_cluster_flags,
    add_progress_flags,
    check_cluster_flags,
    csv_list,
    fail,
    freeze_at_exit,
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
aside. Exit status: 0 done, 1 bad input or I/O error, 2 usage error."""


def _terminate(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds, so the temporary output is removed


def _check_engine_flags(args: argparse.Namespace) -> None:
    """Refuse flags of the other engine (a usage error)."""
    check_cluster_flags("predict", args, dask=args.engine == "dask")
    if args.engine == "dask" and (args.bad_rows != "error" or args.parse_threads is not None):
        raise fail("predict", "--bad-rows and --parse-threads are for --engine stream", EXIT_USAGE)


def _predict(args: argparse.Namespace) -> int:
    from inference.errors import BatchError, InputError

    _check_engine_flags(args)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if main_thread else None
    if main_thread:
        signal.signal(signal.SIGTERM, _terminate)
    try:
        with _trust(args.trusted_keys):
            report = _score(args)
    except (BatchError, ModelLoadError, InputError, OSError, ImportError) as exc:
        raise fail("predict", exc) from exc
    except (ValueError, TypeError) as exc:
        # pyarrow's ArrowInvalid is a ValueError, but it means bad data, not bad usage
        bad_data = type(exc).__module__.startswith("pyarrow")
        raise fail("predict", exc, EXIT_DATA if bad_data else EXIT_USAGE) from exc
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
        level=args.level,
        prediction_column=args.prediction_column,
        overwrite=args.overwrite,
        input_format=args.input_format,
        providers=args.providers,
        threads=args.threads,
        progress=args.progress,
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
        bad_rows=args.bad_rows,
        chunk_rows=args.chunk_rows,
        workers=args.parse_threads,
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
    q.add_argument("-o", "--output", required=True, help="output .csv, .tsv or .parquet file")
    keep = q.add_mutually_exclusive_group()
    keep.add_argument(
        "--id-columns", metavar="A,B", help="comma-separated input columns to keep beside it"
    )
    keep.add_argument("--keep-all", action="store_true", help="keep every input column")
    q.add_argument("--interval", choices=KINDS, help="add bounds")
    q.add_argument("--level", type=float, default=0.95, help="interval coverage (0.95)")
    q.add_argument(
        "--prediction-column", default="prediction", help="name of the new column (prediction)"
    )
    q.add_argument(
        "--bad-rows",
        default="error",
        metavar="error|skip|FILE",
        help="stop at the first bad row (error, the default), skip and count them, or "
        "write them to FILE as CSV (use ./skip for a file named skip)",
    )
    q.add_argument("--chunk-rows", type=int, help="rows per chunk (default: 2 MiB of CSV text)")
    q.add_argument("--overwrite", action="store_true", help="replace an existing output")
    q.add_argument(
        "--input-format", choices=["csv", "tsv", "parquet"], help="when the extension does not say"
    )
    q.add_argument("--providers", default="cpu", choices=SHORTHANDS)
    q.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads (1)")
    q.add_argument(
        "--parse-threads", type=int, help="threads parsing CSV (default: CPUs, at most 4)"
    )
    q.add_argument(
        "--engine",
        choices=["stream", "dask"],
        default="stream",
        help="stream (this process, the default) or dask (a cluster)",
    )
    q.add_argument(
        "--trusted-key",
        dest="trusted_keys",
        metavar="PEM",
        action="append",
        default=[],
        help="score only with a model directory signed by this public key (repeat for "
        "several; default: the files in $LINREG_TRUSTED_KEYS)",
    )
    add_cluster_flags(q)
    add_progress_flags(q)
    q.set_defaults(func=_predict)


def register(subparsers: Any) -> None:
    """Add ``linreg predict`` to ``linreg``'s parser."""
    _register_predict(subparsers)
