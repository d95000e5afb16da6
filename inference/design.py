"""A model's design: how the raw columns of a table become the columns of the linear model.

A model fitted on numbers only reads its ``features`` as they are. A model fitted on a
real table (text columns, a formula) reads raw columns, numbers and text, and builds
its design columns from them: a factor's treatment-coded indicators, interactions,
powers and logarithms. :class:`Design` describes that build; it is stored in the
manifest's ``design`` section, compiled into the ONNX graph by the export
(:mod:`training.export.design_graph`), and evaluated here in numpy, torch-free, to
check inputs before they reach ONNX Runtime and to build design matrices for the
intervals' covariance.

The manifest's ``design`` section::

    {
      "formula": "y ~ x1 + C(region) + x1:x2",     # null when no formula was given
      "intercept": true,
      "inputs": [                                   # the raw columns, graph inputs
        {"name": "x1", "kind": "numeric"},
        {"name": "region", "kind": "factor", "type": "str",
         "levels": ["east", "north", "south"], "reference": "east"}
      ],
      "columns": [                                  # design columns, in parameter order
        {"name": "x1", "expr": {"op": "col", "input": "x1"}},
        {"name": "C(region)[T.north]",
         "expr": {"op": "level", "input": "region", "level": "north"}},
        {"name": "x1:x2", "expr": {"op": "mul", "args": [
            {"op": "col", "input": "x1"}, {"op": "col", "input": "x2"}]}}
      ],
      "terms": [{"name": "C(region)", "columns": [1, 2]}, ...],
      "missing": "drop",                            # or "error"
      "rows_dropped": 3                             # at training
    }

A numeric input may carry a ``fill`` (a number, written only when set): a missing value
(None, NaN) of that column is replaced by it, in numpy here and by
``Where(IsNaN(x), fill, x)`` in the graph, as the ``SimpleImputer`` of an exported
scikit-learn pipeline does; without one, a missing value is an :class:`InputError`.
A factor may carry ``"unknown": "zero"`` (written only when set; the default is
``"error"``): a value that is not a level (a missing one included) then gets no level's
indicator (every ``level`` column 0, no table entry), as an exported
``OneHotEncoder(handle_unknown="ignore")`` scores it, with an
:class:`~inference.errors.UnknownLevelWarning` naming the row, column and value;
without it such a value is an :class:`InputError`.

Expressions (``expr``): ``col`` (a numeric input), ``level`` (1 where a factor input
equals ``level``, else 0), ``const`` (``value``), and the operations ``add``, ``sub``,
``mul``, ``div``, ``neg``, ``pow`` (its exponent a ``const``), ``log``, ``exp``,
``sqrt`` over ``args``. A factor's ``type`` ("str", "bool" or "int") says how its
values are compared with its levels, which are stored as strings: booleans as
"False"/"True", integers in decimal.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from inference.errors import InputError, ModelLoadError, UnknownLevelWarning

__all__ = ["BINARY_OPS", "FACTOR_TYPES", "UNARY_OPS", "Design", "DesignColumn", "Input"]

#: how a factor's values are turned into the strings its levels are stored as
FACTOR_TYPES = ("str", "bool", "int")
UNARY_OPS = ("neg", "log", "exp", "sqrt")
#: what a factor value that is not a level gets: an InputError, or no level's indicator
_UNKNOWN = ("error", "zero")
BINARY_OPS = ("add", "sub", "mul", "div", "pow")
_LEAVES = ("col", "level", "const")
_SHOWN_LEVELS = 20
#: above this many values, distinct values are found by pandas (if installed)
_FACTORIZE_ABOVE = 4096


@dataclass(frozen=True)
class Input:
    """One raw column the model reads: ``kind`` "numeric" (with an optional ``fill``
    for its missing values) or "factor" (with its ``levels``, every level seen in
    training, the ``reference`` level that has no column of its own, and what an
    ``unknown`` value gets: "error" or "zero"); see the module docstring."""

    name: str
    kind: str
    type: str = "float"
    levels: tuple[str, ...] = ()
    reference: str | None = None
    fill: float | None = None
    unknown: str = "error"

    def to_dict(self) -> dict[str, Any]:
        if self.kind == "numeric":
            out: dict[str, Any] = {"name": self.name, "kind": "numeric"}
            return out if self.fill is None else {**out, "fill": self.fill}
        out = {"name": self.name, "kind": "factor", "type": self.type}
        out.update(levels=list(self.levels), reference=self.reference)
        return out if self.unknown == "error" else {**out, "unknown": self.unknown}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Input:
        kind, name = data.get("kind"), data.get("name")
        if kind == "numeric":
            fill = data.get("fill")
            if fill is not None and (
                isinstance(fill, bool)
                or not isinstance(fill, int | float)
                or not math.isfinite(fill)
            ):
                raise ModelLoadError(f"design input {name!r}: fill must be a finite number")
            return cls(str(data["name"]), "numeric", fill=None if fill is None else float(fill))
        if kind != "factor":
            raise ModelLoadError(f"design input {data!r}: kind must be 'numeric' or 'factor'")
        levels = tuple(str(v) for v in data.get("levels", ()))
        if data.get("type") not in FACTOR_TYPES or not levels or len(set(levels)) != len(levels):
            raise ModelLoadError(
                f"design input {name!r}: a factor needs a type in {FACTOR_TYPES}, distinct levels"
            )
        reference = data.get("reference")
        if reference is not None and str(reference) not in levels:
            raise ModelLoadError(f"design input {name!r}: reference {reference!r} is not a level")
        unknown = data.get("unknown", "error")
        if unknown not in _UNKNOWN:
            raise ModelLoadError(f"design input {name!r}: unknown must be one of {_UNKNOWN}")
        ref = None if reference is None else str(reference)
        return cls(str(data["name"]), "factor", str(data["type"]), levels, ref, unknown=unknown)


@dataclass(frozen=True)
class DesignColumn:
    """One column of the design matrix: its parameter name and its expression."""

    name: str
    expr: dict[str, Any]


def _check_expr(expr: Any, inputs: Mapping[str, Input], where: str) -> None:
    """ModelLoadError unless ``expr`` is a well-formed expression over ``inputs``."""
    if not isinstance(expr, Mapping) or "op" not in expr:
        raise ModelLoadError(f"{where}: expected an expression object, got {expr!r}")
    op = expr["op"]
    if op in ("col", "level"):
        source = inputs.get(expr.get("input", ""))
        wanted = "numeric" if op == "col" else "factor"
        if source is None or source.kind != wanted:
            raise ModelLoadError(f"{where}: {op!r} needs a {wanted} input, got {expr!r}")
        if op == "level" and str(expr.get("level")) not in source.levels:
            raise ModelLoadError(f"{where}: {expr.get('level')!r} is not a level of {source.name}")
        return
    if op == "const":
        if not isinstance(expr.get("value"), int | float) or isinstance(expr.get("value"), bool):
            raise ModelLoadError(f"{where}: a constant must be a number, got {expr!r}")
        return
    args = expr.get("args")
    arity = 1 if op in UNARY_OPS else 2 if op in BINARY_OPS else None
    if arity is None or not isinstance(args, list) or len(args) != arity:
        raise ModelLoadError(f"{where}: unknown operation or wrong arguments: {expr!r}")
    if op == "pow" and args[1].get("op") != "const":
        raise ModelLoadError(f"{where}: a power's exponent must be a constant, got {expr!r}")
    for arg in args:
        _check_expr(arg, inputs, where)


@dataclass(frozen=True)
class Design:
    """The design of a model fitted on raw columns (see the module docstring)."""

    inputs: tuple[Input, ...]
    columns: tuple[DesignColumn, ...]
    intercept: bool = True
    formula: str | None = None
    terms: tuple[dict[str, Any], ...] = ()
    missing: str = "drop"
    rows_dropped: int = 0
    _by_name: dict[str, Input] = field(init=False, repr=False, compare=False)
    _lookups: dict[str, dict[str, int]] = field(init=False, repr=False, compare=False)
    _value_codes: dict[str, dict[Any, int]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_name = {i.name: i for i in self.inputs}
        if len(by_name) != len(self.inputs):
            raise ModelLoadError("design: an input is named twice")
        for column in self.columns:
            _check_expr(column.expr, by_name, f"design column {column.name!r}")
        if self.missing not in ("drop", "error"):
            raise ModelLoadError(f"design: missing must be 'drop' or 'error', got {self.missing!r}")
        object.__setattr__(self, "_by_name", by_name)
        lookups = {i.name: {lvl: j for j, lvl in enumerate(i.levels)} for i in self.factors}
        object.__setattr__(self, "_lookups", lookups)
        object.__setattr__(self, "_value_codes", {i.name: {} for i in self.factors})

    # --- the manifest's section ---------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "formula": self.formula,
            "intercept": self.intercept,
            "inputs": [i.to_dict() for i in self.inputs],
            "columns": [{"name": c.name, "expr": c.expr} for c in self.columns],
            "terms": [dict(t) for t in self.terms],
            "missing": self.missing,
            "rows_dropped": self.rows_dropped,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Design:
        """The design of a manifest's ``design`` section (ModelLoadError if malformed)."""
        try:
            return cls(
                inputs=tuple(Input.from_dict(i) for i in data["inputs"]),
                columns=tuple(
                    DesignColumn(str(c["name"]), dict(c["expr"])) for c in data["columns"]
                ),
                intercept=bool(data.get("intercept", True)),
                formula=data.get("formula"),
                terms=tuple(dict(t) for t in data.get("terms", ())),
                missing=str(data.get("missing", "drop")),
                rows_dropped=int(data.get("rows_dropped", 0)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelLoadError(f"design: malformed section ({exc!r})") from exc

    # --- what it reads ------------------------------------------------------------------
    @property
    def input_names(self) -> list[str]:
        return [i.name for i in self.inputs]

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def factors(self) -> list[Input]:
        return [i for i in self.inputs if i.kind == "factor"]

    def input(self, name: str) -> Input:
        return self._by_name[name]

    # --- checking and encoding raw columns ----------------------------------------------
    def factor_codes(self, name: str, values: Any, offset: int = 0) -> np.ndarray:
        """The level index (0-based, into ``levels``) of each value of factor ``name``.

        values : array-like of shape (n,): strings, booleans or integers (as the
            factor's ``type``), or a pyarrow string or dictionary array.
        Raises :class:`InputError` naming the row (``offset`` + 1-based), the column,
        the value and the known levels, for a missing value or a level never seen in
        training: an unknown level is never scored as the reference. A factor with
        ``unknown="zero"`` gives such a value the code ``len(levels)`` (no level) and
        warns (:class:`~inference.errors.UnknownLevelWarning`) instead.
        """
        spec = self._by_name[name]
        keys, inverse = _unique_strings(values, spec.type)
        lookup = self._lookups[name]
        key_codes = np.array([lookup.get(k, -1) if k is not None else -2 for k in keys], np.int64)
        codes = key_codes[inverse] if len(keys) else np.empty(0, np.int64)
        bad = np.flatnonzero(codes < 0)
        if bad.size:
            i = int(bad[0])
            message = self._bad_level(name, offset + i + 1, keys[int(inverse[i])], int(bad.size))
            if spec.unknown == "error":
                raise InputError(message)
            codes[bad] = len(spec.levels)
            warnings.warn(
                UnknownLevelWarning(
                    f"{message}; scored as no level (every indicator of {name!r} 0), as "
                    "this model's unknown='zero' says (scikit-learn's handle_unknown='ignore')"
                ),
                stacklevel=2,
            )
        return codes

    def level_code(self, name: str, value: Any) -> int:
        """The level index of one value of factor ``name`` (:meth:`factor_codes` of one
        row, without arrays: a per-value cache makes a known value one dict lookup)."""
        cache = self._value_codes[name]
        key = (type(value), value)
        try:
            return cache[key]
        except (KeyError, TypeError):  # TypeError: an unhashable value
            code = int(self.factor_codes(name, [value])[0])
            levels = self._by_name[name].levels
            # an unknown value is not kept: it warns each time
            if code < len(levels) and len(cache) < 4 * len(levels) + 16:
                with contextlib.suppress(TypeError):  # an unhashable value is not kept
                    cache[key] = code
            return code

    def _bad_level(self, name: str, row: int, key: str | None, count: int) -> str:
        spec = self._by_name[name]
        if key is None:
            return (
                f"row {row}, column {name!r}: a missing value; this model needs a level of "
                f"{name!r} in every row ({count} missing or unknown in this batch)"
            )
        shown = list(spec.levels[:_SHOWN_LEVELS])
        more = (
            f" and {len(spec.levels) - _SHOWN_LEVELS} more"
            if len(spec.levels) > _SHOWN_LEVELS
            else ""
        )
        return (
            f"row {row}, column {name!r}: the value {key!r} is not a level this model knows "
            f"(levels: {shown}{more}); {count} row(s) in this batch have unknown levels"
        )

    def numeric_values(
        self, name: str, values: Any, dtype: np.dtype, offset: int = 0
    ) -> np.ndarray:
        """A numeric input as a 1-D ``dtype`` array: a missing value (None or NaN) is
        the input's ``fill`` when it has one, else an :class:`InputError` naming the
        row and column, as text and booleans are."""
        arr = np.asarray(values)
        if arr.dtype.kind in "USO":
            try:
                arr = np.array([np.nan if v is None else v for v in arr.ravel()], dtype=np.float64)
            except (TypeError, ValueError):
                first = next(v for v in arr.ravel() if not _is_number(v))
                row = int(np.flatnonzero(arr.ravel() == first)[0]) + offset + 1
                raise InputError(
                    f"row {row}, column {name!r}: {first!r} is not a number; this column is "
                    "numeric in the model"
                ) from None
        elif arr.dtype.kind == "b":
            raise InputError(
                f"column {name!r}: holds booleans; this column is numeric in the model"
            )
        elif arr.dtype.kind not in "iuf":
            raise InputError(f"column {name!r}: holds {arr.dtype}; expected numbers")
        out = np.ascontiguousarray(arr.reshape(-1), dtype=dtype)
        missing = np.flatnonzero(np.isnan(out))
        fill = self._by_name[name].fill
        if missing.size and fill is not None:  # the SimpleImputer of an exported pipeline
            out = out.copy()  # never the caller's array
            out[missing] = fill
        elif missing.size:
            raise InputError(
                f"row {int(missing[0]) + offset + 1}, column {name!r}: a missing value (NaN or "
                f"null); this model needs a number in every row ({missing.size} missing in "
                "this batch)"
            )
        return out

    def matrix(
        self, columns: Mapping[str, Any], dtype: Any = np.float64, offset: int = 0
    ) -> np.ndarray:
        """The design matrix ``Z`` of shape (n, len(columns)) in ``dtype``, evaluated in
        numpy from raw ``columns`` (a mapping of input name to a 1-D array-like)."""
        dtype = np.dtype(dtype)
        missing = [n for n in self.input_names if n not in columns]
        if missing:
            raise InputError(f"missing column(s) {missing}; the model reads {self.input_names}")
        values: dict[str, np.ndarray] = {}
        for spec in self.inputs:
            if spec.kind == "numeric":
                values[spec.name] = self.numeric_values(
                    spec.name, columns[spec.name], dtype, offset
                )
            else:
                values[spec.name] = self.factor_codes(spec.name, columns[spec.name], offset)
        return self.matrix_from_codes(values, dtype)

    def matrix_from_codes(
        self, values: Mapping[str, np.ndarray], dtype: Any = np.float64
    ) -> np.ndarray:
        """The design matrix from checked inputs: each numeric input's values and each
        factor's level codes (what :meth:`factor_codes` gives), 1-D arrays of one length."""
        dtype = np.dtype(dtype)
        lengths = {len(v) for v in values.values()}
        if len(lengths) > 1:
            raise InputError(f"columns of different lengths: {sorted(lengths)}")
        n = lengths.pop() if lengths else 0
        Z = np.empty((n, len(self.columns)), dtype=dtype)
        with np.errstate(all="ignore"):  # log(-1) is NaN: the Predictor names the row
            for j, column in enumerate(self.columns):
                Z[:, j] = self._evaluate(column.expr, values, n, dtype)
        return Z

    def _evaluate(
        self, expr: Mapping[str, Any], values: Mapping[str, np.ndarray], n: int, dtype: np.dtype
    ) -> Any:
        op = expr["op"]
        if op == "col":
            return values[expr["input"]]
        if op == "level":
            spec = self._by_name[expr["input"]]
            return (values[spec.name] == spec.levels.index(str(expr["level"]))).astype(dtype)
        if op == "const":
            return dtype.type(expr["value"])
        args = [self._evaluate(a, values, n, dtype) for a in expr["args"]]
        return _OPS[op](*args)


def _is_number(value: Any) -> bool:
    if value is None:
        return True
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return not isinstance(value, str | bool)


_OPS: dict[str, Any] = {
    "neg": np.negative,
    "log": np.log,
    "exp": np.exp,
    "sqrt": np.sqrt,
    "add": np.add,
    "sub": np.subtract,
    "mul": np.multiply,
    "div": np.divide,
    "pow": np.power,
}


def level_string(value: Any, type_: str) -> str | None:
    """How a factor value is written as a level: None for a missing value (None, NaN,
    an empty string, a pandas NA), ``"True"``/``"False"`` for booleans, integers in
    decimal; a value of another kind raises ``ValueError``."""
    if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
        return None
    if type(value).__name__ in ("NAType", "NaTType"):
        return None
    if type_ == "bool":
        if isinstance(value, bool | np.bool_):
            return str(bool(value))
        if isinstance(value, str) and value in ("True", "False"):
            return value
        raise ValueError(f"expected True or False, got {value!r}")
    if type_ == "int":
        if isinstance(value, bool | np.bool_):
            raise ValueError(f"expected an integer, got {value!r}")
        if isinstance(value, int | np.integer):
            return str(int(value))
        if isinstance(value, float | np.floating) and float(value).is_integer():
            return str(int(value))
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return str(int(value))
        raise ValueError(f"expected an integer, got {value!r}")
    if isinstance(value, str):
        return value
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    return str(value)


def _unique_strings(values: Any, type_: str) -> tuple[list[str | None], np.ndarray]:
    """The distinct values of a factor column as level strings, and for each row the
    index of its value: (keys, inverse of shape (n,)). Work is per distinct value, so a
    column of a million rows and fifty levels converts fifty strings."""
    if hasattr(values, "dictionary") and hasattr(values, "indices"):  # pyarrow dictionary
        dictionary = values.dictionary.to_pylist()
        indices = values.indices.to_numpy(zero_copy_only=False)
        valid = ~np.asarray(values.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        keys = [_level_or_error(v, type_) for v in dictionary] + [None]
        inverse = np.where(valid, np.nan_to_num(indices, nan=0), len(dictionary)).astype(np.int64)
        return keys, inverse
    if hasattr(values, "combine_chunks"):  # a pyarrow ChunkedArray
        return _unique_strings(values.combine_chunks(), type_)
    if hasattr(values, "dictionary_encode"):  # a pyarrow array of values
        return _unique_strings(values.dictionary_encode(), type_)
    if hasattr(values, "cat") and hasattr(values.cat, "codes"):  # a pandas categorical
        codes = np.asarray(values.cat.codes, dtype=np.int64)
        categories = list(values.cat.categories)
        keys = [_level_or_error(v, type_) for v in categories] + [None]
        return keys, np.where(codes < 0, len(categories), codes)
    arr = np.asarray(values, dtype=object).reshape(-1)
    if len(arr) > _FACTORIZE_ABOVE:
        try:
            import pandas as pd
        except ImportError:
            pass
        else:  # hashing in C: a million rows in milliseconds
            codes, distinct = pd.factorize(arr, use_na_sentinel=True)
            keys = [_level_or_error(v, type_) for v in distinct] + [None]
            return keys, np.where(codes < 0, len(distinct), codes).astype(np.int64)
    uniques: dict[Any, int] = {}
    inverse = np.empty(len(arr), dtype=np.int64)
    raw: list[Any] = []
    for i, v in enumerate(arr):
        key = ("nan",) if isinstance(v, float) and math.isnan(v) else (type(v) is bool, v)
        j = uniques.get(key)
        if j is None:
            j = uniques[key] = len(raw)
            raw.append(v)
        inverse[i] = j
    return [_level_or_error(v, type_) for v in raw], inverse


def _level_or_error(value: Any, type_: str) -> str | None:
    try:
        return level_string(value, type_)
    except ValueError as exc:
        raise InputError(f"a factor value of the wrong kind: {exc}") from None
