"""What a job reads: the one contract between the readers and the code that calls them.

Both ``linreg predict`` (:mod:`inference.batch`) and ``linreg train``
(:mod:`training.data`) describe what they want read with a :class:`ReadSpec`; the
CSV and Parquet readers (:mod:`inference.io.csv`, :mod:`inference.io.parquet`) know
nothing else about the job.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = ["ReadSpec"]


@dataclass(frozen=True)
class ReadSpec:
    """The columns a reader converts and copies.

    features : columns converted into the chunk's matrix ``X`` of shape
        ``(rows, len(features))``, in this order, as ``dtype``
    kept : columns copied beside the matrix as they are (CSV: text; Parquet: their
        own Arrow type), in this order; a column may be both a feature and kept
    dtype : the matrix's dtype (float32 or float64)
    """

    features: list[str]
    kept: list[str] = field(default_factory=list)
    dtype: np.dtype = field(default_factory=lambda: np.dtype(np.float64))

    @property
    def needed(self) -> list[str]:
        """Every column read: the kept ones, then the features that are not kept."""
        return self.kept + [f for f in self.features if f not in self.kept]

    @classmethod
    def numeric(cls, columns: Sequence[str]) -> ReadSpec:
        """Every column of ``columns`` converted to float64, none kept as text."""
        return cls(list(columns), [], np.dtype(np.float64))
