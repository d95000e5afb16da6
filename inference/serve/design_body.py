"""Requests to a design model (:mod:`inference.design`) as its raw columns.

A model fitted on raw columns (text factors, a formula, gaps) reads each of its
columns by name, numbers and text, rather than a numeric matrix. Every protocol's
body for such a model becomes a :class:`RawColumns`: one 1-D array per column the
model reads, in the model's order (float64 for a numeric column of numbers, with
NaN for a missing value; Python objects, the text of a factor or ``None``,
otherwise). :meth:`inference.Predictor.predict` takes it as a mapping and checks it
as it checks any dict of columns: an unseen level, a missing value or text in a
numeric column is its :class:`~inference.errors.InputError` naming the row
(1-based), the column, the value and the known levels (a 400 on the V2 and MLflow
routes, a 422 on ``/predict``, as for numeric models).

Columns the model does not read are dropped here (``strict``, ``--strict-columns``:
refused), so the Predictor warns of none. Rows without names (``[[1.0, "x"]]``)
are refused: a design model's columns are matched by name only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from inference.design import Design
from inference.errors import InputError

__all__ = ["RawColumns", "from_json", "from_split", "numeric_column", "text_column"]

_NUMBERS = frozenset({float, int})
_NUMBERS_OR_NULL = frozenset({float, int, type(None)})
#: what a factor's value may be (numpy's scalars: from V2 integer tensors)
_SCALARS = frozenset({str, float, int, bool, type(None), np.str_, np.int64, np.bool_})


class RawColumns(dict[str, np.ndarray]):
    """A design model's raw columns by name, each a 1-D array of ``rows`` values.

    ``shape`` is ``(rows, number of columns)``, as a matrix's, so the routes, the
    runner and the metrics count the rows of either alike.
    """

    __slots__ = ("rows",)

    def __init__(self, columns: dict[str, np.ndarray], rows: int) -> None:
        super().__init__(columns)
        self.rows = rows

    @property
    def shape(self) -> tuple[int, int]:
        return (self.rows, len(self))

    @classmethod
    def concat(cls, parts: Sequence[RawColumns]) -> RawColumns:
        """The rows of ``parts`` one after the other (a micro-batch of requests)."""
        names = list(parts[0])
        columns = {n: np.concatenate([p[n] for p in parts]) for n in names}
        return cls(columns, sum(p.rows for p in parts))


def numeric_column(values: Any, name: str) -> np.ndarray:
    """A numeric column of parsed JSON as float64 (``None``: NaN, a missing value the
    Predictor names, or fills where the model says so). A value that is not a number
    (text, a boolean) is an InputError naming its row and column."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "iuf":
        return values.astype(np.float64, copy=False)
    values = list(values)
    kinds = set(map(type, values))
    if kinds <= _NUMBERS_OR_NULL:
        try:
            if type(None) in kinds:
                return np.array([np.nan if v is None else v for v in values], dtype=np.float64)
            return np.array(values, dtype=np.float64)
        except OverflowError:  # an int beyond float64
            pass
    for row, v in enumerate(values, start=1):
        if v is not None and type(v) not in _NUMBERS:
            raise InputError(
                f"row {row}, column {name!r}: {v!r} is not a number; this column is numeric "
                "in the model"
            )
    row = next(i for i, v in enumerate(values, start=1) if type(v) is int and abs(v) >= 2**1024)
    raise InputError(f"row {row}, column {name!r}: {values[row - 1]} is beyond float64's range")


def text_column(values: Any, name: str) -> np.ndarray:
    """A factor column as a 1-D object array (text, ``None`` for a missing value; the
    Predictor compares the values with the factor's levels). A value that is not a
    scalar (a JSON object or list) is an InputError naming its row and column."""
    if isinstance(values, np.ndarray):
        if values.ndim != 1:
            raise InputError(f"column {name!r}: expected one value per row, got {values.shape}")
        if values.dtype != object:
            return values.astype(object)
    values = list(values)
    if not _SCALARS.issuperset(map(type, values)):
        row, v = next((i, v) for i, v in enumerate(values, 1) if type(v) not in _SCALARS)
        shown = repr(v)[:100]
        raise InputError(f"row {row}, column {name!r}: {shown} is not a level (text expected)")
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _column(values: Any, design: Design, name: str) -> np.ndarray:
    spec = design.input(name)
    return numeric_column(values, name) if spec.kind == "numeric" else text_column(values, name)


def _check_names(present: Sequence[str], design: Design, strict: bool, where: str) -> None:
    names = design.input_names
    missing = [n for n in names if n not in present]
    unknown = [c for c in present if c not in names] if strict else []
    if missing or unknown:
        parts = [f"missing {missing}"] if missing else []
        parts += [f"unknown {unknown} (--strict-columns)"] if unknown else []
        raise InputError(f"{where}: {' and '.join(parts)}; the model reads {names}")


def _records(records: list[Any], design: Design, strict: bool) -> RawColumns:
    names = design.input_names
    columns: dict[str, list[Any]] = {n: [] for n in names}
    for row, record in enumerate(records, start=1):
        if not isinstance(record, dict):
            raise InputError(f"record {row} is a {type(record).__name__}; expected an object")
        try:
            for n in names:
                columns[n].append(record[n])
        except KeyError:
            _check_names(list(record), design, False, f"record {row}")
        if strict and len(record) != len(names):
            _check_names(list(record), design, True, f"record {row}")
    return RawColumns({n: _column(columns[n], design, n) for n in names}, len(records))


def from_json(inputs: Any, design: Design, *, strict: bool = False) -> RawColumns:
    """The raw columns of parsed JSON: a record ``{"species": "Adelie", ...}``, records
    ``[{...}, ...]``, or columns ``{"species": [...], ...}``."""
    names = design.input_names
    if isinstance(inputs, list) and all(isinstance(r, dict) for r in inputs):
        return _records(inputs, design, strict)
    if not isinstance(inputs, dict):
        raise InputError(
            f"got a JSON {type(inputs).__name__} of values; this model reads its columns by "
            f"name {names}: send a record, records or columns"
        )
    _check_names([str(k) for k in inputs], design, strict, "the columns")
    values = {n: inputs[n] for n in names}
    if not any(isinstance(v, list) for v in values.values()):  # one record
        return _records([values], design, False)
    lengths = {n: len(v) if isinstance(v, list) else None for n, v in values.items()}
    if len(set(lengths.values())) != 1:
        raise InputError(f"columns of different lengths (None: not a list): {lengths}")
    rows = next(iter(lengths.values())) or 0
    return RawColumns({n: _column(values[n], design, n) for n in names}, rows)


def from_split(
    columns: list[str], data: list[Any], design: Design, *, strict: bool = False
) -> RawColumns:
    """The raw columns of a ``dataframe_split``'s ``columns`` and rows of ``data``."""
    _check_names(columns, design, strict, "dataframe_split columns")
    width = len(columns)
    for row, values in enumerate(data, start=1):
        if not isinstance(values, list) or len(values) != width:
            raise InputError(
                f"dataframe_split row {row}: expected a list of {width} values, one per "
                f"column {columns}, got {values!r}"[:300]
            )
    index = {c: j for j, c in enumerate(columns)}
    out = {n: _column([r[index[n]] for r in data], design, n) for n in design.input_names}
    return RawColumns(out, len(data))
