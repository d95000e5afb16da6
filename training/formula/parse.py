"""A Wilkinson formula, parsed by formulaic, turned into a :class:`~inference.design.Design`.

formulaic decides the columns (which terms, which levels each factor contributes:
treatment coding with the reference dropped where the term's margin is already in the
model, every level where it is not, as patsy and R do) and their names, as statsmodels
prints them (``C(region)[T.north]``, ``x1:x2``). Each of its factors is parsed into a
design expression (:mod:`.terms`), the columns are rebuilt from those expressions, and
the two matrices must be equal on every row.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

import numpy as np

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
from training.formula.terms import Categorical, Numeric, parse_factor

__all__ = ["formula_design"]


def _split(formula: str, source: str) -> tuple[str, str]:
    if formula.count("~") != 1:
        raise DataError(f"{source}: the formula {formula!r} needs one '~' (target ~ terms)")
    lhs, rhs = (side.strip() for side in formula.split("~"))
    if not lhs.isidentifier():
        raise DataError(
            f"{source}: the left side of {formula!r} must be the target column's name, got {lhs!r}"
        )
    return lhs, rhs


def _parsed_factors(rhs: str, frame: Any, source: str) -> dict[str, Numeric | Categorical]:
    """Each distinct factor of the formula's terms, parsed (no data evaluated)."""
    import formulaic

    try:
        terms = list(formulaic.Formula(rhs))
    except Exception as exc:  # formulaic raises many kinds for a bad formula
        raise DataError(f"{source}: the formula cannot be parsed: {rhs!r} ({exc})") from exc
    names = {str(c) for c in frame.columns}
    parsed: dict[str, Numeric | Categorical] = {}
    for term in terms:
        for factor in term.factors:
            text = str(factor)
            if text not in parsed and text != "1":
                parsed[text] = parse_factor(
                    text, names.__contains__, lambda c: is_factor_column(frame[c])
                )
    return parsed


def _inputs(
    parsed: Mapping[str, Numeric | Categorical],
    frame: Any,
    references: Mapping[str, Any],
    source: str,
) -> dict[str, Input]:
    inputs: dict[str, Input] = {}
    for factor in parsed.values():
        if isinstance(factor, Categorical):
            if not factor.explicit:
                check_text_is_text(frame[factor.column], factor.column, source)
            reference = factor.reference
            if reference is None:
                reference = references.get(factor.column)
            spec = factor_input(frame, factor.column, reference, source)
            old = inputs.get(factor.column)
            if old is not None and old != spec:
                raise DataError(
                    f"{source}: column {factor.column!r} is used as a factor with two "
                    "different reference levels"
                )
            inputs[factor.column] = spec
        else:
            for column in factor.columns:
                inputs.setdefault(column, Input(column, "numeric"))
    return inputs


def _product(
    factors: list[tuple[Numeric | Categorical, bool]], inputs: Mapping[str, Input]
) -> list[dict[str, Any]]:
    """The expressions of a scoped term's columns, in formulaic's order (the first
    factor varying fastest)."""
    choices: list[list[dict[str, Any]]] = []
    for factor, reduced in factors:
        if isinstance(factor, Numeric):
            choices.append([factor.expr])
            continue
        spec = inputs[factor.column]
        levels = [lvl for lvl in spec.levels if not (reduced and lvl == spec.reference)]
        choices.append([{"op": "level", "input": spec.name, "level": lvl} for lvl in levels])
    exprs = []
    for reversed_combination in itertools.product(*reversed(choices)):
        combination = reversed_combination[::-1]
        expr = combination[0]
        for other in combination[1:]:
            expr = {"op": "mul", "args": [expr, other]}
        exprs.append(expr)
    return exprs


def _columns(
    spec: Any, parsed: Mapping[str, Numeric | Categorical], inputs: Mapping[str, Input]
) -> tuple[list[DesignColumn], list[dict[str, Any]], bool]:
    columns: list[DesignColumn] = []
    terms: list[dict[str, Any]] = []
    intercept = False
    for structure in spec.structure:
        if not structure.scoped_terms or not any(s.factors for s in structure.scoped_terms):
            intercept = True
            continue
        names = list(structure.columns)
        exprs: list[dict[str, Any]] = []
        for scoped in structure.scoped_terms:
            factors = [(parsed[str(sf.factor)], bool(sf.reduced)) for sf in scoped.factors]
            exprs += _product(factors, inputs)
        if len(exprs) != len(names):
            raise DataError(f"formula term {str(structure.term)!r} cannot be compiled")
        start = len(columns)
        columns += [DesignColumn(n, e) for n, e in zip(names, exprs, strict=True)]
        terms.append(
            {
                "name": str(structure.term),
                "columns": list(range(start, len(columns))),
                "factors": [str(f) for f in structure.term.factors],
            }
        )
    return columns, terms, intercept


def formula_design(
    frame: Any, formula: str, missing: str, references: Mapping[str, Any], source: str
) -> DesignedTable:
    """See :func:`training.formula.design_table`."""
    import formulaic

    target, rhs = _split(formula, source)
    if target not in frame.columns:
        raise DataError(f"{source}: missing column {target!r} (the formula's target)")
    parsed = _parsed_factors(rhs, frame, source)
    used = sorted({c for f in parsed.values() for c in _columns_of(f)})
    frame, dropped = drop_missing(frame, [*used, target], missing, source)
    inputs = _inputs(parsed, frame, references, source)
    clean = _as_levels(frame, inputs)
    try:
        matrix = formulaic.model_matrix(rhs, clean, na_action="raise", ensure_full_rank=True)
    except Exception as exc:  # formulaic raises many kinds for a bad formula
        raise DataError(f"{source}: the formula {formula!r} cannot be built ({exc})") from exc
    columns, terms, intercept = _columns(matrix.model_spec, parsed, inputs)
    design = Design(
        tuple(inputs[c] for c in used), tuple(columns), intercept, formula, tuple(terms)
    )
    design = with_missing(design, missing, dropped)
    Z = design.matrix(raw_columns(frame, design))
    reference = np.asarray(matrix[[c.name for c in columns]], dtype=np.float64)
    if not np.allclose(Z, reference, rtol=1e-12, atol=0.0, equal_nan=False):
        raise DataError(
            f"{source}: the formula {formula!r} builds columns this package cannot compile "
            "into the model's graph exactly; simplify its terms"
        )
    y = target_values(frame, target, source)
    return DesignedTable(Z, y, design, target, source, frame[design.input_names])


def _columns_of(factor: Numeric | Categorical) -> tuple[str, ...]:
    return (factor.column,) if isinstance(factor, Categorical) else factor.columns


def _as_levels(frame: Any, inputs: Mapping[str, Input]) -> Any:
    """The frame with each factor column as a categorical of its level strings, so that
    formulaic sees exactly the levels, in the order, that the design records."""
    import pandas as pd

    from inference.design import level_string

    clean = frame.copy()
    for spec in inputs.values():
        if spec.kind == "factor":
            text = frame[spec.name].map(lambda v, t=spec.type: level_string(v, t))
            clean[spec.name] = pd.Categorical(text, categories=list(spec.levels))
    return clean
