"""The columns of a table as a model sees them: factors, their levels, gaps, the target.

Shared by both paths of :func:`training.formula.design_table`: with a formula
(:mod:`.parse`) and without (:mod:`.build`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from inference.design import Design, Input, level_string
from training.errors import DataError

__all__ = [
    "DesignedTable",
    "drop_missing",
    "factor_input",
    "check_text_is_text",
    "factor_type",
    "is_factor_column",
    "raw_columns",
    "target_values",
    "with_missing",
]


@dataclass(frozen=True)
class DesignedTable:
    """A design ready to fit.

    Z : ndarray of shape (n_samples, n_columns), float64 (no intercept column)
    y : ndarray of shape (n_samples,), float64
    """

    Z: np.ndarray
    y: np.ndarray
    design: Design
    target: str
    source: str
    frame: Any = None  # the raw columns of the rows used (pandas DataFrame), gaps dropped

    @property
    def names(self) -> list[str]:
        return self.design.column_names

    @property
    def centered(self) -> bool:
        """Whether R² and the F test are taken about the mean: with an intercept, or
        without one when the columns span the constant (statsmodels' implicit
        constant, for example a factor coded with every level)."""
        if self.design.intercept:
            return True
        ones = np.ones((self.Z.shape[0], 1))
        rank = np.linalg.matrix_rank(self.Z)
        return bool(np.linalg.matrix_rank(np.hstack([ones, self.Z])) == rank)


def is_factor_column(series: Any) -> bool:
    """Whether a pandas column is a factor: text, categories or booleans."""
    import pandas as pd

    dtype = series.dtype
    return bool(
        isinstance(dtype, pd.CategoricalDtype)
        or pd.api.types.is_bool_dtype(dtype)
        or pd.api.types.is_string_dtype(dtype)
        or pd.api.types.is_object_dtype(dtype)
    )


def check_text_is_text(series: Any, name: str, source: str) -> None:
    """A text column most of whose values are numbers is refused (DataError naming the
    first cell that is not): it is more likely a numeric column with a bad cell than a
    factor with a level per value. ``C(column)`` in a formula makes it a factor anyway."""
    import pandas as pd

    if not (
        pd.api.types.is_object_dtype(series.dtype) or pd.api.types.is_string_dtype(series.dtype)
    ):
        return
    values = series.dropna()
    numbers = pd.to_numeric(values, errors="coerce")
    if numbers.isna().all() or numbers.notna().mean() < 0.5:
        return
    label = numbers.index[numbers.isna().to_numpy()][0]
    row = int(series.index.get_loc(label))
    raise DataError(
        f"{source}: column {name!r}, row {row} (index {label!r}): {values[label]!r} is not a "
        "number, while most of the column's values are; fix that cell (or leave it empty: "
        f"a missing value), or write C({name}) in a formula to use the column as a factor"
    )


def factor_type(series: Any) -> str:
    """How a factor column's values compare with its levels: "bool", "int" or "str"."""
    import pandas as pd

    values = series.dropna()
    if isinstance(series.dtype, pd.CategoricalDtype):
        values = pd.Series(series.cat.categories)
    if pd.api.types.is_bool_dtype(values.dtype) or (
        len(values) and all(isinstance(v, bool | np.bool_) for v in values)
    ):
        return "bool"
    if pd.api.types.is_integer_dtype(values.dtype):
        return "int"
    if pd.api.types.is_float_dtype(values.dtype) and np.all(np.mod(values, 1) == 0):
        return "int"
    return "str"


def _levels(series: Any, type_: str, name: str) -> list[str]:
    """The factor's levels as strings, sorted (a pandas categorical keeps its order)."""
    import pandas as pd

    if isinstance(series.dtype, pd.CategoricalDtype):
        raw = list(series.cat.categories)
    else:
        raw = sorted(series.dropna().unique(), key=lambda v: (type_ == "int" and int(v)) or v)
    levels = []
    for value in raw:
        try:
            text = level_string(value, type_)
        except ValueError as exc:
            raise DataError(f"column {name!r}: {exc}") from None
        if text is not None:
            levels.append(text)
    return levels


def _missing_rows(frame: Any, columns: Sequence[str]) -> np.ndarray:
    """Rows with a missing value (null, NaN, an empty string) in any of ``columns``."""
    mask = np.zeros(len(frame), dtype=bool)
    for name in columns:
        col = frame[name]
        mask |= np.asarray(col.isna(), dtype=bool)
        if col.dtype == object or str(col.dtype).startswith("string"):
            mask |= np.asarray(col.astype("string").fillna("") == "", dtype=bool)
    return mask


def drop_missing(frame: Any, used: Sequence[str], missing: str, source: str) -> tuple[Any, int]:
    if missing not in ("drop", "error"):
        raise ValueError(f"missing must be 'drop' or 'error', got {missing!r}")
    gaps = _missing_rows(frame, used)
    if not gaps.any():
        return frame, 0
    if missing == "error":
        row = int(np.flatnonzero(gaps)[0])
        column = next(c for c in used if _missing_rows(frame.iloc[[row]], [c])[0])
        raise DataError(
            f"{source}: column {column!r}, row {row + 1}: a missing value "
            f"({int(gaps.sum())} row(s) with gaps; missing='drop' leaves them out)"
        )
    return frame.loc[~gaps].reset_index(drop=True), int(gaps.sum())


def factor_input(frame: Any, name: str, reference: Any, source: str) -> Input:
    series = frame[name]
    type_ = factor_type(series)
    levels = _levels(series, type_, name)
    if len(levels) < 2:
        raise DataError(
            f"{source}: column {name!r} has {len(levels)} level(s) {levels} in the rows "
            "used: a factor needs at least two"
        )
    absent = [lvl for lvl in levels if not (frame[name].map(_as_level(type_)) == lvl).any()]
    if absent:
        raise DataError(
            f"{source}: column {name!r}: level(s) {absent} never occur in the rows used "
            "(a category without rows has no coefficient); drop the unused categories"
        )
    ref = levels[0] if reference is None else level_string(reference, type_)
    if ref not in levels:
        raise DataError(
            f"{source}: column {name!r}: the reference level {reference!r} is not one of "
            f"its levels {levels}"
        )
    # The reference first, the others sorted, as R's relevel(): coefficients keep the
    # sorted order, and the first level is always the one without a column.
    ordered = [ref, *(lvl for lvl in levels if lvl != ref)]
    return Input(name, "factor", type_, tuple(ordered), ref)


def _as_level(type_: str) -> Any:
    return lambda v: level_string(v, type_)


def with_missing(design: Design, missing: str, dropped: int) -> Design:
    return Design(
        design.inputs,
        design.columns,
        design.intercept,
        design.formula,
        design.terms,
        missing,
        dropped,
    )


def raw_columns(frame: Any, design: Design) -> dict[str, Any]:
    return {i.name: frame[i.name] for i in design.inputs}


def target_values(frame: Any, target: str, source: str) -> np.ndarray:
    import pandas as pd

    series = frame[target]
    if is_factor_column(series) and not pd.api.types.is_numeric_dtype(series.dtype):
        raise DataError(f"{source}: the target {target!r} holds text; expected numbers")
    y = np.asarray(series, dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(y))
    if bad.size:
        raise DataError(
            f"{source}: column {target!r}, row {int(bad[0]) + 1}: {y[bad[0]]} is not a "
            "finite number"
        )
    return y
