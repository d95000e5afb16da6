"""The Predictor's bulk session: large batches on every CPU, with a one-pass check.

Batches of ``bulk_rows`` rows or more go to a second session on the same model
bytes (:func:`inference.session.open_bulk_session`), opened at the first such
batch, with an intra-op thread on every CPU the process may use; their
non-finite check is one ``np.einsum`` sum. docs/guide/bandwidth.md has the
measurements behind the threshold, the threads and the check.
"""

from __future__ import annotations

import math
import sys
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from inference.errors import UsageError
from inference.inputs import locate_nonfinite

__all__ = ["BULK_ROWS", "BulkBatches", "check_bulk_rows"]

#: default of ``Predictor.load(bulk_rows=)``: batches from this many rows on run on the
#: bulk session (measured: docs/guide/bandwidth.md)
BULK_ROWS = 65536


class BulkBatches:
    """Mixed into :class:`inference.Predictor`: its bulk session for large batches."""

    features: list[str]
    _input_name: str
    _output_names: list[str]

    def _init_bulk(self, bulk: Callable[[], Any] | None, bulk_rows: int | None) -> None:
        """Batches of ``bulk_rows`` or more will go to the session ``bulk()`` opens."""
        self._bulk_factory = bulk if bulk_rows else None
        self._bulk_rows = bulk_rows if bulk is not None and bulk_rows else sys.maxsize
        self._bulk_lock = threading.Lock()

    @property
    def bulk_rows(self) -> int | None:
        """Batches of at least this many rows run on :attr:`bulk_session` (None: never)."""
        return None if self._bulk_rows == sys.maxsize else self._bulk_rows

    @property
    def bulk_session(self) -> Any:
        """The ``InferenceSession`` for batches of :attr:`bulk_rows` rows or more, opened
        now if no batch has opened it yet; None when there is none (``bulk_rows=None``,
        a session on another provider than CPU, a design model, or one that failed to
        open)."""
        bulk = self._bulk()
        return None if bulk is None else bulk[0]

    def _bulk_run(
        self, bulk: tuple[Any, Any, Any], X: np.ndarray, allow_nonfinite: bool
    ) -> np.ndarray:
        """Run the bulk session on ``X`` (C-contiguous, (n, k), the model's dtype): the
        (n,) predictions, checked by their sum.

        The sum is NaN or ±inf when a prediction is, and finite otherwise unless
        it overflowed, which ``np.isfinite`` then settles. ``np.einsum`` sums in
        one pass with no temporary: cheaper than ``np.isfinite(y).all()`` (a
        boolean array, then a second pass), than ``np.sum`` (pairwise) and than
        a ``ReduceSum`` output in the graph (single-threaded in onnxruntime),
        measured in docs/guide/bandwidth.md.
        """
        _, run, options = bulk
        y: np.ndarray = run(self._output_names, {self._input_name: X}, options)[0]
        if allow_nonfinite or math.isfinite(np.einsum("i->", y)) or np.isfinite(y).all():
            return y
        raise locate_nonfinite(X, self.features)

    def _bulk(self) -> tuple[Any, Any, Any] | None:
        """``(session, run, run_options)`` of the bulk session, opened on first use; None
        when there is none."""
        bulk = self.__dict__.get("_bulk_session")
        if bulk is None and self._bulk_factory is not None:
            with self._bulk_lock:  # one session, even when threads race to open it
                bulk = self.__dict__.get("_bulk_session")
                if bulk is None:
                    bulk = self._bulk_factory() or False
                    self.__dict__["_bulk_session"] = bulk
        return bulk or None


def check_bulk_rows(bulk_rows: Any) -> int | None:
    """``bulk_rows`` as an int, or None; :class:`UsageError` (a ValueError) unless it is
    a positive integer or None."""
    if bulk_rows is None:
        return None
    if (
        isinstance(bulk_rows, int | np.integer)
        and not isinstance(bulk_rows, bool)
        and bulk_rows > 0
    ):
        return int(bulk_rows)
    raise UsageError(f"bulk_rows must be a positive integer or None, got {bulk_rows!r}")
