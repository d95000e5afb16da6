"""The graph of a design model with its factors' lookups done outside: codes in, not text.

A design model's ``model.onnx`` maps each factor's text to its level index with an
``ai.onnx.ml.LabelEncoder``. ONNX Runtime turns every string of the batch into a
``std::string`` and hashes it; the Predictor and the batch job instead look each
*distinct* value up once (a million rows of fifty levels: fifty lookups) and name the
rows whose value is not a level. :func:`codes_graph` rewrites the model's bytes so
that the session they feed takes those level indices directly: each factor's
LabelEncoder is removed, its input becomes an INT64 tensor of codes, and nothing
else changes. It first checks that each LabelEncoder maps exactly the manifest's
levels to ``0, 1, …`` (and anything else past the last level), so the rewritten
graph computes what ``model.onnx`` computes, on the rows whose values are levels.

It works on protobuf's wire format (:mod:`inference.protobuf_wire`), without the
``onnx`` package, which the runtime does not depend on.
"""

from __future__ import annotations

from collections.abc import Iterable

from inference.design import Design
from inference.errors import ModelLoadError
from inference.protobuf_wire import (
    FIXED32,
    FIXED64,
    LEN,
    VARINT,
    Field,
    Malformed,
    parse,
    read_varint,
    text,
    to_int64,
)

__all__ = ["codes_graph"]

# Field numbers of onnx.proto.
_MODEL_GRAPH = 7
_GRAPH_NODE, _GRAPH_INPUT = 1, 11
_NODE_INPUT, _NODE_OUTPUT, _NODE_OP, _NODE_ATTR, _NODE_DOMAIN = 1, 2, 4, 5, 7
_ATTR_NAME, _ATTR_I, _ATTR_INTS, _ATTR_STRINGS = 1, 3, 8, 9
_VALUE_NAME, _VALUE_TYPE = 1, 2
_TYPE_TENSOR, _TENSOR_ELEM = 1, 1
_INT64 = 7


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _encode(fields: Iterable[Field]) -> bytes:
    """Fields back to bytes: the inverse of :func:`inference.protobuf_wire.parse`."""
    out = bytearray()
    for number, wire, value in fields:
        out += _varint(number << 3 | wire)
        if wire == VARINT:
            out += _varint(int(value))  # type: ignore[arg-type]
        elif wire == LEN:
            payload = bytes(value)  # type: ignore[arg-type]
            out += _varint(len(payload)) + payload
        elif wire in (FIXED64, FIXED32):
            out += int(value).to_bytes(8 if wire == FIXED64 else 4, "little")  # type: ignore[arg-type]
    return bytes(out)


def _strings(fields: list[Field], number: int) -> list[str]:
    return [bytes(v).decode("utf-8") for f, w, v in fields if f == number and w == LEN]  # type: ignore[arg-type]


def _ints(fields: list[Field], number: int) -> list[int]:
    """A repeated int64 field, packed or not."""
    values: list[int] = []
    for field, wire, value in fields:
        if field != number:
            continue
        if wire == VARINT:
            values.append(to_int64(int(value)))  # type: ignore[arg-type]
        elif wire == LEN:
            buf, pos = value, 0  # type: ignore[assignment]
            while pos < len(buf):  # type: ignore[arg-type]
                item, pos = read_varint(buf, pos, len(buf))  # type: ignore[arg-type]
                values.append(to_int64(item))
    return values


def _attributes(node: list[Field]) -> dict[str, list[Field]]:
    attrs = {}
    for field, wire, value in node:
        if field == _NODE_ATTR and wire == LEN:
            attr = parse(value, "AttributeProto")  # type: ignore[arg-type]
            names = _strings(attr, _ATTR_NAME)
            attrs[names[-1] if names else ""] = attr
    return attrs


def _check_encoder(node: list[Field], design: Design, name: str) -> None:
    """ModelLoadError unless the LabelEncoder maps exactly the factor's levels."""
    spec = design.input(name)
    attrs = _attributes(node)
    if spec.type == "int":
        keys: list[str] = [str(k) for k in _ints(attrs.get("keys_int64s", []), _ATTR_INTS)]
    else:
        keys = _strings(attrs.get("keys_strings", []), _ATTR_STRINGS)
    values = _ints(attrs.get("values_int64s", []), _ATTR_INTS)
    default = _ints(attrs.get("default_int64", []), _ATTR_I)
    levels = list(spec.levels)
    if keys != levels or values != list(range(len(levels))) or default != [len(levels)]:
        raise ModelLoadError(
            f"the graph's LabelEncoder of {name!r} maps {keys[:5]}... to {values[:5]}... "
            f"(default {default}), not the manifest's levels {levels[:5]}... to 0, 1, ...: "
            "the model directory is inconsistent"
        )


