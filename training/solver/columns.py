"""A fitted scikit-learn pipeline that encodes raw columns, written as a :class:`Design`.

``Pipeline([("prep", ColumnTransformer([...])), ("model", LinearRegressionSGD())])``
reads a table (text and numbers, with gaps) and feeds the linear model the
transformer's output columns. Each of those columns is an expression of one raw
column, which :class:`~inference.design.Design` states and the export compiles into
the ONNX graph (:mod:`training.export.design_graph`), so the exported model reads the
raw columns as the pipeline does, and its parameters and statistics are the linear
model's on the transformer's columns:

=========================  =================================================================
``OneHotEncoder``          the column is a factor, its levels ``categories_``; one ``level``
                           column per category but the dropped one (``drop="first"``,
                           ``"if_binary"`` or a list: that category is the reference;
                           ``drop=None``: no reference). ``handle_unknown="ignore"``: the
                           factor's ``unknown`` is ``"zero"``, below
``SimpleImputer``          the numeric column's ``fill`` is ``statistics_`` (mean, median,
                           most frequent or constant; ``missing_values`` NaN)
``StandardScaler``,        ``(x - center) / scale`` (``x * scale_ + min_`` for MinMaxScaler),
``RobustScaler``,          each part only when enabled, on whatever the column is by then
``MaxAbsScaler``,
``MinMaxScaler``
``"passthrough"``          the column as it is; ``"drop"``: no column
``Pipeline``               its steps in turn (an imputer first, then scalers)
=========================  =================================================================

A ``ColumnTransformer`` comes first (its ``remainder`` included); scalers may follow it
in the outer pipeline; a pipeline without one reads every column. Anything else (a
``PolynomialFeatures``, a ``FunctionTransformer``, an ``OrdinalEncoder``, a subclass of
the classes above, a categorical imputer, infrequent categories, a category that is a
missing value) raises :class:`UnsupportedModelError` naming the step.

**Unknown levels.** scikit-learn's ``handle_unknown="ignore"`` encodes a category not
seen in training (a missing value included) as all-zero indicators. Our models refuse
such a value unless their design says otherwise, so an encoder that asked for it is
exported with ``unknown: "zero"`` on its factor, recorded in the manifest: the
Predictor and the graph score such a value as the pipeline does (no level's
coefficient; the reference level's prediction when a category was dropped), and the
Predictor warns (:class:`~inference.errors.UnknownLevelWarning`).
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    MaxAbsScaler,
    MinMaxScaler,
    OneHotEncoder,
    RobustScaler,
    StandardScaler,
)
from sklearn.utils.validation import check_is_fitted

from inference.design import Design, DesignColumn, Input, level_string
from training.errors import UnsupportedModelError
from training.solver.estimator import LinearRegressionSGD

__all__ = ["COLUMNS_RTOL", "ColumnModel", "column_model", "is_column_pipeline"]

#: the design's columns must equal the pipeline's transform to this relative error
COLUMNS_RTOL = 1e-12
SUPPORTED = (
    "a ColumnTransformer of OneHotEncoder, SimpleImputer, StandardScaler, MinMaxScaler, "
    "MaxAbsScaler, RobustScaler, 'passthrough', 'drop' or a Pipeline of them, then "
    "LinearRegressionSGD"
)
_ENCODING = (ColumnTransformer, SimpleImputer, OneHotEncoder)
_SCALERS = (StandardScaler, MinMaxScaler, MaxAbsScaler, RobustScaler)


def is_column_pipeline(model: Any) -> bool:
    """Whether ``model`` is a ``Pipeline`` that encodes raw columns (a
    ``ColumnTransformer``, ``SimpleImputer`` or ``OneHotEncoder`` among its steps, at
    any depth): exported through a :class:`Design`, not folded into one linear map."""
    if isinstance(model, _ENCODING):
        return True
    if isinstance(model, Pipeline):
        return any(is_column_pipeline(step) for _, step in model.steps)
    return False


def _col(name: str) -> dict[str, Any]:
    return {"op": "col", "input": name}


def _const(value: Any) -> dict[str, Any]:
    return {"op": "const", "value": float(value)}


@dataclass
class _Walk:
    """The raw columns as they are read, and what the steps said about them."""

    names: list[str]
    fills: dict[str, float] = field(default_factory=dict)
    factors: dict[str, Input] = field(default_factory=dict)

    def refuse(self, where: str, step: Any, why: str = "") -> UnsupportedModelError:
        kind = type(step)
        what = f"{kind.__name__} ({kind.__module__}.{kind.__qualname__})"
        return UnsupportedModelError(
            f"export: {where} is {what}{': ' + why if why else ''}; it cannot be written as "
            f"the design's columns. Supported: {SUPPORTED}"
        )

    def raw(self, columns: Sequence[dict[str, Any]], where: str, step: Any) -> list[str]:
        """The raw column each of ``columns`` still is (refused after another step)."""
        if any(c["op"] != "col" for c in columns):
            raise self.refuse(where, step, "it must read the raw columns (put it first)")
        return [str(c["input"]) for c in columns]

    def apply(self, step: Any, columns: list[dict[str, Any]], where: str) -> list[dict[str, Any]]:
        """The columns after ``step`` (fitted), each an expression of raw columns."""
        if step is None or _is_str(step, "passthrough"):
            return columns
        if _is_str(step, "drop"):
            return []
        if isinstance(step, str):
            raise UnsupportedModelError(f"export: {where} is {step!r}; expected {SUPPORTED}")
        check_is_fitted(step)
        if type(step) is Pipeline:
            for name, inner in step.steps:
                columns = self.apply(inner, columns, f"{where}, step {name!r}")
            return columns
        if type(step) is ColumnTransformer:
            return self.column_transformer(step, columns, where)
        if type(step) is SimpleImputer:
            return self.imputer(step, columns, where)
        if type(step) is OneHotEncoder:
            return self.one_hot(step, columns, where)
        if type(step) in _SCALERS:
            if int(step.n_features_in_) != len(columns):
                raise self.refuse(where, step, f"fitted on {step.n_features_in_} columns")
            return [_scaled(step, j, c, self, where) for j, c in enumerate(columns)]
        raise self.refuse(where, step)

    def column_transformer(
        self, ct: ColumnTransformer, columns: list[dict[str, Any]], where: str
    ) -> list[dict[str, Any]]:
        self.raw(columns, where, ct)
        indices = getattr(ct, "_transformer_to_input_indices", None)
        if not isinstance(indices, dict):
            raise self.refuse(where, ct, "this scikit-learn does not say which columns it read")
        # the fitted list holds an identity FunctionTransformer for "passthrough"
        given = {name: t for name, t, _ in ct.transformers} | {"remainder": ct.remainder}
        out: list[dict[str, Any]] = []
        for name, fitted, _ in ct.transformers_:
            transformer = "passthrough" if _is_str(given.get(name), "passthrough") else fitted
            chosen = [columns[i] for i in indices.get(name, [])]
            if chosen and not _is_str(transformer, "drop"):
                out += self.apply(transformer, chosen, f"the ColumnTransformer's {name!r}")
        return out

    def imputer(
        self, imp: SimpleImputer, columns: list[dict[str, Any]], where: str
    ) -> list[dict[str, Any]]:
        names = self.raw(columns, where, imp)
        if not (isinstance(imp.missing_values, float) and math.isnan(imp.missing_values)):
            raise self.refuse(where, imp, f"missing_values={imp.missing_values!r} (not NaN)")
        if imp.add_indicator:
            raise self.refuse(where, imp, "add_indicator=True")
        for name, value in zip(names, imp.statistics_, strict=True):
            if isinstance(value, str | bool | np.bool_) or not np.isfinite(float(value)):
                raise self.refuse(
                    where,
                    imp,
                    f"column {name!r} is filled with {value!r}; only numeric "
                    "columns can be imputed (a factor's missing value has no level)",
                )
            if self.fills.setdefault(name, float(value)) != float(value):
                raise self.refuse(where, imp, f"column {name!r} is imputed twice, differently")
        return columns

    def one_hot(
        self, enc: OneHotEncoder, columns: list[dict[str, Any]], where: str
    ) -> list[dict[str, Any]]:
        names = self.raw(columns, where, enc)
        if enc.min_frequency is not None or enc.max_categories is not None:
            raise self.refuse(where, enc, "infrequent categories (min_frequency, max_categories)")
        if enc.handle_unknown not in ("error", "ignore"):
            raise self.refuse(where, enc, f"handle_unknown={enc.handle_unknown!r}")
        out = []
        for i, name in enumerate(names):
            drop = None if enc.drop_idx_ is None else enc.drop_idx_[i]
            spec = _factor(name, list(enc.categories_[i]), drop, enc.handle_unknown, where)
            if name in self.fills:
                raise self.refuse(
                    where,
                    enc,
                    f"column {name!r} is imputed first (a factor's missing value has no level)",
                )
            if self.factors.setdefault(name, spec) != spec:
                raise self.refuse(where, enc, f"column {name!r} is encoded twice, differently")
            out += [{"op": "level", "input": name, "level": lvl} for lvl in _kept(spec, drop)]
        return out


def _is_str(value: Any, text: str) -> bool:
    return isinstance(value, str) and value == text


def _kept(spec: Input, drop: Any) -> list[str]:
    """The levels with a column, in the encoder's order."""
    return [lvl for lvl in spec.levels if drop is None or lvl != spec.reference]


