"""A progress bar of rows scored, on stderr (tqdm), shown when asked or on a terminal.

Its rate is the job's: rows divided by the seconds since the job started (tqdm's
``smoothing=0``, the clock moved back to the job's start), not tqdm's default moving
average of the last updates, which ran ahead of the final line (8.31M rows/s on the
bar against 4,869,811 rows/s in :meth:`~inference.batch.BatchReport.summary`: the
average left out loading the model and reading the first chunk, and the moving
average the slower start). The final display is given the report's own rows and
seconds, so the two show the same rate.
"""

from __future__ import annotations

import sys
import time

__all__ = ["Progress"]


class Progress:
    """A tqdm bar counting rows (rate in rows/s), only when asked or on a terminal.

    Parameters
    ----------
    enabled : bool or None
        None: only when stderr is a terminal.
    total_rows, total_bytes : int or None
        The rows to score when known (Parquet), else the bytes of plain CSV input
        the total is estimated from.
    started : float, optional
        ``time.perf_counter()`` at the job's start: the rate counts from then.
    """

    def __init__(
        self,
        enabled: bool | None,
        total_rows: int | None,
        total_bytes: int | None,
        started: float | None = None,
    ) -> None:
        if enabled is None:
            enabled = sys.stderr.isatty()
        self._bar = None
        self._total_bytes = total_bytes
        if enabled:
            try:
                from tqdm.auto import tqdm
            except ImportError:  # pragma: no cover - tqdm comes with the extras
                return
            self._bar = tqdm(
                total=total_rows,
                unit=" rows",
                unit_scale=True,
                file=sys.stderr,
                dynamic_ncols=True,
                desc="scoring",
                smoothing=0,  # the average since the start, as the report's
            )
            if started is not None:
                self._set_elapsed(time.perf_counter() - started)

    def _set_elapsed(self, seconds: float) -> None:
        """Move the bar's start so that it has been running ``seconds`` (tqdm reads its
        own clock, ``time.time``, so the job's perf_counter start is translated)."""
        assert self._bar is not None
        clock = getattr(self._bar, "_time", time.time)
        self._bar.start_t = clock() - seconds

    def update(self, rows: int, rows_done: int, bytes_done: int) -> None:
        """Count ``rows`` more; a CSV input estimates the total from ``bytes_done``."""
        if self._bar is None:
            return
        if self._total_bytes and bytes_done:  # CSV: estimate the rows from the bytes read
            self._bar.total = max(rows_done, int(rows_done * self._total_bytes / bytes_done))
        self._bar.update(rows)

    def close(self, rows_done: int, seconds: float | None = None) -> None:
        """Show the final count and close the bar (once: later calls do nothing); with
        ``seconds`` (the job's, as its report gives them), the final rate is
        ``rows_done / seconds``."""
        if self._bar is None:
            return
        self._bar.n = self._bar.total = rows_done
        if seconds is not None:
            self._set_elapsed(seconds)
            if hasattr(self._bar, "_time"):  # stop tqdm's clock: exactly rows / seconds
                now = self._bar.start_t + seconds
                self._bar._time = lambda: now
        self._bar.refresh()
        self._bar.close()
        self._bar = None
