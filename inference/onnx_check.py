"""Safety check of an ONNX file's bytes before they are handed to ONNX Runtime.

The ``inference`` package does not depend on the ``onnx`` Python package, so this
module reads the protobuf wire format itself: a small, strict reader of varints,
length-delimited fields and fixed32/fixed64 values that skips unknown fields and
refuses groups (wire types 3 and 4), invalid wire types, truncated varints,
lengths running past the end of the buffer and messages nested more than
``MAX_DEPTH`` levels deep.

It walks every place of a ``ModelProto`` where a ``TensorProto`` can live, field
numbers as in ``onnx/onnx-ml.proto`` (ONNX 1.23, identical in ``onnx.proto``):

=====================  ==========================================================
message                fields followed
=====================  ==========================================================
``ModelProto``         ``graph`` 7, ``training_info`` 20, ``functions`` 25
``TrainingInfoProto``  ``initialization`` 1, ``algorithm`` 2 (both graphs)
``FunctionProto``      ``node`` 7, ``attribute_proto`` 11
``GraphProto``         ``node`` 1, ``initializer`` 5, ``sparse_initializer`` 15
``NodeProto``          ``attribute`` 5 (``name`` 3 and ``op_type`` 4 for messages)
``AttributeProto``     ``t`` 5, ``g`` 6, ``tensors`` 10, ``graphs`` 11,
                       ``sparse_tensor`` 22, ``sparse_tensors`` 23 (``name`` 1)
``SparseTensorProto``  ``values`` 1, ``indices`` 2
``TensorProto``        ``dims`` 1, ``data_type`` 2, ``float_data`` 4,
                       ``int32_data`` 5, ``int64_data`` 7, ``name`` 8,
                       ``raw_data`` 9, ``double_data`` 10, ``uint64_data`` 11,
                       ``external_data`` 13, ``data_location`` 14
``StringStringEntry``  ``key`` 1, ``value`` 2
=====================  ==========================================================

Several occurrences of a singular message field are merged the way protobuf
merges them (their payloads concatenated), so a tensor cannot be split in two
halves that each look harmless.

A model is refused (``ModelLoadError``) when

* its bytes are not a well-formed ``ModelProto`` with a graph;
* any tensor refers to external data (``data_location`` EXTERNAL or a non-empty
  ``external_data``): the runtime loads only self-contained models;
* any tensor has a negative dimension, more than ``MAX_ELEMENTS`` elements, or
  declares more bytes (dims times element size) than the data it carries.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from inference.errors import ModelLoadError
from inference.protobuf_wire import (
    FIXED32,
    FIXED64,
    LEN,
    VARINT,
    Field,
    Malformed,
    count_packed_varints,
    last_string,
    parse,
    read_varint,
    text,
    to_int64,
)

__all__ = ["MAX_DEPTH", "MAX_ELEMENTS", "check_onnx_bytes"]

#: Deepest nesting of messages followed (ModelProto is level 0).
MAX_DEPTH = 64
#: Largest element count a tensor may declare.
MAX_ELEMENTS = 2**40


# TensorProto.DataType -> (name, element size in bytes, typed field, values per element).
_DATA_TYPES: dict[int, tuple[str, int, int, int]] = {
    1: ("FLOAT", 4, 4, 1),
    2: ("UINT8", 1, 5, 1),
    3: ("INT8", 1, 5, 1),
    4: ("UINT16", 2, 5, 1),
    5: ("INT16", 2, 5, 1),
    6: ("INT32", 4, 5, 1),
    7: ("INT64", 8, 7, 1),
    9: ("BOOL", 1, 5, 1),
    10: ("FLOAT16", 2, 5, 1),
    11: ("DOUBLE", 8, 10, 1),
    12: ("UINT32", 4, 11, 1),
    13: ("UINT64", 8, 11, 1),
    14: ("COMPLEX64", 8, 4, 2),
    15: ("COMPLEX128", 16, 10, 2),
    16: ("BFLOAT16", 2, 5, 1),
}

_TYPED_FIELD_NAMES = {
    4: "float_data",
    5: "int32_data",
    7: "int64_data",
    10: "double_data",
    11: "uint64_data",
}

_SINGULAR, _REPEATED = False, True

# message -> {field number: (field name, message type, repeated?)}; only the fields
# on a path to a TensorProto are followed, every other field is skipped.
_SCHEMA: dict[str, dict[int, tuple[str, str, bool]]] = {
    "ModelProto": {
        7: ("graph", "GraphProto", _SINGULAR),
        20: ("training_info", "TrainingInfoProto", _REPEATED),
        25: ("functions", "FunctionProto", _REPEATED),
    },
    "TrainingInfoProto": {
        1: ("initialization", "GraphProto", _SINGULAR),
        2: ("algorithm", "GraphProto", _SINGULAR),
    },
    "FunctionProto": {
        7: ("node", "NodeProto", _REPEATED),
        11: ("attribute_proto", "AttributeProto", _REPEATED),
    },
    "GraphProto": {
        1: ("node", "NodeProto", _REPEATED),
        5: ("initializer", "TensorProto", _REPEATED),
        15: ("sparse_initializer", "SparseTensorProto", _REPEATED),
    },
    "NodeProto": {
        5: ("attribute", "AttributeProto", _REPEATED),
    },
    "AttributeProto": {
        5: ("t", "TensorProto", _SINGULAR),
        6: ("g", "GraphProto", _SINGULAR),
        10: ("tensors", "TensorProto", _REPEATED),
        11: ("graphs", "GraphProto", _REPEATED),
        22: ("sparse_tensor", "SparseTensorProto", _SINGULAR),
        23: ("sparse_tensors", "SparseTensorProto", _REPEATED),
    },
    "SparseTensorProto": {
        1: ("values", "TensorProto", _SINGULAR),
        2: ("indices", "TensorProto", _SINGULAR),
    },
}

# Wire types accepted for the TensorProto fields read here (repeated scalars may
# come packed, wire type 2, or one value per field).
_TENSOR_WIRE_TYPES: dict[int, tuple[int, ...]] = {
    1: (VARINT, LEN),
    2: (VARINT,),
    4: (FIXED32, LEN),
    5: (VARINT, LEN),
    7: (VARINT, LEN),
    8: (LEN,),
    9: (LEN,),
    10: (FIXED64, LEN),
    11: (VARINT, LEN),
    13: (LEN,),
    14: (VARINT,),
}


# --------------------------------------------------------------------------------------
# Walk
# --------------------------------------------------------------------------------------


class _Walker:
    """Walk a ModelProto, checking every TensorProto it contains."""

    def __init__(self, source: str) -> None:
        self.source = source

    def model(self, buf: memoryview) -> None:
        fields = parse(buf, "ModelProto")
        if not any(field == 7 for field, _, _ in fields):
            raise ModelLoadError(
                f"{self.source}: not an ONNX model: it has no graph (ModelProto field 7)"
            )
        self._children("ModelProto", fields, depth=0, path="model")

    def _children(self, message: str, fields: list[Field], depth: int, path: str) -> None:
        """Follow the fields of ``message`` that lead to tensors."""
        schema = _SCHEMA[message]
        singular: dict[int, list[memoryview]] = {}
        counters: dict[int, int] = {}
        for number, wire, value in fields:
            entry = schema.get(number)
            if entry is None:
                continue
            name, child, repeated = entry
            if wire != LEN or not isinstance(value, memoryview):
                raise Malformed(
                    f"{message}.{name} (field {number}) has wire type {wire}, "
                    "expected 2 (length-delimited)"
                )
            if repeated:
                index = counters.get(number, 0)
                counters[number] = index + 1
                self._message(child, value, depth + 1, f"{path} > {name}[{index}]")
            else:
                singular.setdefault(number, []).append(value)
        for number, parts in singular.items():
            name, child, _ = schema[number]
            merged = parts[0] if len(parts) == 1 else memoryview(b"".join(parts))
            self._message(child, merged, depth + 1, f"{path} > {name}")

    def _message(self, message: str, buf: memoryview, depth: int, path: str) -> None:
        if depth > MAX_DEPTH:
            raise Malformed(f"messages nested deeper than {MAX_DEPTH} levels at {path}")
        fields = parse(buf, message)
        if message == "TensorProto":
            self._tensor(fields, depth, path)
            return
        if message == "NodeProto":
            op_type = last_string(fields, 4)
            node_name = last_string(fields, 3)
            path = f"{path} ({op_type or '?'}{f' {node_name!r}' if node_name else ''})"
        elif message == "AttributeProto":
            attr_name = last_string(fields, 1)
            if attr_name:
                path = f"{path} ({attr_name!r})"
        self._children(message, fields, depth, path)

    def _tensor(self, fields: list[Field], depth: int, path: str) -> None:
        t = _tensor_fields(fields, depth, path)
        label = f"tensor {t.name!r}" if t.name else "an unnamed tensor"
        where = f"{label} (at {path})"
        if t.data_location == 1 or t.external:
            locations = [v for k, v in t.external if k == "location"]
            loc = f"location {locations[-1]!r}" if locations else "no location given"
            raise ModelLoadError(
                f"{self.source}: {where} refers to external data ({loc}); the runtime loads "
                "only self-contained models and never follows external data references: "
                "relative paths such as '../', absolute paths and plain file names alike are "
                "refused. Re-save the model with every tensor embedded "
                "(onnx.save_model(model, path, save_as_external_data=False))."
            )

        elements = self._elements(t.dims, where)
        self._check_data(t, elements, where)

    def _elements(self, dims: list[int], where: str) -> int:
        """The element count of ``dims``, refusing negative and implausibly large shapes."""
        shown = _format_dims(dims)
        if any(d < 0 for d in dims):
            raise ModelLoadError(f"{self.source}: {where} has a negative dimension: dims {shown}")
        elements = 1
        if 0 in dims:
            elements = 0
        else:
            for d in dims:
                elements *= d
                if elements > MAX_ELEMENTS:
                    raise ModelLoadError(
                        f"{self.source}: {where} declares dims {shown}, more than "
                        f"{MAX_ELEMENTS} (2**40) elements; refusing an implausibly large tensor"
                    )

        return elements

    def _check_data(self, t: _TensorFields, elements: int, where: str) -> None:
        """The tensor's data (raw or typed) covers the ``elements`` its shape declares."""
        spec = _DATA_TYPES.get(t.data_type)
        if spec is None:  # STRING, UNDEFINED or a type without a fixed byte size here
            return
        type_name, size, typed_field, per_element = spec
        declared = elements * size
        shown = _format_dims(t.dims)
        if t.raw_len is not None:
            present, held_in = t.raw_len, "raw_data"
        else:
            present = t.counts[typed_field] * size // per_element
            held_in = _TYPED_FIELD_NAMES[typed_field]
        if declared > present:
            data = (
                "no data at all"
                if t.raw_len is None and present == 0
                else f"only {present} bytes of data in {held_in}"
            )
            raise ModelLoadError(
                f"{self.source}: {where} declares dims {shown} of {type_name} "
                f"({elements} elements x {size} bytes = {declared} bytes declared) but has "
                f"{data} ({present} bytes present); a tensor's data must cover its shape"
            )


