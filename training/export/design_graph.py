"""The ONNX graph of a model fitted on raw columns: the encoding inside, one input per column.

Each raw column is a named input of shape ``(batch,)``: a float tensor for a number,
a string tensor for text and booleans (``"True"``/``"False"``), an int64 tensor for an
integer factor, as skl2onnx does for a ``ColumnTransformer``. A factor is mapped to
its level's index by ``ai.onnx.ml.LabelEncoder``; a value that is not a level maps
past the end of every table, so the graph fails on it instead of scoring the
reference level (the Predictor names the row before that can happen). A factor whose
design says ``unknown: "zero"`` (an exported ``OneHotEncoder(handle_unknown="ignore")``)
has one more entry, 0, at the end of each of its tables instead: such a value adds
nothing, and its ``Equal`` indicators are 0. A numeric input with a ``fill`` (an
exported ``SimpleImputer``) is read through ``Where(IsNaN(x), fill, x)``.

The prediction is the intercept plus one contribution per group of design columns:

- numeric columns (expressions of numeric inputs): stacked and multiplied by their
  coefficients in one ``Gemm``;
- the columns of one factor times one expression (a main effect, or a factor's
  interaction with numeric terms): ``Gather`` of a table of the level coefficients
  (0 for the reference), times the expression: one pass over the rows, whatever the
  number of levels;
- anything else (an interaction of two factors): each column evaluated (``Equal``,
  ``Cast``, ``Mul``) and multiplied by its coefficient.

The graph has no timestamps: the same model gives the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from inference import __version__ as package_version
from inference.design import Design
from inference.manifest import OUTPUT_NAME
from training.export.graph import IR_VERSION, OPSET

__all__ = ["ML_OPSET", "build_design_onnx", "input_types"]

#: ai.onnx.ml's opset for LabelEncoder with int64 values and a default
ML_OPSET = 3
_FLOATS = {"float32": TensorProto.FLOAT, "float64": TensorProto.DOUBLE}
_UNARY = {"neg": "Neg", "log": "Log", "exp": "Exp", "sqrt": "Sqrt"}
_BINARY = {"add": "Add", "sub": "Sub", "mul": "Mul", "div": "Div", "pow": "Pow"}


def input_types(design: Design, dtype: str) -> dict[str, int]:
    """The ONNX element type of each raw input: ``dtype`` for numbers, STRING for text
    and boolean factors, INT64 for integer factors."""
    types = {}
    for spec in design.inputs:
        if spec.kind == "numeric":
            types[spec.name] = _FLOATS[dtype]
        else:
            types[spec.name] = TensorProto.INT64 if spec.type == "int" else TensorProto.STRING
    return types


class _Builder:
    """Nodes and initializers, with unique names."""

    def __init__(self, design: Design, dtype: str) -> None:
        self.design = design
        self.np_dtype = np.dtype(dtype)
        self.onnx_dtype = _FLOATS[dtype]
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.count = 0
        self.codes: dict[str, str] = {}
        self.filled: dict[str, str] = {}

    def name(self, hint: str) -> str:
        self.count += 1
        return f"{hint}_{self.count}"

    def const(self, value: Any, hint: str = "c", dtype: Any = None) -> str:
        name = self.name(hint)
        array = np.asarray(value, dtype=dtype or self.np_dtype)
        self.inits.append(numpy_helper.from_array(array, name))
        return name

    def node(self, op: str, inputs: Sequence[str], hint: str, **attrs: Any) -> str:
        out = self.name(hint)
        domain = "ai.onnx.ml" if op == "LabelEncoder" else ""
        self.nodes.append(
            helper.make_node(op, list(inputs), [out], name=out, domain=domain, **attrs)
        )
        return out

    def factor_codes(self, input_name: str) -> str:
        """The level index of each row (past the last level for an unknown value)."""
        if input_name not in self.codes:
            spec = self.design.input(input_name)
            keys = "keys_int64s" if spec.type == "int" else "keys_strings"
            levels: list[Any] = (
                [int(v) for v in spec.levels] if spec.type == "int" else list(spec.levels)
            )
            self.codes[input_name] = self.node(
                "LabelEncoder",
                [input_name],
                f"{input_name}_codes",
                **{keys: levels},
                values_int64s=list(range(len(levels))),
                default_int64=len(levels),
            )
        return self.codes[input_name]

    def numeric_input(self, input_name: str) -> str:
        """The input, its missing values replaced by the input's ``fill`` if it has one."""
        fill = self.design.input(input_name).fill
        if fill is None:
            return input_name
        if input_name not in self.filled:
            isnan = self.node("IsNaN", [input_name], f"{input_name}_isnan")
            self.filled[input_name] = self.node(
                "Where", [isnan, self.const(fill, "fill"), input_name], f"{input_name}_filled"
            )
        return self.filled[input_name]

    def table_size(self, input_name: str) -> int:
        """Entries of a factor's tables: its levels, and a 0 for an unknown value when
        the design scores it as no level."""
        spec = self.design.input(input_name)
        return len(spec.levels) + int(spec.unknown == "zero")

    def expression(self, expr: dict[str, Any]) -> str:
        op = expr["op"]
        if op == "col":
            return self.numeric_input(str(expr["input"]))
        if op == "const":
            return self.const(expr["value"])
        if op == "level":
            spec = self.design.input(expr["input"])
            codes = self.factor_codes(spec.name)
            index = self.const(spec.levels.index(str(expr["level"])), "level", np.int64)
            hit = self.node("Equal", [codes, index], "is_level")
            return self.node("Cast", [hit], "indicator", to=self.onnx_dtype)
        args = [self.expression(a) for a in expr["args"]]
        if op in _UNARY:
            return self.node(_UNARY[op], args, op)
        return self.node(_BINARY[op], args, op)


