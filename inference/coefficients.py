"""The manifest's coefficients against the graph's: what the model page shows is what runs.

The manifest states the model twice, ``parameters`` (``coef``, ``intercept``) and
``statistics.params`` (named by ``statistics.names``), and the model card, ``linreg
info`` and the intervals read them there; ONNX Runtime computes with the graph's
initializers. Nothing tied the two: a coefficient changed in ``model.onnx``, with the
manifest's sha256 and size rewritten to match, loaded and predicted 1004.9 instead of
5.27 while the card still showed the old numbers. :func:`check_coefficients` refuses
such a directory at load, with or without trusted keys.

The check reads the graph from the bytes handed to ONNX Runtime (protobuf's wire
format, :mod:`inference.protobuf_wire`; no ``onnx`` package), recognises the form the
export writes and takes the linear function out of it: the graph must be exactly that
form (the same nodes, wired the same way, no other node, no local function), so it
computes ``features @ coef + intercept`` with the values read. Each manifest value,
cast to the model's dtype as the export cast it, must then equal the graph's bit for
bit: no tolerance is needed.

Graph forms (:data:`FORMS`, tried in turn; each returns the coefficients or None when
the graph is not of its form):

- ``numeric``, :func:`training.export.graph.build_onnx`: with k >= 2 features
  ``Reshape(Gemm(weight (1, k), features, bias (1,), transB=1), [-1])``; with one
  ``Add(Mul(Reshape(features, [-1]), weight (1,)), bias (1,))``.

A model with a ``design`` section (text columns, :mod:`inference.design`) is built by
``training.export.design_graph`` (LabelEncoders, Gather tables of level
coefficients); its graph is checked by what it computes instead:
:func:`inference.design_predictor.check_design_coefficients` runs the loaded session
on probe rows against the manifest's coefficients.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from inference.errors import CoefficientError, ModelLoadError
from inference.manifest import Manifest
from inference.protobuf_wire import (
    FIXED32,
    LEN,
    VARINT,
    Field,
    Malformed,
    parse,
    read_varint,
    text,
    to_int64,
)

__all__ = ["FORMS", "Graph", "LinearFunction", "check_coefficients", "read_graph"]

# Field numbers of onnx.proto.
_MODEL_GRAPH, _MODEL_FUNCTIONS = 7, 25
_GRAPH_NODE, _GRAPH_INIT, _GRAPH_INPUT, _GRAPH_OUTPUT, _GRAPH_SPARSE = 1, 5, 11, 12, 15
_NODE_INPUT, _NODE_OUTPUT, _NODE_OP, _NODE_ATTR, _NODE_DOMAIN = 1, 2, 4, 5, 7
_ATTR_NAME, _ATTR_F, _ATTR_I = 1, 2, 3
_T_DIMS, _T_TYPE, _T_FLOAT, _T_INT64, _T_NAME, _T_RAW, _T_DOUBLE = 1, 2, 4, 7, 8, 9, 10
#: TensorProto data types read here: FLOAT, INT64, DOUBLE
_DTYPES: dict[int, np.dtype] = {1: np.dtype("<f4"), 7: np.dtype("<i8"), 11: np.dtype("<f8")}


@dataclass
class Node:
    """One NodeProto: operator, domain, input and output names, scalar attributes."""

    op: str
    domain: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, float | int] = field(default_factory=dict)


@dataclass
class Graph:
    """What the form checks need of a model: its nodes in order, its initializers (as
    numpy arrays, for the float, double and int64 ones) and its input and output names.
    ``extra`` names what no linreg graph holds (local functions, sparse initializers)."""

    nodes: list[Node]
    initializers: dict[str, np.ndarray | None]
    inputs: list[str]
    outputs: list[str]
    extra: list[str]


@dataclass(frozen=True)
class LinearFunction:
    """The function a graph computes, ``x @ coef + intercept``, in the graph's dtype.

    ``coef`` has shape (k,), one per manifest feature in order; ``where`` names the
    initializers the values were read from, for messages."""

    coef: np.ndarray
    intercept: Any
    where: str


def _strings(fields: list[Field], number: int) -> list[str]:
    return [text(v, limit=4096) for f, w, v in fields if f == number and w == LEN]


def _tensor(fields: list[Field]) -> tuple[str, np.ndarray | None]:
    """An initializer's name and values (None for a type not read here)."""
    dims = [to_int64(v) for f, w, v in fields if f == _T_DIMS and w == VARINT]  # type: ignore[arg-type]
    for f, w, v in fields:
        if f == _T_DIMS and w == LEN:
            pos = 0
            while pos < len(v):  # type: ignore[arg-type]
                dim, pos = read_varint(v, pos, len(v))  # type: ignore[arg-type]
                dims.append(to_int64(dim))
    types = [v for f, w, v in fields if f == _T_TYPE and w == VARINT]
    name = (_strings(fields, _T_NAME) or [""])[-1]
    dtype = _DTYPES.get(int(types[-1])) if types else None  # type: ignore[arg-type]
    if dtype is None:
        return name, None
    raw = [bytes(v) for f, w, v in fields if f == _T_RAW and w == LEN]  # type: ignore[arg-type]
    if raw:
        values = np.frombuffer(raw[-1], dtype=dtype)
    elif dtype.kind == "f":
        typed = _T_FLOAT if dtype.itemsize == 4 else _T_DOUBLE
        packed = b"".join(bytes(v) for f, w, v in fields if f == typed and w == LEN)  # type: ignore[arg-type]
        single = [v for f, w, v in fields if f == typed and w != LEN]
        width = "<u4" if dtype.itemsize == 4 else "<u8"
        values = np.concatenate(
            [np.frombuffer(packed, dtype=dtype), np.asarray(single, dtype=width).view(dtype)]
        )
    else:
        ints: list[int] = []
        for f, w, v in fields:
            if f == _T_INT64 and w == VARINT:
                ints.append(to_int64(v))  # type: ignore[arg-type]
            elif f == _T_INT64 and w == LEN:
                pos = 0
                while pos < len(v):  # type: ignore[arg-type]
                    item, pos = read_varint(v, pos, len(v))  # type: ignore[arg-type]
                    ints.append(to_int64(item))
        values = np.asarray(ints, dtype=dtype)
    if int(np.prod(dims)) != values.size:
        return name, None
    return name, values.reshape(dims)


