"""A progress bar of rows scored, on stderr (tqdm), shown when asked or on a terminal."""

from __future__ import annotations

import sys

__all__ = ["Progress"]


class Progress:
    """A tqdm bar counting rows (rate in rows/s), only when asked or on a terminal."""

    def __init__(
        self, enabled: bool | None, total_rows: int | None, total_bytes: int | None
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
            )

    def update(self, rows: int, rows_done: int, bytes_done: int) -> None:
        """Count ``rows`` more; a CSV input estimates the total from ``bytes_done``."""
        if self._bar is None:
            return
        if self._total_bytes and bytes_done:  # CSV: estimate the rows from the bytes read
            self._bar.total = max(rows_done, int(rows_done * self._total_bytes / bytes_done))
        self._bar.update(rows)

    def close(self, rows_done: int) -> None:
        """Show the final count and close the bar."""
        if self._bar is not None:
            self._bar.total = rows_done
            self._bar.refresh()
            self._bar.close()
