"""Training tables: CSV, TSV and Parquet files, the bundled data sets, NIST's problems.

- :func:`load_table` (:mod:`.loader`) reads a file's feature and target columns into
  a :class:`Table` (:mod:`.tables`), through the I/O layer that ``linreg predict``
  reads with (:mod:`inference.io`; :mod:`.reader` is the fast, typed path);
- :func:`load_dataset` (:mod:`.datasets`) loads a bundled table by name;
- :func:`iter_table_chunks` and :func:`table_columns` serve the fits that do not
  hold their data (:mod:`training.chunked`);
- :mod:`.nist` holds NIST's certified linear least-squares problems.

Every fault is a :class:`~training.errors.DataError` naming the file, the column and
the row (and the line, for text).
"""

from __future__ import annotations

from training.data.datasets import DATASETS, BundledDataset, load_dataset, load_dataset_frame
from training.data.loader import iter_table_chunks, load_frame, load_table, table_columns
from training.data.tables import Table, validate_xy, wanted_columns
from training.errors import DataError

__all__ = [
    "DATASETS",
    "BundledDataset",
    "DataError",
    "Table",
    "iter_table_chunks",
    "load_dataset",
    "load_dataset_frame",
    "load_frame",
    "load_table",
    "table_columns",
    "validate_xy",
    "wanted_columns",
]