def _factor(name: str, categories: list[Any], drop: Any, unknown: str, where: str) -> Input:
    """The factor of an encoder's column: its categories as level strings."""
    if any(c is None or (isinstance(c, float) and math.isnan(c)) for c in categories):
        raise UnsupportedModelError(
            f"export: {where} learned a missing value as a category of column {name!r}; our "
            "models have no level for a missing value: drop those rows before fitting"
        )
    if all(isinstance(c, bool | np.bool_) for c in categories):
        type_ = "bool"
    elif all(isinstance(c, int | np.integer) for c in categories) or all(
        isinstance(c, float | np.floating) and float(c).is_integer() for c in categories
    ):
        type_ = "int"
    elif all(isinstance(c, str) for c in categories):
        type_ = "str"
    else:
        raise UnsupportedModelError(
            f"export: {where}: the categories of column {name!r} ({categories[:5]}...) are "
            "not all text, all booleans or all integers"
        )
    levels = [str(level_string(c, type_)) for c in categories]
    reference = None if drop is None else levels[int(drop)]
    ordered = levels if reference is None else [reference, *(v for v in levels if v != reference)]
    mode = "zero" if unknown == "ignore" else "error"
    return Input(name, "factor", type_, tuple(ordered), reference, unknown=mode)


def _scaled(scaler: Any, j: int, expr: dict[str, Any], walk: _Walk, where: str) -> dict[str, Any]:
    """Column ``j`` through an affine scaler, in the order of its own arithmetic."""
    kind = type(scaler)
    if kind is MinMaxScaler:
        if scaler.clip:
            raise walk.refuse(where, scaler, "clip=True is not affine")
        scaled = {"op": "mul", "args": [expr, _const(scaler.scale_[j])]}
        return {"op": "add", "args": [scaled, _const(scaler.min_[j])]}
    if kind is MaxAbsScaler:
        return {"op": "div", "args": [expr, _const(scaler.scale_[j])]}
    if kind is StandardScaler:
        center = scaler.mean_ if scaler.with_mean else None
        scale = scaler.scale_ if scaler.with_std else None
    else:
        center = scaler.center_ if scaler.with_centering else None
        scale = scaler.scale_ if scaler.with_scaling else None
    if center is not None:
        expr = {"op": "sub", "args": [expr, _const(center[j])]}
    if scale is not None:
        expr = {"op": "div", "args": [expr, _const(scale[j])]}
    return expr


