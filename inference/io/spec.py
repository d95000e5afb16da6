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

__all__ = ["CODE_MISSING", "CODE_UNMATCHED", "ReadSpec"]

#: a factor's code for a value that is none of its levels as written
CODE_UNMATCHED = -1
#: a factor's code for a missing value (an empty CSV field, a Parquet null)
CODE_MISSING = -2


@dataclass(frozen=True)
class ReadSpec:
    """The columns a reader converts and copies, by type.

    features : numeric columns, converted into the chunk's matrix ``X`` of shape
        ``(rows, len(features))``, in this order, as ``dtype``
    kept : columns copied beside the matrix as they are (CSV: text; Parquet: their
        own Arrow type), in this order; a column may be both a feature (or a factor)
        and kept
    dtype : the matrix's dtype (float32 or float64)
    factors : text (or categorical) columns, each with its levels: the chunk's
        ``codes[name]`` is an int64 array of length ``rows`` holding, for each row, the
        index of its value in the levels when the value is exactly one of them as text,
        :data:`CODE_MISSING` for a missing value and :data:`CODE_UNMATCHED` otherwise;
        ``factor_arrays[name]`` is the column as read (an Arrow array, a dictionary
        array where the reader could read one), except where the C parser coded it
    columns_contiguous : ``X`` Fortran-ordered, each feature's column contiguous (what
        a model taking one input per column is fed); else row-major
    """

    features: list[str]
    kept: list[str] = field(default_factory=list)
    dtype: np.dtype = field(default_factory=lambda: np.dtype(np.float64))
    factors: dict[str, tuple[str, ...]] = field(default_factory=dict)
    columns_contiguous: bool = False

    @property
    def needed(self) -> list[str]:
        """Every column read: the kept ones, then the features and the factors that are
        not kept."""
        read = self.features + [f for f in self.factors if f not in self.features]
        return self.kept + [f for f in read if f not in self.kept]

    @classmethod
    def numeric(cls, columns: Sequence[str]) -> ReadSpec:
        """Every column of ``columns`` converted to float64, none kept as text."""
        return cls(list(columns), [], np.dtype(np.float64))