def _node(fields: list[Field]) -> Node:
    attrs: dict[str, float | int] = {}
    for f, w, v in fields:
        if f == _NODE_ATTR and w == LEN:
            attr = parse(v, "AttributeProto")  # type: ignore[arg-type]
            name = (_strings(attr, _ATTR_NAME) or [""])[-1]
            for af, aw, av in attr:
                if af == _ATTR_I and aw == VARINT:
                    attrs[name] = to_int64(av)  # type: ignore[arg-type]
                elif af == _ATTR_F and aw == FIXED32:
                    attrs[name] = float(np.frombuffer(int(av).to_bytes(4, "little"), "<f4")[0])  # type: ignore[arg-type]
                elif af not in (_ATTR_NAME, 20):  # 20: the attribute's type
                    attrs[name] = float("nan")  # a tensor, graph or list: no form has one
    return Node(
        op=(_strings(fields, _NODE_OP) or [""])[-1],
        domain=(_strings(fields, _NODE_DOMAIN) or [""])[-1],
        inputs=_strings(fields, _NODE_INPUT),
        outputs=_strings(fields, _NODE_OUTPUT),
        attrs=attrs,
    )


def read_graph(data: bytes) -> Graph:
    """The nodes, initializers, inputs and outputs of an ONNX model's bytes (already
    checked by :func:`inference.onnx_check.check_onnx_bytes`); raises ``Malformed``."""
    model = parse(memoryview(data), "ModelProto")
    parts = [bytes(v) for f, w, v in model if f == _MODEL_GRAPH and w == LEN]  # type: ignore[arg-type]
    extra = ["local functions"] if any(f == _MODEL_FUNCTIONS for f, _, _ in model) else []
    fields = parse(memoryview(b"".join(parts)), "GraphProto")
    graph = Graph([], {}, [], [], extra)
    for f, w, v in fields:
        if w != LEN:
            continue
        if f == _GRAPH_NODE:
            graph.nodes.append(_node(parse(v, "NodeProto")))  # type: ignore[arg-type]
        elif f == _GRAPH_INIT:
            name, values = _tensor(parse(v, "TensorProto"))  # type: ignore[arg-type]
            graph.initializers[name] = values
        elif f in (_GRAPH_INPUT, _GRAPH_OUTPUT):
            names = _strings(parse(v, "ValueInfoProto"), 1)  # type: ignore[arg-type]
            (graph.inputs if f == _GRAPH_INPUT else graph.outputs).append(
                names[-1] if names else ""
            )
        elif f == _GRAPH_SPARSE:
            graph.extra.append("sparse initializers")
    return graph


