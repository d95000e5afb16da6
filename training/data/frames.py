"""A pandas DataFrame of numbers as a training :class:`~training.data.tables.Table`.

:func:`training.pipeline.train` takes a DataFrame with ``target=`` (and ``features=``);
one whose used columns are all numbers, without gaps, becomes a :class:`Table` here,
checked as the file loaders check theirs. Text columns and gaps go to the design
path instead (:mod:`training.formula`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from inference.errors import UsageError
from training.data.tables import Table, validate_xy
from training.errors import DataError

__all__ = ["as_table", "is_frame"]


def is_frame(data: Any) -> bool:
    """Whether ``data`` is a pandas DataFrame (pandas is not imported to tell)."""
    return type(data).__module__.startswith("pandas") and hasattr(data, "columns")


def as_table(
    data: Any, *, target: str | None = None, features: Sequence[str] | None = None
) -> Table:
    """``data`` as a :class:`Table` (see :func:`train`)."""
    if isinstance(data, Table):
        if target is not None or features is not None:
            raise UsageError(
                "train: target= and features= are for a DataFrame; a Table already has "
                f"its target ({data.target!r}) and features"
            )
        return data
    if is_frame(data):
        return _frame_table(data, target, features)
    raise TypeError(
        f"train() takes a Table or a pandas DataFrame, got {type(data).__name__}: read a "
        "file with training.data.load_table(path, target=...), a bundled data set with "
        "training.data.load_dataset(name), or pass a DataFrame with target='column'"
    )


def _frame_table(frame: Any, target: str | None, features: Sequence[str] | None) -> Table:
    """The target and feature columns of a DataFrame, checked (DataError naming the
    column and the row)."""
    columns = [str(c) for c in frame.columns]
    if target is None:
        raise UsageError(f"train(DataFrame) needs target='column'; the columns are {columns}")
    if len(set(columns)) != len(columns):
        raise DataError(f"DataFrame: repeated column names in {columns}")
    wanted = [c for c in columns if c != target] if features is None else list(features)
    missing = [c for c in [*wanted, target] if c not in columns]
    if missing:
        raise DataError(f"DataFrame: missing column(s) {missing}; the columns are {columns}")
    if target in wanted:
        raise DataError(f"DataFrame: the target {target!r} is also listed as a feature")
    if not wanted:
        raise DataError(f"DataFrame: no feature columns (the columns are {columns})")
    frame = frame.set_axis(columns, axis=1)
    X = np.column_stack([_frame_column(frame, c) for c in wanted])
    y = _frame_column(frame, target)
    validate_xy(X, y, source="DataFrame")
    return Table(X=X, y=y, features=wanted, target=target, source="DataFrame")


def _frame_column(frame: Any, name: str) -> np.ndarray:
    import pandas as pd

    column = frame[name]
    if pd.api.types.is_bool_dtype(column) or not pd.api.types.is_numeric_dtype(column):
        values = pd.to_numeric(column, errors="coerce") if column.dtype == object else None
        if values is None or pd.api.types.is_bool_dtype(column):
            raise DataError(
                f"DataFrame: column {name!r} has type {column.dtype}, expected a number type"
            )
        bad = np.flatnonzero(values.isna().to_numpy() & column.notna().to_numpy())
        if bad.size:
            i = int(bad[0])
            raise DataError(
                f"DataFrame: column {name!r}, row {i} (index {column.index[i]!r}): "
                f"{column.iloc[i]!r} is not a number"
            )
        column = values
    out = column.to_numpy(dtype=np.float64, na_value=np.nan)
    bad = np.flatnonzero(~np.isfinite(out))
    if bad.size:
        i = int(bad[0])
        raise DataError(
            f"DataFrame: column {name!r}, row {i} (index {column.index[i]!r}): {out[i]} is "
            f"not a finite number ({bad.size} such value(s) in this column)"
        )
    return out
