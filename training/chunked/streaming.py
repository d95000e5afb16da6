"""Fits larger than memory: the preconditioned SGD fit over chunks of rows.

Memory is bounded by the chunk size, not the data. The data are read in passes:

1. **The factor pass** summarizes each chunk by a triangular factor and combines
   them (tall-skinny QR, :mod:`training.chunked.tsqr`): the preconditioner of the
   in-memory fit (scaled, centered, orthogonalized features ``U = (X/d - m) W``,
   on which the MSE loss has Hessian ``2 I``) and the statistics' building blocks.
   It also keeps a uniform random sample of rows (``sample_rows``, by random keys),
   which the export verifies the model on and draws its plots from.
2. **SGD epochs** on ``torch.nn.Linear`` with ``torch.optim.SGD``. Each epoch first
   streams the chunks to measure the full-data loss and gradient (the gradient of
   each chunk's share of the MSE accumulates in ``.grad``), which the history, the
   divergence guard and the convergence test read, as in :func:`training.solver.sgd.run_sgd`;
   then full batch takes one step (``lr = 1/2``, exact on ``U``) and mini-batches
   (``batch_size``) stream the chunks again with shuffled batches within each chunk
   (``lr = 1 / max_i |u_i|²``, measured in the first pass).

A full-batch fit therefore reads the data three times: factor, step, and the
measurement that finds it converged (and gives the residual sum of squares at the
final parameters). The statistics come from the factor and that residual sum
(:func:`training.chunked.tsqr.statistics`): the same definitions and, to rounding, the same
values as the in-memory fit's; the in-memory fit adds extended-precision refinement
steps, which a stream would pay one more pass each for, so a streamed fit is as
accurate as the QR factor (``κ ε`` relative), not beyond.

Sources of chunks live in :mod:`training.chunked.sources`; :func:`fit_file` and
:func:`fit_arrays` return a :class:`~training.pipeline.TrainingRun` ready to print
and export (:mod:`training.chunked.results`).
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from training.chunked.epochs import measure_torch, minibatch_pass, run_epochs
from training.chunked.results import finish_run, fit_options
from training.chunked.sources import (
    DEFAULT_CHUNK_ROWS,
    SAMPLE_ROWS,
    CachedChunks,
    ChunkSource,
    Measurement,
    PassLog,
    Sample,
    array_chunks,
    file_chunks,
    single_threaded_blas,
    single_threaded_torch,
    timed_pass,
)
from training.chunked.tsqr import ChunkSummary, Factor, combine, summarize
from training.errors import DataError

if TYPE_CHECKING:
    import torch

    from training.pipeline import TrainingRun

__all__ = [
    "DEFAULT_CHUNK_ROWS",
    "SAMPLE_ROWS",
    "CachedChunks",
    "ChunkSource",
    "array_chunks",
    "file_chunks",
    "fit_arrays",
    "fit_chunks",
    "fit_file",
]

#: threads factoring chunks in the factor pass (half the CPUs: the reader has its own)
FACTOR_THREADS = max(1, min((os.cpu_count() or 1) // 2, 4))


# --- the factor pass --------------------------------------------------------------------


def factor_pass(
    source: ChunkSource,
    *,
    fit_intercept: bool,
    features: Sequence[str],
    sample_rows: int = SAMPLE_ROWS,
    seed: int = 0,
    progress: bool | None = None,
    log: PassLog | None = None,
    total: int | None = None,
) -> tuple[Factor, np.ndarray, np.ndarray]:
    """The factor of all chunks and a sample of rows: ``(factor, X_sample, y_sample)``.

    The chunks' QR factorizations run on :data:`FACTOR_THREADS` threads (LAPACK
    releases the GIL), a few chunks in flight at most, while the reader reads ahead.
    """
    state: dict[str, ChunkSummary] = {}
    sample = Sample(sample_rows, seed)
    k = len(features)
    pool = ThreadPoolExecutor(max_workers=FACTOR_THREADS, thread_name_prefix="linreg-qr")
    pending: deque[Future[ChunkSummary]] = deque()

    def fold(s: ChunkSummary) -> None:
        state["all"] = combine(state["all"], s) if "all" in state else s

    def add(X: np.ndarray, y: np.ndarray) -> None:
        if X.shape[1] != k:
            raise DataError(f"a chunk has {X.shape[1]} feature columns, expected {k}")
        pending.append(pool.submit(summarize, X, y, fit_intercept=fit_intercept))
        sample.add(X, y)
        while len(pending) > 2 * FACTOR_THREADS:
            fold(pending.popleft().result())

    try:
        timed_pass(source, "factor", log or PassLog(), progress, total, add)
        while pending:
            fold(pending.popleft().result())
    finally:
        for fut in pending:
            fut.cancel()
        pool.shutdown(wait=True)
    if "all" not in state or state["all"].n == 0:
        raise DataError("the data have no rows")
    n = state["all"].n
    p = k + 1 if fit_intercept else k
    if n <= p:
        raise DataError(
            f"{n} row(s) is too few: a model with {k} feature(s) has {p} parameters and "
            f"needs at least {p + 1} rows (one residual degree of freedom)"
        )
    assert sample.X is not None
    return Factor(state["all"], features), sample.X, sample.y


def fit_chunks(
    source: ChunkSource,
    *,
    features: Sequence[str],
    target: str,
    preset: str = "default",
    source_name: str = "chunks",
    sample_rows: int = SAMPLE_ROWS,
    total_rows: int | None = None,
    engine: str = "streaming",
    **overrides: Any,
) -> TrainingRun:
    """Fit on a chunk source (module docstring) and return a :class:`TrainingRun`.

    ``overrides`` are :class:`~training.solver.estimator.LinearRegressionSGD` parameters (``lr``,
    ``max_epochs``, ``tol``, ``early_stop``, ``batch_size``, ``momentum``,
    ``fit_intercept``, ``seed``, ``dtype``, ``progress``). ``X_train`` and ``y_train``
    of the run are a uniform sample of ``sample_rows`` rows; the statistics and the
    training metrics are of all rows. ``run.data["passes"]`` lists the passes
    (name, rows, seconds).
    """

    opts = fit_options(preset, overrides)
    with single_threaded_blas():
        return _fit_chunks(
            source,
            features=features,
            target=target,
            preset=preset,
            source_name=source_name,
            sample_rows=sample_rows,
            total_rows=total_rows,
            engine=engine,
            opts=opts,
        )


def _fit_chunks(
    source: ChunkSource,
    *,
    features: Sequence[str],
    target: str,
    preset: str,
    source_name: str,
    sample_rows: int,
    total_rows: int | None,
    engine: str,
    opts: dict[str, Any],
) -> TrainingRun:
    started = time.perf_counter()
    log = PassLog()
    progress = opts["progress"]
    fit_intercept = opts["fit_intercept"]
    factor, X_sample, y_sample = factor_pass(
        source,
        fit_intercept=fit_intercept,
        features=list(features),
        sample_rows=sample_rows,
        seed=opts["seed"],
        progress=progress,
        log=log,
        total=total_rows,
    )
    # torch is imported only now, after the first pass (the CLI imports it, then
    # torch._dynamo, scipy and scikit-learn, in a thread meanwhile: the first epoch's
    # pass overlaps the rest); the time waited is not the fit's
    waiting = time.perf_counter()
    from training.solver.sgd import TORCH_DTYPES

    started += time.perf_counter() - waiting
    tdtype = TORCH_DTYPES[opts["dtype"]]
    batch_size = opts["batch_size"]
    minibatch = batch_size is not None and batch_size < factor.n
    gen = _generator(opts["seed"])

    def measure(module: Any, first: bool) -> Measurement:
        return measure_torch(source, factor, module, tdtype, log, progress, first and minibatch)

    def step_pass(module: Any, optimizer: Any) -> None:
        minibatch_pass(source, factor, module, optimizer, tdtype, batch_size, gen, log, progress)

    with single_threaded_torch():
        result, _ = run_epochs(
            factor,
            measure,
            lr=opts["lr"],
            momentum=opts["momentum"],
            max_epochs=opts["max_epochs"],
            tol=opts["tol"],
            early_stop=opts["early_stop"],
            fit_intercept=fit_intercept,
            seed=opts["seed"],
            dtype=opts["dtype"],
            step_pass=step_pass,
            minibatch=minibatch,
        )
    return finish_run(
        result,
        factor,
        X_sample,
        y_sample,
        features=features,
        target=target,
        preset=preset,
        source_name=source_name,
        opts=opts,
        started=started,
        log=log,
        engine=engine,
    )


def _generator(seed: int) -> torch.Generator:
    import torch

    return torch.Generator().manual_seed(seed)


def fit_arrays(
    X: np.ndarray,
    y: np.ndarray,
    *,
    features: Sequence[str] | None = None,
    target: str = "y",
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    preset: str = "default",
    **overrides: Any,
) -> TrainingRun:
    """:func:`fit_chunks` over arrays in memory (X (n, k), y (n,)), ``chunk_rows`` at a time:
    the extra memory of the fit is that of one chunk."""
    from training.data import validate_xy

    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 1:
        X = X.reshape(-1, 1)
    y = np.asarray(y, dtype=np.float64)
    validate_xy(X, y, source="fit", fit_intercept=overrides.get("fit_intercept", True))
    names = list(features) if features is not None else [f"x{i}" for i in range(X.shape[1])]
    return fit_chunks(
        array_chunks(X, y, chunk_rows),
        features=names,
        target=target,
        preset=preset,
        source_name="in-memory",
        total_rows=X.shape[0],
        engine="chunked",
        **overrides,
    )


def fit_file(
    path: str | Path,
    *,
    target: str,
    features: Sequence[str] | None = None,
    chunk_rows: int | None = DEFAULT_CHUNK_ROWS,
    preset: str = "default",
    in_memory: bool = False,
    max_line_bytes: int | None = None,
    **overrides: Any,
) -> TrainingRun:
    """Fit on a CSV, TSV or Parquet file: :func:`fit_chunks` over its chunks.

    ``in_memory=False`` reads the file again on each pass (memory bounded by the chunk
    size); ``True`` reads it once and keeps its chunks in memory (:class:`CachedChunks`).
    ``max_line_bytes``: the longest CSV or TSV line taken (None: the readers' default).
    """
    source, wanted = file_chunks(
        path, target=target, features=features, chunk_rows=chunk_rows, max_line_bytes=max_line_bytes
    )
    return fit_chunks(
        CachedChunks(source) if in_memory else source,
        features=wanted,
        target=target,
        preset=preset,
        source_name=str(path),
        engine="chunked" if in_memory else "streaming",
        **overrides,
    )