@dataclass
class _TensorFields:
    """What :func:`_tensor_fields` reads of a TensorProto."""

    dims: list[int] = dataclasses.field(default_factory=list)
    data_type: int = 0
    name: str = ""
    raw_len: int | None = None
    data_location: int = 0
    external: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    counts: dict[int, int] = dataclasses.field(
        default_factory=lambda: dict.fromkeys(_TYPED_FIELD_NAMES, 0)
    )


def _tensor_fields(fields: list[Field], depth: int, path: str) -> _TensorFields:
    """Dims, type, name, data sizes and external-data entries of a TensorProto's fields."""
    t = _TensorFields()
    for number, wire, value in fields:
        allowed = _TENSOR_WIRE_TYPES.get(number)
        if allowed is None:
            continue
        if wire not in allowed:
            raise Malformed(f"TensorProto field {number} has wire type {wire} at {path}")
        if isinstance(value, memoryview):
            if number == 1:
                pos = 0
                while pos < len(value):
                    dim, pos = read_varint(value, pos, len(value))
                    t.dims.append(to_int64(dim))
            elif number in (4, 10):
                width = 4 if number == 4 else 8
                if len(value) % width:
                    raise Malformed(
                        f"packed {_TYPED_FIELD_NAMES[number]} of {len(value)} bytes is "
                        f"not a multiple of {width} at {path}"
                    )
                t.counts[number] += len(value) // width
            elif number in (5, 7, 11):
                t.counts[number] += count_packed_varints(value, _TYPED_FIELD_NAMES[number])
            elif number == 8:
                t.name = text(value)
            elif number == 9:
                t.raw_len = len(value)
            elif number == 13:
                if depth + 1 > MAX_DEPTH:
                    raise Malformed(f"messages nested deeper than {MAX_DEPTH} levels")
                entry = parse(value, "StringStringEntryProto")
                t.external.append((last_string(entry, 1), last_string(entry, 2)))
        else:
            if number == 1:
                t.dims.append(to_int64(value))
            elif number == 2:
                t.data_type = to_int64(value)
            elif number == 14:
                t.data_location = value
            elif number in t.counts:
                t.counts[number] += 1
    return t


