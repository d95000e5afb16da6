"""The streaming job: :func:`score_file` reads, predicts and writes chunk by chunk.

The main thread predicts each chunk with one ONNX Runtime call and writes it while
the readers prepare the next ones in threads; the output (and the bad-rows file)
is written under a temporary name and renamed into place only when the whole
input was scored (:mod:`inference.io.atomic`).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from inference.batch.bad_rows import BadRow, BadRowsFile, find_bad
from inference.batch.options import JobFiles, ScoreOptions, job_files
from inference.batch.plan import Plan, plan_job
from inference.batch.progress import Progress
from inference.batch.writers import BackgroundWriter, open_writer
from inference.errors import ModelLoadError
from inference.intervals import IntervalPrediction
from inference.io import DEFAULT_MAX_LINE_BYTES, Chunk, Part, read_parts
from inference.io.arrow import arrow_mask, from_numpy, import_pyarrow
from inference.io.atomic import AtomicFile, closing_on_failure, commit_together
from inference.io.threads import Primed
from inference.manifest import Manifest
from inference.predictor import Predictor
from inference.session import Signature

__all__ = [
    "RELEASE_EVERY",
    "BatchReport",
    "score_file",
]

#: Parquet chunks between two calls to the Arrow memory pool's release_unused(): the
#: decoder's buffers would otherwise stay with the allocator (CSV blocks reuse theirs)
RELEASE_EVERY = 8


@dataclass(frozen=True)
class BatchReport:
    """What a batch job did. ``rows_read`` counts every data row (blank lines excepted),
    ``rows_written`` the rows scored, ``rows_bad`` the rows set aside."""

    input: str
    output: str
    parts: int
    rows_read: int
    rows_written: int
    rows_bad: int
    seconds: float
    bad_rows_file: str | None = None
    engine: str = "stream"

    @property
    def rows_per_second(self) -> float:
        return self.rows_written / self.seconds if self.seconds > 0 else float("inf")

    def summary(self) -> str:
        """One line, e.g. ``scored 5000000 rows in 12.3 s (406,000 rows/s)``."""
        text = (
            f"scored {self.rows_written} rows in {self.seconds:.1f} s "
            f"({self.rows_per_second:,.0f} rows/s)"
        )
        if self.rows_bad or self.bad_rows_file:
            where = f", written to {self.bad_rows_file}" if self.bad_rows_file else ""
            text += f"; {self.rows_bad} bad row(s) set aside{where}"
        return text


def _check_interval(predictor: Predictor, interval: str | None, level: float) -> None:
    if interval is None:
        return
    # Fails here, before any output, when the model has no statistics or the level
    # needs scipy.
    predictor.predict(
        np.zeros((1, predictor.n_features_in_), dtype=predictor.dtype),
        interval=interval,
        level=level,
    )


def score_file(
    model: str | Path | Predictor,
    input: str | Path,
    output: str | Path,
    *,
    id_columns: Sequence[str] | None = None,
    keep_all: bool = False,
    interval: str | None = None,
    level: float = 0.95,
    prediction_column: str = "prediction",
    bad_rows: str | Path = "error",
    chunk_rows: int | None = None,
    progress: bool | None = None,
    overwrite: bool = False,
    input_format: str | None = None,
    providers: str | Sequence[Any] = "cpu",
    threads: int | None = 1,
    workers: int | None = None,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> BatchReport:
    """Score every row of a CSV, TSV or Parquet file (or directory of parts) into ``output``.

    Parameters
    ----------
    model : model directory, ``.onnx`` file, or a loaded :class:`Predictor`
    input : file, or directory of part files (read in sorted order)
    output : ``.csv``, ``.tsv`` (optionally ``.gz``, ``.bz2``, ``.zst``) or ``.parquet`` file
    id_columns : input columns copied beside the prediction, in this order
    keep_all : copy every input column (``id_columns`` is then ignored)
    interval : None, "confidence" or "prediction": add ``<prediction_column>_lower``
        and ``_upper`` columns at coverage ``level``
    prediction_column : name of the prediction column
    bad_rows : "error" (stop at the first bad row), "skip" (drop and count them), or a
        path: drop them and write them there as CSV (columns :data:`BAD_ROWS_COLUMNS`)
    chunk_rows : rows per chunk (about; default: 2 MiB of CSV text, 65,536 Parquet rows)
    progress : a tqdm bar on stderr; None shows it only when stderr is a terminal
    overwrite : replace an existing output (else ValueError)
    input_format : "csv", "tsv" or "parquet" when the extension does not say
    providers, threads : passed to :meth:`Predictor.load` when ``model`` is a path
        (one intra-op thread by default: the other cores parse)
    workers : threads that parse and convert CSV chunks (default: the CPUs, at most 4)
    max_line_bytes : the longest CSV/TSV line read (16 MiB): longer is a LineTooLongError

    Returns
    -------
    BatchReport

    Raises
    ------
    BatchError
        A missing column (before any data is read), a bad row (``bad_rows="error"``),
        an unreadable file. No output file is left behind.
    ValueError
        A usage problem: an unknown extension, an existing output, a bad option.
    """
    started = time.perf_counter()
    options = ScoreOptions(
        id_columns=id_columns,
        keep_all=keep_all,
        interval=interval,
        level=level,
        prediction_column=prediction_column,
        bad_rows=bad_rows,
        chunk_rows=chunk_rows,
        progress=progress,
        overwrite=overwrite,
        input_format=input_format,
        providers=providers,
        threads=threads,
        workers=workers,
        max_line_bytes=max_line_bytes,
    )
    files = job_files(input, output, options)
    model, parts, plan, chunks = _start(model, files.parts, options)
    scoring = _Scoring(model, plan, interval, level, options.bad_rows_mode)
    try:
        counts = _stream(parts, scoring, files, chunks, progress, started)
    finally:
        chunks.close()
    return counts.report(files, len(parts))


def _start(
    model: str | Path | Predictor, paths: list[Path], options: ScoreOptions
) -> tuple[Predictor, list[Part], Plan, Primed[Chunk]]:
    """Plan the job, start reading its first chunk, and load the model meanwhile.

    The plan needs only the model's features and dtype. A model directory's manifest
    gives them before ONNX Runtime is imported, so the first chunk is read (in a
    thread, mostly without the GIL) while the session is built, about 30 ms of a
    short job. A bare ``.onnx`` file is loaded first. Every check that needs no data
    still comes before any row is read.
    """
    signature: Predictor | Signature | None
    if isinstance(model, Predictor):
        signature = model
    else:
        signature = _manifest_signature(Path(model))
        if signature is None:
            model = signature = Predictor.load(model, **options.load_options)
    if isinstance(model, Predictor):
        _check_interval(model, options.interval, options.level)
    parts, plan = plan_job(paths, signature, options)
    workers = options.workers if options.workers is not None else min(os.cpu_count() or 1, 4)
    chunks = Primed(read_parts(parts, plan, options.chunk_rows, workers))
    try:
        if not isinstance(model, Predictor):
            model = Predictor.load(model, **options.load_options)
            if list(model.features) != plan.features or model.dtype != plan.dtype:
                raise ModelLoadError(
                    f"{model.source}: the model reads {model.features} as {model.dtype}, its "
                    f"manifest says {plan.features} as {plan.dtype}"
                )
            _check_interval(model, options.interval, options.level)
    except BaseException:
        chunks.close()
        raise
    return model, parts, plan, chunks


def _manifest_signature(path: Path) -> Signature | None:
    """A model directory's features, target and dtype from its manifest (no ONNX
    Runtime); None for anything else (:meth:`Predictor.load` then reports it)."""
    if not path.is_dir():
        return None
    try:
        manifest = Manifest.read(path)
        return Signature(list(manifest.features), manifest.target, np.dtype(manifest.dtype))
    except (ModelLoadError, TypeError, ValueError):
        return None


@dataclass(frozen=True)
class _Scoring:
    """What scoring a chunk needs: the model, the plan and the options."""

    predictor: Predictor
    plan: Plan
    interval: str | None
    level: float
    mode: str  # bad rows: "error", "skip" or "file"


@dataclass
class _Counts:
    read: int = 0
    written: int = 0
    bad: int = 0
    bytes: int = 0
    chunks: int = 0
    seconds: float = 0.0  # the job's, measured once: the bar's final rate and the report's

    def report(self, files: JobFiles, parts: int) -> BatchReport:
        return BatchReport(
            input=str(files.src),
            output=str(files.dest),
            parts=parts,
            rows_read=self.read,
            rows_written=self.written,
            rows_bad=self.bad,
            seconds=self.seconds,
            bad_rows_file=str(files.bad_path) if files.bad_path is not None else None,
        )


def _progress(parts: list[Part], progress: bool | None, started: float) -> Progress:
    """The bar: rows known from Parquet metadata, estimated from the bytes of plain CSV;
    its rate counts from the job's start, as the report's."""
    csv_input = parts[0].fmt.kind == "csv"
    uncompressed = all(p.fmt.compression is None for p in parts)
    return Progress(
        progress,
        total_rows=None if csv_input else sum(p.rows or 0 for p in parts),
        total_bytes=sum(p.size for p in parts) if csv_input and uncompressed else None,
        started=started,
    )


def _stream(
    parts: list[Part],
    scoring: _Scoring,
    files: JobFiles,
    chunks: Primed[Chunk],
    progress: bool | None,
    started: float,
) -> _Counts:
    """Score every chunk into temporaries beside the output (and the bad-rows file),
    then rename them into place; on any exception they are removed (and the caller
    closes ``chunks``, which stops the reading)."""
    pa = import_pyarrow()
    bar = _progress(parts, progress, started)
    counts = _Counts()
    parquet_input = parts[0].fmt.kind == "parquet"
    pool = pa.default_memory_pool()
    try:
        with contextlib.ExitStack() as stack:
            out = stack.enter_context(AtomicFile(files.dest))
            bad_out = (
                stack.enter_context(AtomicFile(files.bad_path))
                if files.bad_path is not None
                else None
            )
            writer = stack.enter_context(
                closing_on_failure(
                    BackgroundWriter(open_writer(out.tmp, scoring.plan.out_schema, files.out_fmt))
                )
            )
            bad_writer = (
                stack.enter_context(closing_on_failure(BadRowsFile(bad_out.tmp)))
                if bad_out is not None
                else None
            )
            for chunk in chunks:
                batch, n_read, n_bad, bad = _score_chunk(chunk, scoring, pa)
                if bad_writer is not None and bad:
                    bad_writer.write(bad)
                writer.write(batch)
                counts.read += n_read
                counts.bad += n_bad
                counts.written += batch.num_rows
                counts.bytes += chunk.nbytes
                bar.update(n_read, counts.read, counts.bytes)
                counts.chunks += 1
                if parquet_input and counts.chunks % RELEASE_EVERY == 0:
                    pool.release_unused()
            writer.close()
            if bad_writer is not None:
                bad_writer.close()
            # The bad rows first: the output appears last, the sign that the job finished.
            commit_together([bad_out, out] if bad_out is not None else [out])
        counts.seconds = time.perf_counter() - started
        bar.close(counts.written, counts.seconds)
    finally:
        bar.close(counts.read)  # after a failure; a no-op once closed
    return counts


def _score_chunk(chunk: Chunk, scoring: _Scoring, pa: Any) -> tuple[Any, int, int, list[BadRow]]:
    """Predict one chunk: (output batch, rows read, bad rows, bad rows' details)."""
    plan = scoring.plan
    result = scoring.predictor.predict(
        chunk.X, interval=scoring.interval, level=scoring.level, allow_nonfinite=True
    )
    y = result.prediction if isinstance(result, IntervalPrediction) else result
    ok = np.isfinite(y)
    bad: list[BadRow] = []
    n_read = chunk.n + len(chunk.rejected())
    keep = None
    if not ok.all() or chunk.rejected():
        bad, blank = find_bad(chunk, ok, plan.dtype)
        if bad and scoring.mode == "error":
            raise bad[0].error()
        n_read -= int(blank.sum())
        keep = ok
    columns = list(chunk.kept) + [np.asarray(y, dtype=plan.dtype)]
    if isinstance(result, IntervalPrediction):
        columns += [result.lower, result.upper]
    if keep is not None:
        mask = arrow_mask(keep)
        columns = [
            c.filter(mask) if isinstance(c, pa.Array) else np.asarray(c)[keep] for c in columns
        ]
    arrays = [
        c if isinstance(c, pa.Array) else from_numpy(c, f.type)
        for c, f in zip(columns, plan.out_schema, strict=True)
    ]
    arrays = [
        a if a.type == f.type else a.cast(f.type)
        for a, f in zip(arrays, plan.out_schema, strict=True)
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=plan.out_schema), n_read, len(bad), bad