def _rewrite_node(node: list[Field], renamed: dict[str, str]) -> bytes:
    fields = [
        (
            f,
            w,
            renamed.get(text(v), text(v)).encode("utf-8") if f == _NODE_INPUT and w == LEN else v,
        )
        for f, w, v in node
    ]
    return _encode(fields)  # type: ignore[arg-type]


def _as_codes_input(value_info: list[Field]) -> bytes:
    """A graph input's ValueInfoProto with its element type set to INT64."""
    out: list[Field] = []
    for field, wire, value in value_info:
        if field == _VALUE_TYPE and wire == LEN:
            type_fields = parse(value, "TypeProto")  # type: ignore[arg-type]
            rebuilt: list[Field] = []
            for tf, tw, tv in type_fields:
                if tf == _TYPE_TENSOR and tw == LEN:
                    tensor = [
                        (f, w, _INT64 if f == _TENSOR_ELEM and w == VARINT else v)
                        for f, w, v in parse(tv, "TypeProto.Tensor")  # type: ignore[arg-type]
                    ]
                    tv = memoryview(_encode(tensor))  # type: ignore[arg-type]
                rebuilt.append((tf, tw, tv))
            value = memoryview(_encode(rebuilt))
        out.append((field, wire, value))
    return _encode(out)


def codes_graph(model_bytes: bytes, design: Design) -> bytes:
    """``model_bytes`` with each factor's LabelEncoder removed and its input taking the
    level codes (INT64, 0-based into the design's levels). Raises
    :class:`ModelLoadError` when a factor is not encoded by exactly one LabelEncoder of
    its levels, or the bytes are not well-formed."""
    factors = {spec.name for spec in design.factors}
    try:
        model = parse(memoryview(model_bytes), "ModelProto")
        graph_index = next(i for i, (f, w, _) in enumerate(model) if f == _MODEL_GRAPH and w == LEN)
        graph = parse(model[graph_index][2], "GraphProto")  # type: ignore[arg-type]
        renamed: dict[str, str] = {}
        kept: list[list[Field]] = []
        for field, wire, value in graph:
            if field != _GRAPH_NODE or wire != LEN:
                continue
            node = parse(value, "NodeProto")  # type: ignore[arg-type]
            inputs = _strings(node, _NODE_INPUT)
            is_encoder = _strings(node, _NODE_OP) == ["LabelEncoder"] and _strings(
                node, _NODE_DOMAIN
            ) == ["ai.onnx.ml"]
            if is_encoder and len(inputs) == 1 and inputs[0] in factors:
                if inputs[0] in renamed.values():
                    raise ModelLoadError(f"the graph encodes factor {inputs[0]!r} twice")
                _check_encoder(node, design, inputs[0])
                renamed[_strings(node, _NODE_OUTPUT)[0]] = inputs[0]
            else:
                kept.append(node)
    except (Malformed, StopIteration, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"cannot read the model's graph ({exc})") from exc
    missing = sorted(factors - set(renamed.values()))
    if missing:
        raise ModelLoadError(f"the graph does not encode factor(s) {missing} by their levels")
    for node in kept:
        if set(_strings(node, _NODE_INPUT)) & factors:
            raise ModelLoadError("the graph reads a factor's text other than through its levels")
    nodes = iter(kept)
    new_graph: list[Field] = []
    for field, wire, value in graph:
        if field == _GRAPH_NODE and wire == LEN:
            node = parse(value, "NodeProto")  # type: ignore[arg-type]
            if (
                _strings(node, _NODE_OP) == ["LabelEncoder"]
                and _strings(node, _NODE_OUTPUT)[0] in renamed
            ):
                continue
            value = memoryview(_rewrite_node(next(nodes), renamed))
        elif field == _GRAPH_INPUT and wire == LEN:
            info = parse(value, "ValueInfoProto")  # type: ignore[arg-type]
            if _strings(info, _VALUE_NAME)[0] in factors:
                value = memoryview(_as_codes_input(info))
        new_graph.append((field, wire, value))
    model[graph_index] = (_MODEL_GRAPH, LEN, memoryview(_encode(new_graph)))
    return _encode(model)