def _const(graph: Graph, name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray | None:
    """The initializer ``name`` when it has this shape and dtype (and is not also an
    input a caller could feed), else None."""
    values = graph.initializers.get(name)
    if values is None or name in graph.inputs or values.shape != shape or values.dtype != dtype:
        return None
    return values


def _flatten_shape(graph: Graph, name: str) -> bool:
    shape = _const(graph, name, (1,), np.dtype("<i8"))
    return shape is not None and int(shape[0]) == -1


def _numeric(graph: Graph, manifest: Manifest, dtype: np.dtype) -> LinearFunction | None:
    """:func:`training.export.graph.build_onnx`'s graph, or None."""
    k, x, y = len(manifest.features), manifest.input_name, manifest.output_name
    ops = [n.op for n in graph.nodes]
    if graph.extra or any(n.domain not in ("", "ai.onnx") for n in graph.nodes):
        return None
    if k >= 2 and ops == ["Gemm", "Reshape"]:
        gemm, flat = graph.nodes
        if len(gemm.inputs) != 3 or gemm.inputs[1] != x or len(gemm.outputs) != 1:
            return None
        if gemm.attrs != {"transB": 1} and gemm.attrs != {"transA": 0, "transB": 1}:
            return None  # alpha, beta or transA would change the function
        weight = _const(graph, gemm.inputs[0], (1, k), dtype)
        bias = _const(graph, gemm.inputs[2], (1,), dtype)
        if (
            weight is None
            or bias is None
            or flat.inputs[:1] != gemm.outputs
            or len(flat.inputs) != 2
            or not _flatten_shape(graph, flat.inputs[1])
            or flat.outputs != [y]
        ):
            return None
        where = f"Gemm's initializers {gemm.inputs[0]!r} and {gemm.inputs[2]!r}"
        return LinearFunction(weight.reshape(k), bias[0], where)
    if k == 1 and ops == ["Reshape", "Mul", "Add"]:
        flat, mul, add = graph.nodes
        if (
            len(flat.inputs) != 2
            or flat.inputs[0] != x
            or not _flatten_shape(graph, flat.inputs[1])
            or len(mul.inputs) != 2
            or flat.outputs[0] not in mul.inputs
            or len(add.inputs) != 2
            or mul.outputs[0] not in add.inputs
            or add.outputs != [y]
            or any(n.attrs for n in graph.nodes)
        ):
            return None
        w_names = [i for i in mul.inputs if i != flat.outputs[0]]
        b_names = [i for i in add.inputs if i != mul.outputs[0]]
        if len(w_names) != 1 or len(b_names) != 1:
            return None
        w_name, b_name = w_names[0], b_names[0]
        weight = _const(graph, w_name, (1,), dtype)
        bias = _const(graph, b_name, (1,), dtype)
        if weight is None or bias is None:
            return None
        return LinearFunction(weight, bias[0], f"initializers {w_name!r} (Mul), {b_name!r} (Add)")
    return None


#: the graph forms of exported models, tried in order. A design model's form (Gather
#: tables of level coefficients per factor, a Gemm of the numeric columns, Mul by a
#: constant for the rest) is to be added here, mapping each table entry and weight
#: back to its design column (:class:`inference.design.Design`).
FORMS: dict[str, Callable[[Graph, Manifest, np.dtype], LinearFunction | None]] = {
    "numeric": _numeric,
}


def _claims(manifest: Manifest, k: int) -> list[tuple[str, int | None, Any]]:
    """``(where, column or None for the intercept, value)`` of every coefficient the
    manifest states."""
    claims: list[tuple[str, int | None, Any]] = []
    params = manifest.parameters
    features = manifest.features
    if params is not None:
        coef = params.get("coef")
        if not isinstance(coef, list) or len(coef) != k:
            raise ModelLoadError(f"{manifest.source}: parameters.coef must hold {k} numbers")
        claims += [(f"parameters.coef[{j}] ({features[j]})", j, c) for j, c in enumerate(coef)]
        claims.append(("parameters.intercept", None, params.get("intercept")))
    st = manifest.statistics
    names, values = st.get("names"), st.get("params")
    if names is not None or values is not None:
        if not (isinstance(names, list) and isinstance(values, list) and len(names) == len(values)):
            raise ModelLoadError(f"{manifest.source}: statistics.names and params do not pair up")
        for name, value in zip(names, values, strict=True):
            if name == "intercept":
                claims.append(("statistics.params (intercept)", None, value))
            elif name in features:
                claims.append((f"statistics.params ({name})", features.index(name), value))
            else:
                raise ModelLoadError(
                    f"{manifest.source}: statistics.names has {name!r}, not a feature"
                )
    return claims


def check_coefficients(data: bytes, manifest: Manifest, *, source: str) -> LinearFunction | None:
    """Refuse a model whose manifest states coefficients other than its graph's.

    Parameters
    ----------
    data : bytes
        The ONNX bytes, as handed to ONNX Runtime.
    manifest : Manifest
    source : str
        Where the bytes came from, for messages.

    Returns
    -------
    LinearFunction or None
        What the graph computes; None for a manifest that states no coefficients or
        describes a design model (not checked yet, see the module docstring).

    Raises
    ------
    CoefficientError
        The manifest states coefficients and the graph is not of a form in
        :data:`FORMS`, or one of them (``parameters``, ``statistics.params``) differs
        from the graph's value in the model's dtype; the message names it and both values.
    """
    if "design" in manifest.data:
        return None
    k = len(manifest.features)
    claims = _claims(manifest, k)
    if not claims:
        return None
    dtype = np.dtype(manifest.dtype).newbyteorder("<")
    try:
        graph = read_graph(data)
    except (Malformed, ValueError) as exc:
        raise ModelLoadError(f"{source}: cannot read the graph's coefficients ({exc})") from exc
    found = None
    for form in FORMS.values():
        found = form(graph, manifest, dtype)
        if found is not None:
            break
    if found is None:
        raise CoefficientError(
            f"{source}: the graph is not one linreg exports ({', '.join(FORMS)}: "
            f"{[n.op for n in graph.nodes]}), so the manifest's coefficients cannot be "
            "checked against it; refusing a model whose card may not show what it computes"
        )
    for where, column, value in claims:
        actual = found.intercept if column is None else found.coef[column]
        try:
            stated = np.asarray(value, dtype=np.float64).astype(dtype)
        except (TypeError, ValueError):
            stated = None
        if stated is None or stated.shape != () or not bool(stated == actual):
            raise CoefficientError(
                f"{source}: the manifest's {where} is {value!r} but the graph computes with "
                f"{float(actual)!r} ({found.where}); the model directory was changed after "
                "export"
            )
    return found