@dataclass
class ColumnModel:
    """A column pipeline as a design: what :meth:`TrainingRun.from_estimator` needs.

    ``estimator``: the pipeline's final ``LinearRegressionSGD`` (a copy that takes plain
    arrays); ``Z``: (n, p) float64, the pipeline's transform of the training rows;
    ``raw``: the raw columns the design reads (a DataFrame); ``reference``: the
    pipeline's own ``predict`` on such a DataFrame, (n,) float64.
    """

    design: Design
    estimator: LinearRegressionSGD
    Z: np.ndarray
    raw: Any
    steps: list[str]
    imputed: dict[str, int]
    reference: Callable[[Any], np.ndarray]


def _input_names(pipeline: Pipeline, X: Any) -> tuple[list[str], bool]:
    """The raw columns' names (``x0, x1, ...`` for a pipeline fitted on an array) and
    whether the pipeline reads them by name."""
    first = next(s for _, s in pipeline.steps if s not in (None, "passthrough"))
    names = getattr(first, "feature_names_in_", None)
    if names is not None:
        return [str(n) for n in names], True
    width = int(getattr(first, "n_features_in_", np.shape(X)[1]))
    return [f"x{i}" for i in range(width)], False


def _build(pipeline: Pipeline, names: list[str]) -> tuple[Design, LinearRegressionSGD, list[str]]:
    steps = [(n, s) for n, s in pipeline.steps if s not in (None, "passthrough")]
    final = steps[-1][1] if steps else None
    if not isinstance(final, LinearRegressionSGD):
        raise UnsupportedModelError(
            f"export: the Pipeline ends with {type(final).__name__}, not LinearRegressionSGD; "
            f"expected {SUPPORTED}"
        )
    check_is_fitted(final)
    walk = _Walk(names)
    columns = [_col(n) for n in names]
    for name, step in steps[:-1]:
        columns = walk.apply(step, columns, f"the Pipeline's step {name!r}")
    if len(columns) != int(final.n_features_in_):
        raise UnsupportedModelError(
            f"export: the steps give {len(columns)} columns, the model was fitted on "
            f"{final.n_features_in_}"
        )
    try:
        labels = [str(n) for n in pipeline[:-1].get_feature_names_out()]
    except (AttributeError, ValueError, TypeError):
        labels = [f"z{j}" for j in range(len(columns))]
    used = [n for n in names if any(_reads(c, n) for c in columns)]
    clash = [n for n in used if n in walk.factors and any(_reads(c, n, "col") for c in columns)]
    if clash:
        raise UnsupportedModelError(
            f"export: column(s) {clash} are read both as a factor (OneHotEncoder) and as "
            "numbers; a column is one or the other"
        )
    inputs = tuple(walk.factors.get(n) or Input(n, "numeric", fill=walk.fills.get(n)) for n in used)
    terms = tuple(
        {"name": n, "columns": [j for j, c in enumerate(columns) if _reads(c, n)], "factors": [n]}
        for n in used
    )
    design = Design(
        inputs,
        tuple(DesignColumn(label, c) for label, c in zip(labels, columns, strict=True)),
        intercept=bool(final.fit_intercept),
        terms=terms,
        missing="error",
    )
    return design, final, [repr(s) for _, s in steps[:-1]]