def _format_dims(dims: Sequence[int], limit: int = 8) -> str:
    """Dims as a list literal, shortened when there are many."""
    if len(dims) <= limit:
        return str(list(dims))
    return "[" + ", ".join(str(d) for d in dims[:limit]) + f", ... ({len(dims)} dims)]"


# --------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------


def check_onnx_bytes(data: bytes, *, source: str) -> None:
    """Refuse ONNX model bytes that are malformed or unsafe to hand to ONNX Runtime.

    Parameters
    ----------
    data : bytes
        The serialized ``ModelProto`` (the content of a ``.onnx`` file).
    source : str
        Where the bytes came from (a path, usually); every error message starts
        with ``f"{source}: "``.

    Raises
    ------
    ModelLoadError
        * the bytes are not a well-formed ``ModelProto`` (bad wire format,
          truncation, nesting deeper than ``MAX_DEPTH``) or it has no graph:
          the message says "not an ONNX model";
        * a tensor anywhere in the model (initializers, sparse initializers,
          node attributes, subgraphs, functions, training info) refers to
          external data: every external reference is refused, whatever its path;
        * a tensor has a negative dimension, declares more than
          ``MAX_ELEMENTS`` elements, or declares more bytes (element count times
          element size) than its ``raw_data`` or typed data field holds.

    Notes
    -----
    Only the structure is checked; whether the graph is a valid computation is
    left to ONNX Runtime. The ``onnx`` package is not used.
    """
    try:
        buf = memoryview(data).cast("B")
    except TypeError as exc:
        raise ModelLoadError(f"{source}: not an ONNX model: expected bytes, got {exc}") from None
    try:
        _Walker(source).model(buf)
    except Malformed as exc:
        raise ModelLoadError(f"{source}: not an ONNX model (malformed protobuf: {exc})") from None
