"""``score_file_spark``: ``linreg predict --engine spark``, files scored on Spark.

Spark reads the input (a CSV, TSV or Parquet file, or a directory of parts; CSV
feature columns are read as text and converted with ``try_cast`` to double, so text
that is not a number is a null, hence a bad row), :func:`predict_spark` scores it,
and Spark writes a directory of part files in the output's format (told from its
extension: ``.parquet``, ``.csv`` or ``.tsv``, optionally ``.gz`` or ``.bz2``).

Atomic output: Spark writes into a temporary directory beside the destination
(``.<name>.tmp-<host>-<pid>-<random>``, :mod:`inference.io.atomic`), which is
renamed into place only when the write succeeded; a replaced output is first moved
aside under an ``.old-`` name and removed after the rename. A failed job removes
the temporary and leaves the destination as it was. Row order follows Spark's
partitions (Spark orders input splits by size), so keep an id column
(``id_columns``) to match rows to the input.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from inference.batch import BatchReport, ScoreOptions
from inference.errors import BatchError, UsageError
from inference.io import FileFormat, file_format, input_parts
from inference.io.atomic import discard, sync_directory, temporary_name
from inference.predictor import Predictor
from inference.spark.scoring import output_columns, predict_spark

__all__ = ["score_file_spark", "spark_session"]

#: what a worker's traceback ends with: ``inference.errors.InputError: message``
_WORKER_ERROR = re.compile(r"^(?:inference\.errors\.)?(InputError|ModelLoadError): (.+)$", re.M)
_CODECS = {None: "none", "gzip": "gzip", "bz2": "bzip2"}


def spark_session(master: str | None = None, app_name: str = "linreg") -> Any:
    """The active SparkSession, or a new one on ``master`` (default ``local[*]``), its
    Python workers running this interpreter (``PYSPARK_PYTHON``, unless set).

    Raises ``FileNotFoundError`` when no Java runtime is found (Spark needs Java 17 or
    newer), ``OSError`` when Spark does not start, ``ImportError`` without pyspark (the
    ``spark`` extra).
    """
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    java_home = os.environ.get("JAVA_HOME")
    if shutil.which("java") is None and not (java_home and Path(java_home, "bin", "java").exists()):
        raise FileNotFoundError(
            "java: not found; Spark needs a Java 17 or newer runtime on PATH or in JAVA_HOME "
            "(Debian: apt-get install openjdk-17-jre-headless)"
        )
    from pyspark.errors import PySparkException

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = (
        SparkSession.builder.master(master or "local[*]")
        .appName(app_name)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", str(sys.stderr.isatty()).lower())
    )
    try:
        return builder.getOrCreate()
    except PySparkException as exc:  # the JVM did not start: an environment problem
        raise OSError(f"Spark did not start on {master or 'local[*]'}: {exc}") from exc


def _read(spark: Any, parts: list[Path], fmt: FileFormat, features: list[str]) -> Any:
    """The input as a Spark DataFrame; CSV feature columns converted to double."""
    paths = [str(p) for p in parts]
    if fmt.kind == "parquet":
        return spark.read.parquet(*paths)
    from pyspark.sql import functions as F

    df = spark.read.options(header=True, sep=fmt.delimiter, inferSchema=False).csv(paths)
    return df.select(
        *[
            F.expr(f"try_cast({_quoted(c)} AS DOUBLE)").alias(c) if c in features else _quoted(c)
            for c in df.columns
        ]
    )


def _quoted(name: str) -> str:
    """A column name as Spark SQL reads it, whatever its characters."""
    return "`" + name.replace("`", "``") + "`"


def _write(df: Any, path: Path, fmt: FileFormat) -> None:
    if fmt.kind == "parquet":
        df.write.parquet(str(path))
        return
    if fmt.compression not in _CODECS:
        raise ValueError(
            f"{path}: Spark writes CSV uncompressed, .gz or .bz2, not {fmt.compression}"
        )
    df.write.options(header=True, sep=fmt.delimiter, compression=_CODECS[fmt.compression]).csv(
        str(path)
    )


def _check_destination(dest: Path, src: Path, overwrite: bool) -> None:
    """Usage checks on the output directory (UsageError: exit status 2)."""
    if dest.exists() or dest.is_symlink():
        if not overwrite:
            raise UsageError(f"{dest}: exists; pass overwrite=True (--overwrite) to replace it")
        if dest.is_symlink() or not (dest / "_SUCCESS").is_file():
            raise UsageError(
                f"{dest}: exists and is not an output of Spark (no _SUCCESS file in it); "
                "refusing to replace it"
            )
    if not dest.parent.is_dir():
        raise UsageError(f"{dest.parent}: no such directory for the output")
    here = dest.resolve()
    if here == src.resolve() or src.resolve() in here.parents:
        raise UsageError(f"{dest}: is the input or inside it; write it elsewhere")


def _move_into_place(tmp: Path, dest: Path) -> None:
    """Rename the written directory to ``dest``, a previous output moved aside first."""
    old = None
    if dest.exists():
        old = temporary_name(dest, "old")
        os.rename(dest, old)
    try:
        os.rename(tmp, dest)
    except BaseException:
        if old is not None and not dest.exists():
            os.rename(old, dest)
        raise
    if old is not None:
        discard(old)
    sync_directory(dest.parent)


def _as_batch_error(exc: Exception, src: Path) -> BatchError:
    """A Spark failure as a BatchError: a worker's InputError or ModelLoadError message
    when there is one, else Spark's first line."""
    text = str(exc)
    found = _WORKER_ERROR.findall(text)
    if found:
        return BatchError(found[-1][1].strip(), file=str(src))
    first = next((line for line in text.splitlines() if line.strip()), type(exc).__name__)
    return BatchError(f"Spark: {first.strip()}", file=str(src))


