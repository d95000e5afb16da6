"""Fits on a Dask cluster: distributed full-batch gradient descent with the QR preconditioner.

The partitions of a ``dask.dataframe`` are converted to float64 arrays once and kept
on the workers (persisted). Then:

1. **The factor pass**: each partition returns its
   :class:`~training.chunked.tsqr.ChunkSummary` (its triangular factor, means, minima and
   maxima: ``(k + 1)²`` numbers whatever its row count) and a small random sample of
   rows (for the export's verification, ``sample_rows`` in all); the client combines
   the summaries (tall-skinny QR) into the preconditioner and the statistics'
   building blocks, as :mod:`training.chunked.streaming` does for the chunks of a file.
2. **Epochs**: the client broadcasts the preconditioner once, then each epoch sends
   the current parameters of its ``torch.nn.Linear``; each partition returns its
   sums (``Σ r²``, ``Uᵀr``, ``Σ r``, ``Σ |r|``, ``Σ y``: ``k + 6`` numbers), and the
   client puts the reduced gradient in ``.grad`` and steps ``torch.optim.SGD``
   (:class:`~training.solver.sgd.EagerSGD`; ``lr = 1/2``: one step is exact on the
   orthogonalized features). Workers never send rows back, so the bytes per epoch
   do not grow with the row count (``run.data["bytes_per_epoch"]`` records them:
   the pickled size of what the tasks returned).

Mini-batches are not available here (this is full-batch descent by design).

A frame with text columns, gaps or a ``formula`` is fitted on its design
(:mod:`training.chunked.dask_design`): the factors' levels come from a first pass over
every partition, the design is decided once from them, and each partition's design
matrix takes the place of its numbers above.
"""

from __future__ import annotations

import math
import pickle
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from inference.dask import local_client
from training.chunked.dask_design import design_inputs, finish_design, has_factors, raw_sample
from training.chunked.epochs import run_epochs
from training.chunked.results import finish_run, fit_options
from training.chunked.sources import SAMPLE_ROWS, Measurement, PassLog, single_threaded_torch
from training.chunked.tsqr import ChunkSummary, Factor, combine_all, summarize
from training.errors import DataError

if TYPE_CHECKING:
    from training.pipeline import TrainingRun

__all__ = ["fit_dask", "fit_dask_file", "local_client"]


# --- what runs on the workers ---------------------------------------------------------


