"""``predict_spark``: a model's predictions as new columns of a Spark DataFrame, on mapInArrow.

The driver loads the model once (manifest and hashes checked) to check the
DataFrame's columns and the interval options, then hands Spark a small picklable
:class:`SparkJob` (paths and names, never the Predictor: an ONNX Runtime session
cannot be pickled). Each Python worker loads the model the first time one of its
tasks needs it, checks that its manifest is the one the driver read (sha256), and
keeps the Predictor in a module-level cache (:func:`get_predictor`) that every later
batch, task and job on that worker reuses (Spark reuses its Python workers).

Each Arrow batch (``spark.sql.execution.arrow.maxRecordsPerBatch`` rows, 10,000 by
default) is scored with one ONNX Runtime call: the feature columns are taken by name
from the batch and converted exactly as ``Predictor.predict`` converts a DataFrame's
columns, so the predictions are the Predictor's, bit for bit.
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import shutil
import tempfile
import threading
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from inference.errors import InputError, ModelLoadError
from inference.intervals import KINDS, IntervalPrediction
from inference.manifest import MANIFEST_NAME, Manifest
from inference.predictor import Predictor

__all__ = [
    "BAD_ROWS",
    "SparkJob",
    "clear_cache",
    "get_predictor",
    "load_count",
    "output_columns",
    "predict_spark",
]

#: what a bad row does: raise the Predictor's error, or leave nulls and count it
BAD_ROWS = ("error", "null")

_LOCK = threading.Lock()
_CACHE: dict[tuple[str, str], Predictor] = {}
_LOADS: Counter[str] = Counter()
#: zipped model directories for SparkContext.addArchive, by archive name
_SHIPPED: dict[str, str] = {}


@dataclass(frozen=True)
class SparkJob:
    """What every task needs to score a batch (pickled into the Spark plan)."""

    model: str  # the directory every worker reads, or the archive's name (addArchive)
    shipped: bool
    manifest_sha256: str
    features: tuple[str, ...]
    column: str
    interval: str | None
    level: float
    bad_rows: str
    threads: int | None


def _manifest_sha256(model_dir: Path) -> str:
    return hashlib.sha256((model_dir / MANIFEST_NAME).read_bytes()).hexdigest()


def _local_path(job: SparkJob) -> str:
    if not job.shipped:
        return job.model
    from pyspark import SparkFiles

    return SparkFiles.get(job.model)


def get_predictor(job: SparkJob) -> Predictor:
    """The Predictor of ``job`` in this process: loaded and checked once, then reused."""
    path = _local_path(job)
    key = (path, job.manifest_sha256)
    with _LOCK:
        predictor = _CACHE.get(key)
        if predictor is None:
            try:
                sha = _manifest_sha256(Path(path))
            except OSError as exc:
                raise ModelLoadError(
                    f"{path}: cannot read the model on this worker ({exc})"
                ) from exc
            if sha != job.manifest_sha256:
                raise ModelLoadError(
                    f"{path}: the manifest on this worker (sha256 {sha[:12]}) is not the one the "
                    f"driver read ({job.manifest_sha256[:12]}); every worker must see one model"
                )
            predictor = Predictor.load(path, providers="cpu", threads=job.threads)
            _CACHE[key] = predictor
            _LOADS[path] += 1
    return predictor


def load_count(path: str | None = None) -> int:
    """How many times this process loaded the model at ``path`` (None: any model)."""
    with _LOCK:
        return sum(_LOADS.values()) if path is None else _LOADS[path]


def clear_cache() -> None:
    """Forget this process's cached models and load counts."""
    with _LOCK:
        _CACHE.clear()
        _LOADS.clear()


def output_columns(column: str, interval: str | None) -> list[str]:
    """The columns :func:`predict_spark` adds: ``column``, then with an interval
    ``<column>_lower`` and ``<column>_upper``."""
    return [column] + ([f"{column}_lower", f"{column}_upper"] if interval else [])


# --- on the workers ----------------------------------------------------------------
def _columns(batch: Any, job: SparkJob) -> dict[str, np.ndarray]:
    """The feature columns of an Arrow batch as numpy arrays (nulls as NaN)."""
    import pyarrow as pa

    out = {}
    for name in job.features:
        arr = batch.column(name)
        if not (pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type)):
            arr = arr.cast(pa.float64())  # decimals
        out[name] = arr.to_numpy(zero_copy_only=False)
    return out