def _split_level(expr: dict[str, Any]) -> tuple[str, str, dict[str, Any] | None] | None:
    """``(factor, level, rest)`` when ``expr`` is one level indicator, alone (rest None)
    or multiplied by an expression free of levels; None otherwise."""
    if expr["op"] == "level":
        return expr["input"], str(expr["level"]), None
    if expr["op"] != "mul":
        return None
    left, right = expr["args"]
    for a, b in ((left, right), (right, left)):
        if a["op"] == "level" and not _has_level(b):
            return a["input"], str(a["level"]), b
    return None


def _has_level(expr: dict[str, Any]) -> bool:
    return expr["op"] == "level" or any(_has_level(a) for a in expr.get("args", ()))


def _contributions(b: _Builder, coef: np.ndarray) -> list[str]:
    design = b.design
    numeric: list[int] = []
    tables: dict[tuple[str, str], tuple[dict[str, Any] | None, np.ndarray]] = {}
    others: list[int] = []
    for j, column in enumerate(design.columns):
        split = _split_level(column.expr)
        if not _has_level(column.expr):
            numeric.append(j)
        elif split is not None:
            factor, level, rest = split
            key = (factor, json.dumps(rest, sort_keys=True))
            if key not in tables:
                tables[key] = (rest, np.zeros(b.table_size(factor), b.np_dtype))
            tables[key][1][design.input(factor).levels.index(level)] = coef[j]
        else:
            others.append(j)
    parts: list[str] = []
    if numeric:
        axis = b.const([1], "axis", np.int64)
        stacked = [
            b.node("Unsqueeze", [b.expression(design.columns[j].expr), axis], "col")
            for j in numeric
        ]
        matrix = stacked[0] if len(stacked) == 1 else b.node("Concat", stacked, "numeric", axis=1)
        weight = b.const(np.asarray(coef[numeric]).reshape(1, -1), "weight")
        row = b.node("Gemm", [weight, matrix], "numeric_row", transB=1)
        parts.append(b.node("Reshape", [row, b.const([-1], "flat", np.int64)], "numeric_part"))
    for (factor, _), (rest, table) in tables.items():
        # an unknown value gathers one entry past the last level: out of range, or a 0
        gathered = b.node("Gather", [b.const(table, "table"), b.factor_codes(factor)], "gather")
        parts.append(
            gathered if rest is None else b.node("Mul", [gathered, b.expression(rest)], "term")
        )
    for j in others:
        value = b.expression(design.columns[j].expr)
        parts.append(b.node("Mul", [value, b.const(coef[j], "w")], "term"))
    for spec in design.factors:  # a factor seen only in two-factor interactions still refuses
        if spec.unknown == "error" and not any(key[0] == spec.name for key in tables):
            guard = b.const(np.zeros(len(spec.levels), b.np_dtype), "guard")
            parts.append(b.node("Gather", [guard, b.factor_codes(spec.name)], "guard"))
    return parts


def build_design_onnx(
    design: Design,
    coef: np.ndarray,
    intercept: float,
    *,
    target: str,
    dtype: str = "float32",
    name: str = "linreg",
) -> onnx.ModelProto:
    """ONNX model computing ``Z(columns) @ coef + intercept`` from raw columns.

    coef : (n_design_columns,) float, in the design's column order. One input per
    raw column (:func:`input_types`), each of shape ``(batch,)``; output ``prediction``
    ``(batch,)`` of ``dtype``. The design itself is in ``metadata_props``
    (``linreg.design``), with the target and dtype.
    """
    b = _Builder(design, dtype)
    coef = np.asarray(coef, dtype=np.float64)
    parts = _contributions(b, coef)
    total = b.const([intercept], "bias")
    for part in parts:
        total = b.node("Add", [part, total], "sum")
    b.nodes.append(helper.make_node("Identity", [total], [OUTPUT_NAME], name="prediction"))
    types = input_types(design, dtype)
    graph = helper.make_graph(
        b.nodes,
        name,
        [helper.make_tensor_value_info(n, types[n], ["batch"]) for n in design.input_names],
        [helper.make_tensor_value_info(OUTPUT_NAME, b.onnx_dtype, ["batch"])],
        b.inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid("ai.onnx.ml", ML_OPSET)],
        producer_name="linreg-onnx",
        producer_version=package_version,
        doc_string=f"Linear regression of {target} on {', '.join(design.input_names)}",
    )
    model.ir_version = IR_VERSION
    helper.set_model_props(
        model,
        {
            "linreg.features": json.dumps(design.input_names),
            "linreg.target": target,
            "linreg.dtype": dtype,
            "linreg.name": name,
            "linreg.design": json.dumps(design.to_dict(), sort_keys=True),
        },
    )
    onnx.checker.check_model(model, full_check=True)
    return model
