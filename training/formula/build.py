"""A table with text columns and gaps, turned into a design matrix and its :class:`Design`.

:func:`design_table` takes a pandas DataFrame and either a formula (parsed by
formulaic: Wilkinson formulas, statsmodels' parameter names) or the target and the
feature columns (text, categorical and boolean columns become factors). Rows with a
missing value in any column the model uses, the target included, are dropped
(``missing="drop"``, R's ``na.omit``) and counted, or refused (``missing="error"``).

Factors use treatment coding: the first level in sorted order is the reference (R's
and statsmodels' default), or the one ``references`` or ``C(g, Treatment('b'))``
names. The design is built twice: by formulaic, and by :meth:`Design.matrix` from the
expressions the export compiles into the graph; the two must agree on every row and
column name, or the formula is refused, so what is exported is what was fitted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from inference.design import Design, DesignColumn, Input, level_string
from training.errors import DataError

__all__ = [
    "DesignedTable",
    "design_table",
    "drop_missing",
    "factor_input",
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


def _simple_design(
    frame: Any,
    target: str,
    features: Sequence[str],
    references: Mapping[str, Any],
    source: str,
) -> Design:
    """Without a formula: numeric columns as they are, factors treatment coded."""
    inputs: list[Input] = []
    columns: list[DesignColumn] = []
    terms: list[dict[str, Any]] = []
    for name in features:
        start = len(columns)
        if is_factor_column(frame[name]):
            spec = factor_input(frame, name, references.get(name), source)
            inputs.append(spec)
            for level in spec.levels:
                if level != spec.reference:
                    expr = {"op": "level", "input": name, "level": level}
                    columns.append(DesignColumn(f"{name}[T.{level}]", expr))
        else:
            inputs.append(Input(name, "numeric"))
            columns.append(DesignColumn(name, {"op": "col", "input": name}))
        terms.append({"name": name, "columns": list(range(start, len(columns))), "factors": [name]})
    return Design(tuple(inputs), tuple(columns), True, None, tuple(terms))


def design_table(
    frame: Any,
    formula: str | None = None,
    *,
    target: str | None = None,
    features: Sequence[str] | None = None,
    missing: str = "drop",
    references: Mapping[str, Any] | None = None,
    source: str = "table",
) -> DesignedTable:
    """The design matrix of ``frame`` (a pandas DataFrame) for ``formula``, or for
    ``target`` on ``features`` (default: every other column).

    Raises :class:`DataError` for a missing column, a term outside the supported
    subset (naming it), a factor with one level, a level without rows, or a gap with
    ``missing="error"``.
    """
    references = dict(references or {})
    if formula is not None:
        from training.formula.parse import formula_design

        return formula_design(frame, formula, missing, references, source)
    if target is None:
        raise DataError(f"{source}: name the target column (target=...) or give a formula")
    names = [str(c) for c in frame.columns]
    wanted = [c for c in names if c != target] if features is None else list(features)
    absent = [c for c in [*wanted, target] if c not in names]
    if absent:
        raise DataError(f"{source}: missing column(s) {absent}; the table has {names}")
    unknown = sorted(set(references) - set(wanted))
    if unknown:
        raise DataError(f"{source}: a reference level for column(s) {unknown} not used")
    frame, dropped = drop_missing(frame, [*wanted, target], missing, source)
    y = target_values(frame, target, source)
    design = _simple_design(frame, target, wanted, references, source)
    design = with_missing(design, missing, dropped)
    return DesignedTable(design.matrix(raw_columns(frame, design)), y, design, target, source)


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