def _null_error(batch: Any, job: SparkJob) -> InputError | None:
    """The Predictor-style error for the first null feature value of a batch, if any."""
    for name in job.features:
        arr = batch.column(name)
        if arr.null_count:
            row = int(np.flatnonzero(~np.asarray(arr.is_valid()))[0])
            return InputError(
                f"row {row}, column {name!r}: a null (a missing value, or in a CSV input text "
                "that is not a number) is not a number"
            )
    return None


def _score(batch: Any, job: SparkJob, predictor: Predictor) -> tuple[list[np.ndarray], Any]:
    """The new columns' values for one batch, and the mask of bad rows (None: none)."""
    columns = _columns(batch, job)
    if job.bad_rows == "error":
        error = _null_error(batch, job)
        if error is not None:
            raise error
        result = predictor.predict(columns, interval=job.interval, level=job.level)
        bad = None
    else:
        X = np.empty((batch.num_rows, len(job.features)), dtype=predictor.dtype)
        with np.errstate(over="ignore", invalid="ignore"):  # beyond float32: inf, a bad row
            for j, name in enumerate(job.features):
                X[:, j] = columns[name]
        result = predictor.predict(X, interval=job.interval, level=job.level, allow_nonfinite=True)
        y = result.prediction if isinstance(result, IntervalPrediction) else result
        finite = np.isfinite(y)
        bad = None if finite.all() else ~finite
    if isinstance(result, IntervalPrediction):
        prediction = np.asarray(result.prediction, dtype=predictor.dtype)
        return [prediction, result.lower, result.upper], bad
    return [result], bad


def _where(job: SparkJob, start: int, rows: int) -> str:
    from pyspark import TaskContext

    context = TaskContext.get()
    partition = context.partitionId() if context is not None else "?"
    return f"Spark partition {partition}, in the batch of its rows {start} to {start + rows - 1}"


def score_batches(
    job: SparkJob, bad_row_counter: Any, row_counter: Any, batches: Iterator[Any]
) -> Iterator[Any]:
    """mapInArrow's function: each Arrow batch with the new columns appended (the
    counters, Spark accumulators or None, add the rows nulled and the rows scored)."""
    import pyarrow as pa

    predictor = get_predictor(job)
    names = output_columns(job.column, job.interval)
    types = [pa.from_numpy_dtype(predictor.dtype)] + [pa.float64()] * (len(names) - 1)
    start = 0
    for batch in batches:
        try:
            values, bad = _score(batch, job, predictor)
        except InputError as exc:
            raise InputError(f"{_where(job, start, batch.num_rows)}: {exc}") from None
        start += batch.num_rows
        if bad is not None and bad_row_counter is not None:
            bad_row_counter.add(int(bad.sum()))
        if row_counter is not None:
            row_counter.add(batch.num_rows)
        arrays = [pa.array(v, type=t, mask=bad) for v, t in zip(values, types, strict=True)]
        yield pa.RecordBatch.from_arrays(
            [*batch.columns, *arrays], names=[*batch.schema.names, *names]
        )


# --- on the driver -----------------------------------------------------------------
def _ship(sc: Any, model_dir: Path, sha: str) -> str:
    """Zip the model (the manifest and the files it lists) under a name unique to its
    manifest and add it with ``SparkContext.addArchive``, which unpacks it on every
    executor; the name workers give ``SparkFiles.get``. (``addFile`` takes no local
    directory outside local mode.)"""
    name = f"linreg-model-{sha[:20]}.zip"
    if name not in _SHIPPED:
        root = Path(tempfile.mkdtemp(prefix="linreg-spark-"))
        atexit.register(shutil.rmtree, root, True)
        with zipfile.ZipFile(root / name, "w") as archive:
            for file in [MANIFEST_NAME, *Manifest.read(model_dir).artifacts]:
                archive.write(model_dir / file, file)
        _SHIPPED[name] = str(root / name)
    if not any(a.endswith(f"/{name}") for a in sc.listArchives):
        sc.addArchive(_SHIPPED[name])
    return name


