"""Chunks of rows for the fits that do not hold their data: sources, passes, a sample.

A source is a callable returning one pass's iterator of ``(X (m, k), y (m,))``
float64 chunks: :func:`array_chunks` (arrays in memory), :func:`file_chunks` (a
CSV, TSV or Parquet file read by the batch scoring reader, bad cells reported by
file, line, row and column) and :class:`CachedChunks` (the first pass kept).
:func:`timed_pass` runs one pass with a progress bar and logs its rows and time;
:class:`Sample` keeps a uniform random sample of rows; :func:`single_threaded_blas`
and :func:`single_threaded_torch` keep chunk maths off the reader's cores.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "DEFAULT_CHUNK_ROWS",
    "SAMPLE_ROWS",
    "CachedChunks",
    "ChunkSource",
    "Measurement",
    "PassLog",
    "Sample",
    "array_chunks",
    "file_chunks",
    "single_threaded_blas",
    "single_threaded_torch",
    "timed_pass",
]

#: rows per chunk by default: 8,192 rows of 16 float64 features are 1 MiB (the reader
#: keeps a few chunks in flight per thread, so this bounds the memory)
DEFAULT_CHUNK_ROWS = 8_192
#: rows kept (a uniform random sample) for the export's verification and plots
SAMPLE_ROWS = 10_000
#: one pass over the data: ``source()`` iterates ``(X (m, k), y (m,))`` float64 chunks
ChunkSource = Callable[[], Iterable[tuple[np.ndarray, np.ndarray]]]


@dataclass
class Measurement:
    """One measuring pass at fixed parameters, in the standardized target's units.

    loss : Σ r² / n with ``r = U θ + b - t``; grad_theta (k,), grad_bias: the MSE
    gradient; abs_sum : Σ |r|; y_sum : Σ y (raw); max_row : max_i |u_i|² (+1 with an
    intercept); rows : n.
    """

    loss: float
    grad_theta: np.ndarray
    grad_bias: float
    abs_sum: float
    y_sum: float
    max_row: float
    rows: int


@dataclass
class PassLog:
    """Passes over the data and their rows, for the rows-per-second line."""

    passes: list[tuple[str, int, float]] = field(default_factory=list)

    def add(self, name: str, rows: int, seconds: float) -> None:
        self.passes.append((name, rows, seconds))

    @property
    def rows(self) -> int:
        return sum(r for _, r, _ in self.passes)

    @property
    def seconds(self) -> float:
        return sum(s for _, _, s in self.passes)


# --- sources ----------------------------------------------------------------------------


def array_chunks(X: np.ndarray, y: np.ndarray, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> ChunkSource:
    """Chunks of arrays in memory (views): X (n, k), y (n,)."""
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if X.ndim == 1:
        X = X.reshape(-1, 1)

    def one_pass() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for lo in range(0, X.shape[0], chunk_rows):
            yield X[lo : lo + chunk_rows], y[lo : lo + chunk_rows]

    return one_pass


def file_chunks(
    path: str | Path,
    *,
    target: str,
    features: Sequence[str] | None = None,
    chunk_rows: int | None = DEFAULT_CHUNK_ROWS,
    max_line_bytes: int | None = None,
) -> tuple[ChunkSource, list[str]]:
    """Chunks of a CSV, TSV or Parquet file and the feature names; each pass reads
    the file again. Bad data raise :class:`~training.data.DataError` as
    :func:`training.data.load_table` words them (file, column, row, line); so does a
    line longer than ``max_line_bytes`` (None: the readers' default)."""
    from training.data import iter_table_chunks, table_columns

    limit = {} if max_line_bytes is None else {"max_line_bytes": max_line_bytes}
    wanted = table_columns(path, target=target, features=features, **limit)

    def one_pass() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        return iter_table_chunks(
            path, target=target, features=wanted, chunk_rows=chunk_rows, **limit
        )

    return one_pass, wanted


class CachedChunks:
    """A chunk source that keeps the chunks of its first pass in memory and serves the
    later passes from there: the data are read (and parsed) once, held once, in
    chunks, never copied into one array."""

    def __init__(self, source: ChunkSource) -> None:
        self.source = source
        self.chunks: list[tuple[np.ndarray, np.ndarray]] | None = None

    def __call__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        if self.chunks is not None:
            return iter(self.chunks)
        return self._first()

    def _first(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        kept: list[tuple[np.ndarray, np.ndarray]] = []
        for X, y in self.source():
            # own compact copies: a chunk may be a view of a larger block
            pair = (np.ascontiguousarray(X), np.ascontiguousarray(y))
            kept.append(pair)
            yield pair
        self.chunks = kept


# --- progress ---------------------------------------------------------------------------


def _bar(desc: str, total: int | None, progress: bool | None) -> Any:
    show = sys.stderr.isatty() if progress is None else progress
    if not show:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=" rows", unit_scale=True, leave=False)


def timed_pass(
    source: ChunkSource,
    name: str,
    log: PassLog,
    progress: bool | None,
    total: int | None,
    fn: Callable[[np.ndarray, np.ndarray], None],
) -> int:
    """Run ``fn`` on every chunk of one pass, with a bar; returns the rows seen."""
    started = time.perf_counter()
    bar = _bar(name, total, progress)
    rows = 0
    try:
        for X, y in source():
            fn(X, y)
            rows += len(y)
            if bar is not None:
                bar.update(len(y))
    finally:
        if bar is not None:
            bar.close()
    log.add(name, rows, time.perf_counter() - started)
    return rows


class Sample:
    """A uniform random sample of ``size`` rows: the rows with the smallest random keys,
    in the order they came. ``X`` (m, k) and ``y`` (m,), m = min(size, rows seen)."""

    def __init__(self, size: int, seed: int) -> None:
        self.size = size
        self.rng = np.random.default_rng(seed)
        self._keys: list[np.ndarray] = []
        self._X: list[np.ndarray] = []
        self._y: list[np.ndarray] = []
        self._held = 0
        # Every key below the size-th smallest so far is a candidate; this bound is at
        # least that key (it is refreshed when the candidates are pruned).
        self._bound = np.inf
        self._k: int | None = None

    def add(self, X: np.ndarray, y: np.ndarray) -> None:
        keys = self.rng.random(len(y))
        if self._k is None:
            self._k = X.shape[1]
        if self.size <= 0:
            return
        # After the first chunks only a few rows per chunk fall below the bound: they
        # are kept aside and pruned now and then, not merged chunk by chunk.
        take = np.flatnonzero(keys < self._bound)
        if take.size == 0:
            return
        self._keys.append(keys[take])
        self._X.append(X[take])
        self._y.append(y[take])
        self._held += take.size
        if self._held >= 2 * self.size:
            self._prune()

    def _prune(self) -> None:
        if len(self._keys) <= 1 and self._held <= self.size:
            return
        keys = np.concatenate(self._keys)
        X, y = np.concatenate(self._X), np.concatenate(self._y)
        if len(keys) > self.size:
            keep = np.argpartition(keys, self.size - 1)[: self.size]
            keep.sort()  # the order the rows came in
            keys, X, y = keys[keep], X[keep], y[keep]
            self._bound = float(keys.max())
        self._keys, self._X, self._y, self._held = [keys], [X], [y], len(keys)

    @property
    def X(self) -> np.ndarray | None:
        """The sampled rows' features (None before the first chunk)."""
        if self._k is None:
            return None
        self._prune()
        return self._X[0] if self._X else np.empty((0, self._k))

    @property
    def y(self) -> np.ndarray:
        self._prune()
        return self._y[0] if self._y else np.empty(0)


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """BLAS on one thread while inside: the chunks are small (a GEMM or QR of a few
    MiB), and BLAS threads would fight the reader's threads for the cores (on a busy
    2-core machine one chunk's QR measured 0.3 s on 2 threads, 0.04 s on one). Through
    threadpoolctl when it is installed (scikit-learn brings it); else nothing changes."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - without it BLAS keeps its threads
        limits: Any = nullcontext()
    else:
        limits = threadpool_limits(1, user_api="blas")
    with limits:
        yield


@contextmanager
def single_threaded_torch() -> Iterator[None]:
    """torch's intra-op threads at one while inside (same reason as BLAS's)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
