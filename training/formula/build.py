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
from typing import Any

from inference.design import Design, DesignColumn, Input
from training.errors import DataError
from training.formula.columns import (
    DesignedTable,
    check_text_is_text,
    drop_missing,
    factor_input,
    is_factor_column,
    raw_columns,
    target_values,
    with_missing,
)
from training.formula.parse import formula_design

__all__ = ["design_table"]


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
            check_text_is_text(frame[name], name, source)
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
    Z = design.matrix(raw_columns(frame, design))
    return DesignedTable(Z, y, design, target, source, frame[design.input_names])