def _check_schema(df: Any, features: list[str], new: list[str]) -> None:
    """The features are numeric columns of ``df`` and the new names are free."""
    from pyspark.sql import types as T

    fields = {f.name: f.dataType for f in df.schema.fields}
    missing = [f for f in features if f not in fields]
    if missing:
        raise InputError(
            f"the Spark DataFrame has no column(s) {missing}; it has {list(fields)} and the "
            f"model reads {features}"
        )
    for name in features:
        t = fields[name]
        if not isinstance(t, T.NumericType):
            raise InputError(
                f"column {name!r} is {t.simpleString()}; expected numbers (an integer, float, "
                "double or decimal column)"
            )
    clash = [c for c in new if c in fields]
    if clash:
        raise ValueError(f"the DataFrame already has a column {clash[0]!r}; choose another column")


def predict_spark(
    df: Any,
    model_dir: str | Path,
    column: str = "prediction",
    interval: str | None = None,
    level: float = 0.95,
    *,
    bad_rows: str = "error",
    bad_row_counter: Any = None,
    row_counter: Any = None,
    ship: bool | None = None,
    threads: int | None = 1,
) -> Any:
    """Add the model's predictions to a Spark DataFrame, lazily (``mapInArrow``).

    Parameters
    ----------
    df : pyspark.sql.DataFrame
        Holds the model's feature columns (numeric; found by name), others are carried along.
    model_dir : path of a model directory (with ``manifest.json``)
    column : name of the prediction column (FloatType or DoubleType: the model's dtype)
    interval : None, "confidence" or "prediction": also ``<column>_lower`` and
        ``<column>_upper`` (DoubleType)
    level : interval coverage
    bad_rows : "error" (a null, NaN or inf feature, or a value beyond the model's dtype,
        fails the action with the Predictor's ``InputError`` message, prefixed with the
        partition and batch) or "null" (that row's new columns are null)
    bad_row_counter : a Spark accumulator (``sc.accumulator(0)``) that "null" adds the
        nulled rows to (read it after an action; a retried task adds again)
    row_counter : an accumulator that each scored batch adds its rows to
    ship : send the directory to every executor (zipped, ``SparkContext.addArchive``;
        default: unless the master is ``local``, where every worker reads ``model_dir``)
    threads : ONNX Runtime intra-op threads in each Python worker (Spark runs one
        worker per core)

    Returns
    -------
    pyspark.sql.DataFrame
        ``df``'s columns and rows, plus the new columns.
    """
    if isinstance(model_dir, Predictor):
        raise TypeError(
            "pass the model's path, not a Predictor: a Predictor holds an onnxruntime session, "
            "which cannot be shipped to workers; each worker loads the path once"
        )
    if interval is not None and interval not in KINDS:
        raise ValueError(f"interval must be None, 'confidence' or 'prediction', got {interval!r}")
    if bad_rows not in BAD_ROWS:
        raise ValueError(f"bad_rows must be 'error' or 'null', got {bad_rows!r}")
    path = Path(model_dir).absolute()
    if not path.is_dir():
        raise ModelLoadError(f"{path}: not a model directory (predict_spark needs manifest.json)")
    predictor = Predictor.load(path, providers="cpu", threads=1)
    if interval is not None:  # a bad level, or no statistics, fails here rather than on a worker
        predictor.predict(np.zeros((1, predictor.n_features_in_)), interval=interval, level=level)
    new = output_columns(column, interval)
    _check_schema(df, predictor.features, new)
    sc = df.sparkSession.sparkContext
    sha = _manifest_sha256(path)
    shipped = not sc.master.startswith("local") if ship is None else ship
    job = SparkJob(
        model=_ship(sc, path, sha) if shipped else str(path),
        shipped=shipped,
        manifest_sha256=sha,
        features=tuple(predictor.features),
        column=column,
        interval=interval,
        level=float(level),
        bad_rows=bad_rows,
        threads=threads,
    )
    return df.mapInArrow(
        functools.partial(score_batches, job, bad_row_counter, row_counter),
        _output_schema(df, predictor, new, nullable=bad_rows == "null"),
    )


def _output_schema(df: Any, predictor: Predictor, new: list[str], nullable: bool) -> Any:
    from pyspark.sql import types as T

    kind = T.FloatType() if predictor.dtype == np.float32 else T.DoubleType()
    fields = [T.StructField(new[0], kind, nullable)]
    fields += [T.StructField(name, T.DoubleType(), nullable) for name in new[1:]]
    return T.StructType([*df.schema.fields, *fields])