def _reads(expr: dict[str, Any], name: str, op: str | None = None) -> bool:
    if expr["op"] in ("col", "level") and expr["input"] == name:
        return op is None or expr["op"] == op
    return any(_reads(a, name, op) for a in expr.get("args", ()))


def column_model(pipeline: Pipeline, X: Any) -> ColumnModel:
    """The design of a fitted column pipeline (see the module docstring), checked
    against the pipeline's own transform of ``X``, its training rows (a DataFrame, or
    an array when it was fitted on one), to :data:`COLUMNS_RTOL`.

    Raises :class:`UnsupportedModelError` naming the step that cannot be written as
    design columns, and scikit-learn's ``NotFittedError`` for an unfitted pipeline.
    """
    import pandas as pd

    names, by_name = _input_names(pipeline, X)
    design, final, steps = _build(pipeline, names)
    if by_name and hasattr(X, "columns"):
        frame = X
    else:
        frame = pd.DataFrame(np.asarray(X, dtype=object), columns=names).infer_objects()
    raw = frame[design.input_names].reset_index(drop=True)
    reference = _Reference(pipeline, names, by_name, design)
    Z = _transform(pipeline, X)
    ours = design.matrix({n: raw[n] for n in design.input_names})
    err = np.abs(ours - Z) / (1.0 + np.abs(Z))
    if not float(err.max(initial=0.0)) <= COLUMNS_RTOL:
        j = int(np.argmax(err.max(axis=0)))
        raise UnsupportedModelError(
            f"export: the design's column {design.columns[j].name!r} differs from the "
            f"pipeline's transform by {float(err[:, j].max()):.3g}, above {COLUMNS_RTOL:g}"
        )
    estimator = copy.deepcopy(final)
    if hasattr(estimator, "feature_names_in_"):
        del estimator.feature_names_in_
    imputed = {
        spec.name: int(pd.isna(raw[spec.name]).sum())
        for spec in design.inputs
        if spec.fill is not None
    }
    return ColumnModel(design, estimator, Z, raw, steps, imputed, reference)


def _transform(pipeline: Pipeline, X: Any) -> np.ndarray:
    Z = pipeline[:-1].transform(X)
    Z = Z.toarray() if hasattr(Z, "toarray") else np.asarray(Z)
    return np.asarray(Z, dtype=np.float64)


@dataclass
class _Reference:
    """The pipeline's ``predict`` on a DataFrame of the design's raw columns: the
    columns it does not read are filled with missing values, booleans given as the
    level strings "True"/"False" are booleans again, and its warning about unknown
    categories is silenced (the design says how they score)."""

    pipeline: Pipeline
    names: list[str]
    by_name: bool
    design: Design

    def __call__(self, frame: Any) -> np.ndarray:
        import pandas as pd

        full = pd.DataFrame(index=range(len(frame)))
        for name in self.names:
            values = frame[name].to_numpy() if name in frame else np.full(len(frame), np.nan)
            spec = self.design.input(name) if name in frame else None
            if spec is not None and spec.type == "bool":
                values = np.array([{"True": True, "False": False}.get(v, v) for v in values])
            full[name] = values
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Found unknown categories")
            out = self.pipeline.predict(full if self.by_name else full.to_numpy(dtype=object))
        return np.asarray(out, dtype=np.float64)