def _partition_arrays(
    frame: Any, columns: list[str], index: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """A partition as ``(X (m, k), y (m,), index)`` float64; DataError for a bad value."""
    try:
        data = frame[columns].to_numpy(dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"partition {index}: a column is not numeric ({exc})") from exc
    bad = np.argwhere(~np.isfinite(data))
    if bad.size:
        row, col = int(bad[0][0]), int(bad[0][1])
        raise DataError(
            f"partition {index}: column {columns[col]!r}, row {row + 1} of the partition: "
            f"{data[row, col]} is not a finite number"
        )
    return np.ascontiguousarray(data[:, :-1]), np.ascontiguousarray(data[:, -1]), index


def _partition_summary(
    arrays: tuple[np.ndarray, np.ndarray, int], fit_intercept: bool, sample: int, seed: int
) -> tuple[ChunkSummary, np.ndarray, np.ndarray, np.ndarray]:
    """The partition's summary and up to ``sample`` of its rows, chosen at random (and
    their positions in the partition)."""
    X, y, index = arrays
    s = summarize(X, y, fit_intercept=fit_intercept)
    rng = np.random.default_rng([seed, index])
    take = np.sort(rng.permutation(len(y))[: min(sample, len(y))])
    return s, X[take], y[take], take


def _partition_sums(
    arrays: tuple[np.ndarray, np.ndarray, int],
    factor: Factor,
    theta: np.ndarray,
    bias: float,
    first: bool,
) -> np.ndarray:
    """``[Σ r², *Uᵀr, Σ r, Σ |r|, Σ y, max_i |u_i|², rows]`` with ``r = Uθ + b - t``."""
    X, y, _ = arrays
    U = factor.orthogonal(X)
    t = (y - factor.y_shift) / factor.y_scale
    r = U @ theta + bias - t
    max_row = float(np.max(np.sum(U**2, axis=1))) if first and len(y) else 0.0
    return np.concatenate([[r @ r], U.T @ r, [r.sum(), np.abs(r).sum(), y.sum(), max_row, len(y)]])


# --- the client ------------------------------------------------------------------------


def _gather(client: Any, futures: list[Any], desc: str, progress: bool | None) -> list[Any]:
    """The futures' results in order; with a bar of the partitions done (on a terminal,
    or when ``progress`` is True)."""
    from training.solver.sgd import progress_bar

    bar = progress_bar(len(futures), progress, desc=desc, unit="partition")
    if bar is not None:
        try:  # polled: distributed's as_completed and wait need a default client
            done = 0
            while done < len(futures):
                time.sleep(0.02)
                now = sum(f.done() for f in futures)
                bar.update(now - done)
                done = now
        finally:
            bar.close()
    return list(client.gather(futures))


def _returned_bytes(results: Sequence[Any]) -> int:
    return sum(len(pickle.dumps(r, protocol=pickle.HIGHEST_PROTOCOL)) for r in results)


#: the estimator options :func:`training.chunked.epochs.run_epochs` takes
_EPOCH_OPTIONS = (
    "lr",
    "momentum",
    "max_epochs",
    "tol",
    "early_stop",
    "fit_intercept",
    "seed",
    "dtype",
)


def _feature_columns(
    frame: Any, target: str, features: Sequence[str] | None, source_name: str
) -> list[str]:
    """The feature columns (all but the target by default), all present in ``frame``."""
    columns = [str(c) for c in frame.columns]
    wanted = [c for c in columns if c != target] if features is None else list(features)
    missing = [c for c in [*wanted, target] if c not in columns]
    if missing:
        raise DataError(f"{source_name}: missing column(s) {missing}; the frame has {columns}")
    return wanted


def _factor_pass(
    client: Any,
    arrays: list[Any],
    wanted: list[str],
    opts: dict[str, Any],
    sample_rows: int,
    log: PassLog,
) -> tuple[Factor, np.ndarray, np.ndarray, int, _Sample]:
    """Each partition's factor and sample, combined on the client: the factor, the
    sample rows (X, y), the bytes the tasks returned and where the sample's rows are."""
    quota = max(1, math.ceil(sample_rows / max(len(arrays), 1))) if sample_rows > 0 else 0
    t0 = time.perf_counter()
    firsts = _gather(
        client,
        [
            client.submit(_partition_summary, a, opts["fit_intercept"], quota, opts["seed"])
            for a in arrays
        ],
        "factor",
        opts["progress"],
    )
    summary = combine_all(s for s, *_ in firsts)
    factor_bytes = _returned_bytes([s for s, *_ in firsts])
    log.add("factor", summary.n, time.perf_counter() - t0)
    k = len(wanted)
    p = k + 1 if opts["fit_intercept"] else k
    if summary.n <= p:
        raise DataError(
            f"{summary.n} row(s) is too few: a model with {k} feature(s) has {p} parameters "
            f"and needs at least {p + 1} rows (one residual degree of freedom)"
        )
    factor = Factor(summary, wanted)
    X_sample = np.concatenate([x for _, x, _, _ in firsts]) if firsts else np.empty((0, k))
    y_sample = np.concatenate([y for _, _, y, _ in firsts]) if firsts else np.empty(0)
    keep = None
    if len(y_sample) > sample_rows:
        keep = np.sort(np.random.default_rng(opts["seed"]).permutation(len(y_sample))[:sample_rows])
        X_sample, y_sample = X_sample[keep], y_sample[keep]
    return factor, X_sample, y_sample, factor_bytes, _Sample([t for *_, t in firsts], keep)


@dataclass(frozen=True)
class _Sample:
    """Where the verification sample's rows are: each partition's ``takes``, then
    ``keep`` (None: all of them)."""

    takes: list[np.ndarray]
    keep: np.ndarray | None


def _measurer(
    client: Any,
    arrays: list[Any],
    shared: Any,
    factor: Factor,
    log: PassLog,
    per_epoch: list[int],
    progress: bool | None,
) -> Any:
    """``measure(module, first)`` for :func:`training.chunked.epochs.run_epochs`: each
    partition's loss and gradient sums at the module's parameters, reduced here."""
    n, k = factor.n, factor.k

    def measure(module: Any, first: bool) -> Measurement:
        t1 = time.perf_counter()
        theta = module.weight.detach().double().numpy().reshape(-1).copy()
        bias = float(module.bias.detach().double()) if module.bias is not None else 0.0
        results = _gather(
            client,
            [
                client.submit(_partition_sums, a, shared, theta, bias, first, pure=False)
                for a in arrays
            ],
            "epoch",
            progress,
        )
        per_epoch.append(_returned_bytes(results))
        total = np.sum(results, axis=0)
        rows = int(total[-1])
        if rows != n:
            raise DataError(f"an epoch saw {rows} rows, the factor pass {n}")
        log.add("epoch", rows, time.perf_counter() - t1)
        return Measurement(
            loss=float(total[0]) / n,
            grad_theta=2.0 * total[1 : k + 1] / n,
            grad_bias=2.0 * float(total[k + 1]) / n if factor.fit_intercept else 0.0,
            abs_sum=float(total[k + 2]),
            y_sum=float(total[k + 3]),
            max_row=float(max(r[k + 4] for r in results)),
            rows=rows,
        )

    return measure


def fit_dask(
    frame: Any,
    *,
    target: str | None = None,
    features: Sequence[str] | None = None,
    formula: str | None = None,
    missing: str = "drop",
    references: Mapping[str, Any] | None = None,
    client: Any = None,
    preset: str = "default",
    sample_rows: int = SAMPLE_ROWS,
    source_name: str = "dask",
    **overrides: Any,
) -> TrainingRun:
    """Fit on a ``dask.dataframe`` (module docstring); returns a
    :class:`~training.pipeline.TrainingRun` like :func:`training.chunked.streaming.fit_chunks`.

    ``client``: a ``distributed.Client`` (None: a local cluster of 2 worker processes,
    stopped at the end). ``overrides`` are the estimator's parameters, as for
    :func:`training.pipeline.train`; ``batch_size`` is refused (full batch only).
    ``run.data["bytes_per_epoch"]`` lists the bytes the tasks of each epoch returned.

    A ``formula`` (``"y ~ x1 + C(region) + np.log(x2)"``, as for
    :func:`training.pipeline.train`), a text, categorical or boolean column among the
    features, or ``references`` (a reference level per factor) make it a fit on the
    frame's design, its levels found over every partition
    (:mod:`training.chunked.dask_design`); ``missing`` ("drop" or "error") then says
    what a row with a gap in a used column does, and ``run.design``, ``run.anova`` and
    ``run.data["rows_dropped"]`` are set as by an in-memory fit.
    """
    if client is None:
        with local_client() as own:
            return fit_dask(
                frame,
                target=target,
                features=features,
                formula=formula,
                missing=missing,
                references=references,
                client=own,
                preset=preset,
                sample_rows=sample_rows,
                source_name=source_name,
                **overrides,
            )
    opts = fit_options(preset, overrides)
    if opts["batch_size"] is not None:
        raise ValueError(
            "batch_size is not available on Dask: the fit is distributed full-batch "
            "gradient descent (leave batch_size unset)"
        )
    started = time.perf_counter()
    if formula is not None or references or has_factors(frame, target, features):
        arrays, design, target, outputs, dropped = design_inputs(
            client, frame, formula, target, features, missing, references, source_name
        )
        inputs = _Inputs(arrays, design.column_names, target, design, outputs, dropped)
        if overrides.get("fit_intercept", inputs.design.intercept) != inputs.design.intercept:
            raise ValueError(
                "fit_intercept= contradicts the formula: write '- 1' in the formula to drop "
                "the intercept"
            )
        opts["fit_intercept"] = inputs.design.intercept
    else:
        if target is None:
            raise ValueError("fit_dask needs target='column' or a formula")
        wanted = _feature_columns(frame, target, features, source_name)
        needed = [*wanted, target]
        frames = client.compute(frame[needed].to_delayed())
        arrays = [
            client.submit(_partition_arrays, f, needed, i, pure=False) for i, f in enumerate(frames)
        ]
        inputs = _Inputs(arrays, wanted, target)
    return _fit(client, inputs, opts, preset, sample_rows, source_name, started)


@dataclass
class _Inputs:
    """What the fit runs on: futures of each partition's ``(X, y, index)``, the names of
    X's columns and the target; for a design fit, the design, each partition's
    :func:`~training.chunked.dask_design.design_partition` output (for the raw rows of
    the verification sample) and the rows dropped for a gap."""

    arrays: list[Any]
    wanted: list[str]
    target: str
    design: Any = None
    outputs: list[Any] | None = None
    dropped: int = 0


def _fit(
    client: Any,
    inputs: _Inputs,
    opts: dict[str, Any],
    preset: str,
    sample_rows: int,
    source_name: str,
    started: float,
) -> TrainingRun:
    log = PassLog()
    arrays = inputs.arrays
    factor, X_sample, y_sample, factor_bytes, sample = _factor_pass(
        client, arrays, inputs.wanted, opts, sample_rows, log
    )
    raw = None
    if inputs.outputs is not None:
        raw = raw_sample(client, inputs.outputs, sample.takes, sample.keep)
        inputs.outputs = None  # the partitions' raw rows are released
    shared = client.scatter(factor, broadcast=True)
    per_epoch: list[int] = []
    measure = _measurer(client, arrays, shared, factor, log, per_epoch, opts["progress"])
    try:
        with single_threaded_torch():
            result, _ = run_epochs(factor, measure, **{key: opts[key] for key in _EPOCH_OPTIONS})
    finally:
        client.cancel(arrays)
    run = finish_run(
        result,
        factor,
        X_sample,
        y_sample,
        features=inputs.wanted,
        target=inputs.target,
        preset=preset,
        source_name=source_name,
        opts=opts,
        started=started,
        log=log,
        engine="dask",
    )
    run.data["partitions"] = len(arrays)
    run.data["factor_bytes"] = factor_bytes
    run.data["bytes_per_epoch"] = per_epoch
    if inputs.design is not None:
        finish_design(run, inputs.design, inputs.dropped, raw)
    return run


def read_frame(path: str | Path, columns: Sequence[str], blocksize: str | int = "64MB") -> Any:
    """A ``dask.dataframe`` of ``columns`` (float64) of a CSV, TSV or Parquet file."""
    import dask.dataframe as dd

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in {".parquet", ".pq"}:
        return dd.read_parquet(str(path), columns=list(columns))
    sep = "\t" if suffix in {".tsv", ".tab"} else ","
    return dd.read_csv(
        str(path),
        sep=sep,
        usecols=list(columns),
        dtype={c: "float64" for c in columns},
        blocksize=blocksize,
        keep_default_na=False,
        na_values=[""],
    )


def fit_dask_file(
    path: str | Path,
    *,
    target: str,
    features: Sequence[str] | None = None,
    scheduler: str | None = None,
    workers: int = 2,
    blocksize: str | int = "64MB",
    preset: str = "default",
    **overrides: Any,
) -> TrainingRun:
    """:func:`fit_dask` on a file read by ``dask.dataframe`` (header checked first, as
    :func:`training.data.load_table` checks it), on ``scheduler`` or a local cluster."""
    from training.data import table_columns

    wanted = table_columns(path, target=target, features=features)
    frame = read_frame(path, [*wanted, target], blocksize)
    with local_client(scheduler, workers) as client:
        try:
            return fit_dask(
                frame,
                target=target,
                features=wanted,
                client=client,
                preset=preset,
                source_name=str(path),
                **overrides,
            )
        except (TypeError, ValueError) as exc:
            if isinstance(exc, DataError):
                raise
            raise DataError(f"{path}: cannot be read as numbers ({exc})") from exc