def _kept(df: Any, options: ScoreOptions) -> list[str]:
    if options.keep_all:
        return list(df.columns)
    kept = list(options.id_columns or [])
    missing = [c for c in kept if c not in df.columns]
    if missing:
        raise BatchError(f"no column(s) {missing} to keep; the input has {list(df.columns)}")
    return kept


def score_file_spark(
    model: str | Path,
    input: str | Path,
    output: str | Path,
    *,
    master: str | None = None,
    id_columns: Sequence[str] | None = None,
    keep_all: bool = False,
    interval: str | None = None,
    level: float = 0.95,
    prediction_column: str = "prediction",
    overwrite: bool = False,
    input_format: str | None = None,
    bad_rows: str = "error",
    threads: int | None = 1,
) -> BatchReport:
    """Score a file (or a directory of parts) on Spark into a directory of part files.

    Parameters
    ----------
    master : Spark master URL (default ``local[*]``); an active SparkSession is used
        as it is, and one started here is stopped at the end
    bad_rows : "error" (the first bad row fails the job with a :class:`BatchError`
        carrying the Predictor's message) or "null" (its prediction is null, counted
        in ``rows_bad``)

    The other parameters are :func:`inference.batch.score_file`'s. Returns a
    :class:`~inference.batch.BatchReport` (``engine="spark"``).
    """
    started = time.perf_counter()
    options = ScoreOptions(
        id_columns=id_columns,
        keep_all=keep_all,
        interval=interval,
        level=level,
        prediction_column=prediction_column,
        overwrite=overwrite,
        input_format=input_format,
        threads=threads,
    )
    src, dest = Path(input), Path(output)
    out_fmt = file_format(dest)
    parts = input_parts(src, input_format)
    _check_destination(dest, src, overwrite)
    predictor = Predictor.load(model, providers="cpu", threads=1)
    own = _no_active_session()
    spark = spark_session(master, app_name="linreg predict")
    if own:  # a failed task's Java stack trace would bury the error this job reports
        spark.sparkContext.setLogLevel("FATAL")
    tmp = temporary_name(dest)
    try:
        rows, bad = _run(spark, model, parts, tmp, predictor, options, bad_rows, out_fmt, src)
        _move_into_place(tmp, dest)
    except BaseException:
        discard(tmp)
        raise
    finally:
        if own:
            spark.stop()
    return BatchReport(
        input=str(src),
        output=str(dest),
        parts=len(parts),
        rows_read=rows,
        rows_written=rows,
        rows_bad=bad,
        seconds=time.perf_counter() - started,
        engine="spark",
    )


def _no_active_session() -> bool:
    from pyspark.sql import SparkSession

    return SparkSession.getActiveSession() is None


def _run(
    spark: Any,
    model: str | Path,
    parts: list[Path],
    tmp: Path,
    predictor: Predictor,
    options: ScoreOptions,
    bad_rows: str,
    out_fmt: FileFormat,
    src: Path,
) -> tuple[int, int]:
    """Read, score and write into ``tmp``; the rows scored and the rows nulled."""
    from py4j.protocol import Py4JJavaError
    from pyspark.errors import PySparkException

    in_fmt = file_format(parts[0], options.input_format)
    sc = spark.sparkContext
    rows, bad = sc.accumulator(0), sc.accumulator(0)
    try:
        df = _read(spark, parts, in_fmt, predictor.features)
        scored = predict_spark(
            df,
            model,
            column=options.prediction_column,
            interval=options.interval,
            level=options.level,
            bad_rows=bad_rows,
            bad_row_counter=bad,
            row_counter=rows,
            threads=options.threads,
        )
        columns = _kept(df, options) + output_columns(options.prediction_column, options.interval)
        _write(scored.select(*[_quoted(c) for c in columns]), tmp, out_fmt)
    except (PySparkException, Py4JJavaError) as exc:
        raise _as_batch_error(exc, src) from None
    return int(rows.value), int(bad.value)
