"""The request schemas of a model fitted on raw columns (a design), for the OpenAPI
document (:mod:`inference.serve.openapi`).

Each column the model reads is named with its own schema: a number for a numeric
column (``nullable`` when the model fills its missing values), and for a factor an
``enum`` of its levels (strings; ``true``/``false`` for a factor of booleans,
integers for one of integers), where a column is named: ``/predict``'s records and
columns, ``/invocations``' ``dataframe_records``, ``instances`` and ``inputs``, and
V2's input tensors (one per column, ``BYTES`` for a factor, whose data are the
levels as text). A factor whose unknown values score as no level
(``unknown: "zero"``) takes any value: its levels are in the description, not an
enum. ``dataframe_split``'s rows are positional, so their values are any number,
text or boolean.
"""

from __future__ import annotations

from typing import Any

from inference.design import Input
from inference.intervals import KINDS
from inference.serve.design_tensors import BYTES, tensor_datatype
from inference.serve.openapi_schemas import infer_request, level_schema, mlflow_request
from inference.serve.registry import LoadedModel
from inference.serve.tensors import DATATYPES

__all__ = ["design_schemas", "value_schema"]

_INTEGERS = [d for d, t in DATATYPES.items() if t.kind in "iu"]


def value_schema(spec: Input, number: dict[str, Any]) -> dict[str, Any]:
    """The JSON schema of one value of the column ``spec``."""
    if spec.kind == "numeric":
        return {**number, "nullable": True} if spec.fill is not None else dict(number)
    levels: list[Any] = list(spec.levels)
    if spec.type == "bool":
        schema: dict[str, Any] = {"type": "boolean"}
        levels = [level == "True" for level in levels]
    elif spec.type == "int":
        schema = {"type": "integer"}
        levels = [int(level) for level in levels]
    else:
        schema = {"type": "string"}
    if spec.unknown == "zero":  # any value scores (as no level): not an enum
        shown = ", ".join(map(str, spec.levels))
        return {**schema, "nullable": True, "description": f"levels: {shown} (others: none)"}
    return {**schema, "enum": levels}


def _example(spec: Input) -> Any:
    if spec.kind == "numeric":
        return 1.0
    level = spec.levels[0]
    return level == "True" if spec.type == "bool" else int(level) if spec.type == "int" else level


def _tensor(spec: Input, datatype: str, value: dict[str, Any]) -> dict[str, Any]:
    """V2's JSON tensor of one column."""
    if spec.kind == "factor":  # BYTES data are the levels as text
        text = {"type": "string", "nullable": True}
        if spec.unknown == "error":
            text["enum"] = list(spec.levels)
        item: dict[str, Any] = {"anyOf": [text, value]} if spec.type == "int" else text
        datatypes = [BYTES, *(_INTEGERS if spec.type == "int" else [])]
        example: Any = spec.levels[0]
    else:
        item, datatypes, example = {**value, "nullable": True}, list(DATATYPES), 1.0
    return {
        "type": "object",
        "properties": {
            "name": {"type": "string", "enum": [spec.name]},
            "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
            "datatype": {"type": "string", "enum": datatypes},
            "data": {"type": "array", "items": {"anyOf": [item, {"type": "array", "items": item}]}},
            "parameters": {"type": "object"},
        },
        "required": ["name", "shape", "datatype"],
        "example": {"name": spec.name, "shape": [1], "datatype": datatype, "data": [example]},
    }


def design_schemas(model: LoadedModel, strict: bool) -> dict[str, Any]:
    """The request schemas of a design model's endpoints (``predict``, ``infer``,
    ``mlflow``); with ``strict`` (``--strict-columns``), records admit no other names."""
    p = model.predictor
    design = p.design
    assert design is not None
    number = {"type": "number", "format": "float" if p.dtype.itemsize == 4 else "double"}
    names = design.input_names
    values = {s.name: value_schema(s, number) for s in design.inputs}
    record: dict[str, Any] = {
        "type": "object",
        "description": f"one row of {model.name}: {', '.join(names)}",
        "properties": values,
        "required": names,
        "example": {s.name: _example(s) for s in design.inputs},
    }
    columns: dict[str, Any] = {
        "type": "object",
        "properties": {n: {"type": "array", "items": v} for n, v in values.items()},
        "required": names,
    }
    if strict:
        record["additionalProperties"] = False
        columns["additionalProperties"] = False
    inputs = {"anyOf": [record, {"type": "array", "items": record}, columns]}
    wrapped = {
        "type": "object",
        "properties": {
            "inputs": inputs,
            "interval": {"type": "string", "enum": list(KINDS)},
            "level": level_schema(),
        },
        "required": ["inputs"],
        "additionalProperties": False,
    }
    cell = {"anyOf": [{"type": "number"}, {"type": "string"}, {"type": "boolean"}]}
    k = len(names)
    rows = {
        "type": "array",
        "items": {"type": "array", "items": {**cell, "nullable": True}, "minItems": k},
    }
    tensors = [
        _tensor(s, tensor_datatype(design, s.name, p.dtype), values[s.name]) for s in design.inputs
    ]
    infer = infer_request({"anyOf": tensors})
    infer["properties"]["inputs"]["minItems"] = k
    example_row = [_example(s) for s in design.inputs]
    return {
        "predict": {"anyOf": [*inputs["anyOf"], wrapped]},
        "infer": infer,
        "mlflow": mlflow_request(names, record, rows, inputs, example_row),
    }
