"""Dask adapter: predictions as a lazy column of a Dask DataFrame, one model per worker process.

A :class:`~inference.Predictor` holds an ONNX Runtime session, and a session cannot
be pickled. So the task graph carries only the model's *path*: each worker process
loads the model the first time one of its tasks needs it and keeps it in a
module-level cache (a dict guarded by a lock, keyed by the resolved path, providers
and threads), which every later partition and job on that worker reuses. The path
must be readable on every worker (a shared file system, or the same path on each
machine).

>>> import dask.dataframe as dd
>>> from inference.dask import predict_dask
>>> ddf = dd.read_parquet("features/")
>>> scored = predict_dask(ddf, "models/plant", column="richness")   # lazy
>>> scored.to_parquet("scored/")

``score_file_dask`` runs the same job as :func:`inference.batch.score_file` on a
cluster (``scheduler="tcp://host:8786"``) or on a local cluster of worker processes:
Dask reads and scores the partitions, and this process writes them, in order, to
one output file, atomically. Needs the ``dask`` extra (``dask[dataframe]`` and
``distributed``).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from inference.errors import BatchError, InputError, ModelLoadError
from inference.intervals import IntervalPrediction
from inference.io.atomic import AtomicFile, closing_on_failure
from inference.predictor import Predictor

__all__ = [
    "local_client",
    "clear_cache",
    "get_predictor",
    "load_count",
    "predict_dask",
    "score_file_dask",
]

_LOCK = threading.Lock()
_CACHE: dict[tuple[str, str, int | None], Predictor] = {}
_LOADS: Counter[str] = Counter()


def _key(model: str | Path, providers: str, threads: int | None) -> tuple[str, str, int | None]:
    if not isinstance(providers, str):
        raise TypeError(
            f"providers={providers!r}: the Dask adapter takes 'auto', 'cpu' or 'cuda' (a name "
            "that every worker can resolve)"
        )
    return str(Path(model).resolve()), providers, threads


def get_predictor(
    model: str | Path, *, providers: str = "cpu", threads: int | None = 1
) -> Predictor:
    """The Predictor for ``model`` in this process: loaded once, then reused.

    Thread-safe: two threads asking at once load it once.
    """
    key = _key(model, providers, threads)
    with _LOCK:
        predictor = _CACHE.get(key)
        if predictor is None:
            predictor = Predictor.load(model, providers=providers, threads=threads)
            _CACHE[key] = predictor
            _LOADS[key[0]] += 1
    return predictor


def load_count(model: str | Path | None = None) -> int:
    """How many times this process loaded ``model`` (None: any model) through the cache.

    On a cluster: ``client.run(load_count, path)`` gives the count of every worker.
    """
    with _LOCK:
        if model is None:
            return sum(_LOADS.values())
        return _LOADS[str(Path(model).resolve())]


def clear_cache() -> None:
    """Forget the cached models (and their load counts) of this process."""
    with _LOCK:
        _CACHE.clear()
        _LOADS.clear()


def _output_columns(column: str, interval: str | None) -> list[str]:
    return [column] + ([f"{column}_lower", f"{column}_upper"] if interval else [])


def _predict_partition(
    df: Any,
    model: str,
    features: list[str],
    column: str,
    interval: str | None,
    level: float,
    providers: str,
    threads: int | None,
    allow_nonfinite: bool,
    partition_info: dict[str, Any] | None = None,
) -> Any:
    """Runs on a worker: add the prediction column(s) to one pandas partition."""
    predictor = get_predictor(model, providers=providers, threads=threads)
    try:
        result = predictor.predict(
            df[features], interval=interval, level=level, allow_nonfinite=allow_nonfinite
        )
    except InputError as exc:
        number = partition_info.get("number") if partition_info else None
        raise InputError(f"partition {number}: {exc}") from None
    out = df.copy(deep=False)
    if not isinstance(result, IntervalPrediction):
        out[column] = np.asarray(result, dtype=predictor.dtype)
    else:
        out[column] = np.asarray(result.prediction, dtype=predictor.dtype)
        out[f"{column}_lower"] = result.lower
        out[f"{column}_upper"] = result.upper
    return out


def predict_dask(
    ddf: Any,
    model: str | Path,
    *,
    column: str = "prediction",
    interval: str | None = None,
    level: float = 0.95,
    providers: str = "cpu",
    threads: int | None = 1,
    allow_nonfinite: bool = False,
) -> Any:
    """Add the model's predictions to a Dask DataFrame, lazily (``map_partitions``).

    Parameters
    ----------
    ddf : dask.dataframe.DataFrame
        Holds the model's feature columns (others are carried along).
    model : path of a model directory or ``.onnx`` file, readable on every worker
    column : name of the prediction column (the model's dtype)
    interval : None, "confidence" or "prediction": also ``<column>_lower`` and
        ``<column>_upper`` (float64)
    providers, threads : the session each worker process builds (once)
    allow_nonfinite : score NaN and inf instead of raising InputError

    Returns
    -------
    dask.dataframe.DataFrame
        ``ddf``'s columns and partitions (index and row order kept), plus the new ones.

    The model is also loaded here, once, to check the columns before anything runs.
    """
    if isinstance(model, Predictor):
        raise TypeError(
            "pass the model's path, not a Predictor: a Predictor holds an onnxruntime session, "
            "which cannot be shipped to workers; each worker loads the path once"
        )
    predictor = get_predictor(model, providers=providers, threads=threads)
    features = list(predictor.features)
    names = [str(c) for c in ddf.columns]
    missing = [f for f in features if f not in names]
    if missing:
        raise InputError(
            f"the Dask DataFrame has no column(s) {missing}; it has {names} and the model "
            f"reads {features}"
        )
    new = _output_columns(column, interval)
    clash = [c for c in new if c in names]
    if clash:
        raise ValueError(f"the DataFrame already has a column {clash[0]!r}; choose another column")
    if interval is not None:  # the probe row may be outside a design's domain (log(x - 2))
        predictor.predict(_one_row(predictor), interval=interval, level=level, allow_nonfinite=True)
    meta = ddf._meta.copy(deep=False)
    meta[column] = np.empty(0, dtype=predictor.dtype)
    for extra in new[1:]:
        meta[extra] = np.empty(0, dtype=np.float64)
    return ddf.map_partitions(
        _predict_partition,
        str(model),
        features,
        column,
        interval,
        level,
        providers,
        threads,
        allow_nonfinite,
        meta=meta,
    )


def _one_row(predictor: Predictor) -> Any:
    """A row the model can score: zeros, or for a design model ones and each factor's
    first level, by name (to check that intervals can be given before anything runs)."""
    if predictor.design is None:
        return np.zeros((1, predictor.n_features_in_), dtype=predictor.dtype)
    return {i.name: [i.levels[0] if i.kind == "factor" else 1.0] for i in predictor.design.inputs}


def _read(parts: list[Any], plan: Any, blocksize: str | int) -> Any:
    import dask.dataframe as dd

    fmt = parts[0].fmt
    paths = [str(p.path) for p in parts]
    if fmt.kind == "parquet":
        return dd.read_parquet(paths, columns=plan.needed)
    # a factor's text as read (an empty field is a missing value: NaN); the model
    # compares it with its levels by its own rules (inference.design)
    dtype: dict[str, Any] = {c: "str" for c in plan.kept if c not in plan.features}
    dtype.update({f: "str" for f in plan.factors})
    dtype.update({f: "float64" for f in plan.features})
    compression = {"gzip": "gzip", "bz2": "bz2", "zstd": "zstd"}.get(fmt.compression or "")
    return dd.read_csv(
        paths,
        sep=fmt.delimiter,
        usecols=plan.needed,
        dtype=dtype,
        blocksize=None if compression else blocksize,
        compression=compression or None,
        keep_default_na=False,
        na_values=[""],
    )


def score_file_dask(
    model: str | Path,
    input: str | Path,
    output: str | Path,
    *,
    scheduler: str | None = None,
    workers: int = 2,
    id_columns: Sequence[str] | None = None,
    keep_all: bool = False,
    interval: str | None = None,
    level: float = 0.95,
    prediction_column: str = "prediction",
    overwrite: bool = False,
    input_format: str | None = None,
    providers: str = "cpu",
    threads: int | None = 1,
    progress: bool | None = None,
    blocksize: str | int = "64MB",
    in_flight: int | None = None,
) -> Any:
    """:func:`inference.batch.score_file` on a Dask cluster; returns a ``BatchReport``.

    Parameters
    ----------
    scheduler : address of a running scheduler ("tcp://host:8786"); None starts a
        local cluster of ``workers`` processes (one thread each) on 127.0.0.1 and
        stops it at the end
    blocksize : bytes of CSV per partition (Parquet: one partition per row group or file)
    in_flight : partitions computed ahead of the writer (default: twice the workers)

    The other parameters are :func:`~inference.batch.score_file`'s. A bad value stops
    the job (there is no ``bad_rows`` here) with an error naming the partition; the
    streaming engine names the line. Kept CSV columns that are also features come
    back as numbers, not as the original text.
    """
    from inference import batch

    started = time.perf_counter()
    options = batch.ScoreOptions(
        id_columns=id_columns,
        keep_all=keep_all,
        interval=interval,
        level=level,
        prediction_column=prediction_column,
        overwrite=overwrite,
        input_format=input_format,
        providers=providers,
        threads=threads,
        progress=progress,
    )
    files = batch.job_files(input, output, options)
    predictor = get_predictor(model, **options.load_options)
    parts, plan = batch.plan_job(files.parts, predictor, options)
    import pyarrow as pa

    ddf = _read(parts, plan, blocksize)
    scored = predict_dask(
        ddf,
        model,
        column=prediction_column,
        interval=interval,
        level=level,
        providers=providers,
        threads=threads,
    )[plan.out_names]
    schema = pa.Schema.from_pandas(scored._meta, preserve_index=False)
    with local_client(scheduler, workers) as client:
        depth = in_flight or 2 * (len(client.scheduler_info().get("workers", {})) or workers)
        rows = _write_all(client, scored, schema, files, progress, depth)
    return batch.BatchReport(
        input=str(files.src),
        output=str(files.dest),
        parts=len(parts),
        rows_read=rows,
        rows_written=rows,
        rows_bad=0,
        seconds=time.perf_counter() - started,
        engine="dask",
    )


@contextlib.contextmanager
def local_client(scheduler: str | None = None, workers: int = 2) -> Iterator[Any]:
    """A client of ``scheduler``, or of a local cluster of ``workers`` processes (one
    thread each, on 127.0.0.1) stopped at the end."""
    from distributed import Client, LocalCluster

    cluster = None
    if scheduler is None:
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        )
    try:
        client = Client(cluster if cluster is not None else scheduler, set_as_default=False)
        try:
            yield client
        finally:
            client.close()
    finally:
        if cluster is not None:
            cluster.close()


def _write_all(
    client: Any, scored: Any, schema: Any, files: Any, progress: bool | None, depth: int
) -> int:
    """Compute the partitions, ``depth`` ahead, and write them in order to a temporary
    renamed to the output at the end (``files``: the job's
    :class:`~inference.batch.JobFiles`); returns the rows written."""
    import pyarrow as pa

    from inference import batch

    bar = batch.Progress(progress, total_rows=None, total_bytes=None)
    rows = 0
    pending: deque[Any] = deque()
    try:
        with contextlib.ExitStack() as stack:
            out = stack.enter_context(AtomicFile(files.dest))
            writer = stack.enter_context(
                closing_on_failure(batch.open_writer(out.tmp, schema, files.out_fmt))
            )
            src = files.src
            try:
                for index, part in enumerate(list(scored.to_delayed())):
                    pending.append((index, client.compute(part)))
                    if len(pending) >= depth:
                        rows += _write_next(pending, writer, schema, pa, bar, rows, src)
                while pending:
                    rows += _write_next(pending, writer, schema, pa, bar, rows, src)
            except BaseException:
                for _, future in pending:
                    future.cancel()
                raise
            writer.close()
            out.commit()
    finally:
        bar.close(rows)
    return rows


def _write_next(
    pending: deque[Any], writer: Any, schema: Any, pa: Any, bar: Any, rows: int, src: Path
) -> int:
    index, future = pending.popleft()
    try:
        frame = future.result()
    except (BatchError, InputError, ModelLoadError):
        raise
    except Exception as exc:  # pandas' parse errors and the like, raised on a worker
        raise BatchError(f"partition {index}: {type(exc).__name__}: {exc}", file=str(src)) from exc
    table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
    for record_batch in table.to_batches():
        writer.write(record_batch)
    bar.update(len(frame), rows + len(frame), 0)
    return len(frame)
