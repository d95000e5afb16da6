"""V2 input tensors of a design model: one tensor per raw column, text as ``BYTES``.

A model fitted on raw columns (:mod:`inference.design`) takes one tensor per column
it reads, named as the column, of shape ``[n]`` or ``[n, 1]`` (its metadata lists
them in the model's order): ``BYTES`` for a factor (its levels as UTF-8 text), a
numeric datatype (``FP32``/``FP64`` as the metadata says, or any other that
:mod:`inference.serve.tensors` reads) for a numeric column. ``BYTES`` data come

- as JSON: ``data`` a list of strings (flat, or nested by rows); ``null`` or ``""``
  is a missing value;
- as binary (Triton's extension, what ``tritonclient`` sends with
  ``binary_data=True``, and gRPC's ``raw_input_contents``): each element a 4-byte
  little-endian length, then that many bytes;
- over gRPC, also in ``contents.bytes_contents``.

A ``null`` in the JSON data of a numeric column is a missing value (NaN), which the
model fills where its design says so, else refuses naming the row. The values are
checked against the model by the Predictor (:mod:`inference.serve.design_body`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from inference.design import Design
from inference.serve.design_body import RawColumns, numeric_column, text_column
from inference.serve.responses import ApiError
from inference.serve.tensors import DATATYPES, read_tensor, shape_list

__all__ = ["BYTES", "assemble", "bytes_elements", "read_design_tensor", "tensor_datatype"]

BYTES = "BYTES"
_LENGTH = 4  # bytes of each element's length prefix


def _fail(message: str, status: int = 400) -> ApiError:
    return ApiError(status, message)


def tensor_datatype(design: Design, name: str, dtype: np.dtype) -> str:
    """The V2 datatype of input ``name``: BYTES for a factor, the model's for a number."""
    if design.input(name).kind == "factor":
        return BYTES
    return "FP32" if dtype == np.float32 else "FP64"


def _text(raw: bytes | memoryview, where: str, index: int) -> str:
    try:
        return bytes(raw).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _fail(f"{where}: element {index} is not UTF-8 text ({exc.reason})") from None


def bytes_elements(raw: bytes | memoryview, count: int, where: str) -> np.ndarray:
    """``count`` elements of Triton's serialized BYTES tensor (each a 4-byte
    little-endian length, then its bytes) as a 1-D object array of str; 400 when the
    bytes do not hold exactly that."""
    view = memoryview(raw).cast("B")
    out = np.empty(count, dtype=object)
    pos, size = 0, len(view)
    for i in range(count):
        if pos + _LENGTH > size:
            raise _fail(f"{where}: the BYTES data end before element {i} of {count}")
        n = int.from_bytes(view[pos : pos + _LENGTH], "little")
        pos += _LENGTH
        if pos + n > size:
            raise _fail(
                f"{where}: element {i} says {n} bytes, {size - pos} are left in its BYTES data"
            )
        out[i] = _text(view[pos : pos + n], where, i)
        pos += n
    if pos != size:
        raise _fail(f"{where}: {size - pos} bytes after the {count} elements of its BYTES data")
    return out


def _shape(spec: dict[str, Any], where: str, max_rows: int) -> list[int]:
    shape = shape_list(spec, where)
    if shape[0] > max_rows:
        raise _fail(f"{where}: {shape[0]} rows, above the limit of {max_rows}", 413)
    if len(shape) > 2 or (len(shape) == 2 and shape[1] != 1):
        raise _fail(
            f"{where}: shape {shape}; this model takes one tensor per column, of shape [n] "
            "or [n, 1]"
        )
    return shape


def _json_bytes(data: Any, where: str, count: int) -> np.ndarray:
    if not isinstance(data, list):
        raise _fail(f"{where}: 'data' is a {type(data).__name__}; expected a list of strings")
    if data and isinstance(data[0], list):  # nested by rows: [[a], [b]]
        if not all(isinstance(r, list) and len(r) == 1 for r in data):
            raise _fail(f"{where}: 'data' nested by rows needs one value per row")
        data = [r[0] for r in data]
    if len(data) != count:
        raise _fail(f"{where}: 'data' has {len(data)} values, its shape needs {count}")
    for i, v in enumerate(data):
        if v is not None and not isinstance(v, str):
            raise _fail(f"{where}: {v!r} at index {i} is not a string; datatype BYTES holds text")
    return text_column(data, where)


def _nulls_as_nan(spec: dict[str, Any], where: str, datatype: str) -> dict[str, Any]:
    """``spec`` with each ``null`` of its JSON data as NaN (a missing value); 400 for
    an integer datatype, which has no NaN."""
    data = spec.get("data")
    if not isinstance(data, list):
        return spec
    if not (data and isinstance(data[0], list)) and None not in data:  # the usual case
        return spec
    flat = [v for r in data for v in (r if isinstance(r, list) else [r])]
    if None not in flat:
        return spec
    if DATATYPES[datatype].kind != "f":
        i = flat.index(None)
        raise _fail(
            f"{where}: a missing value (null) at index {i}; datatype {datatype} cannot hold "
            "one (send FP32 or FP64)"
        )
    return {**spec, "data": [np.nan if v is None else v for v in flat]}


def read_design_tensor(
    spec: Any, index: int, binary: memoryview, offset: int, max_rows: int
) -> tuple[str, str, np.ndarray, int]:
    """Input ``index`` of a V2 request to a design model: its name, datatype, values
    (a 1-D array) and the offset in ``binary`` after its data; 400 for anything wrong
    (413 above ``max_rows`` rows)."""
    if not isinstance(spec, dict):
        raise _fail(f"inputs[{index}] is a {type(spec).__name__}; expected an object")
    name = spec.get("name")
    if not isinstance(name, str):
        raise _fail(f"inputs[{index}]: 'name' {name!r} is not a string")
    where = f"input {name!r}"
    datatype = spec.get("datatype")
    count = math.prod(_shape(spec, where, max_rows))
    if datatype != BYTES:
        if isinstance(datatype, str) and datatype in DATATYPES:
            spec = _nulls_as_nan(spec, where, datatype)
        arr, offset = read_tensor(spec, index, binary, offset, [name], max_rows)
        return name, str(datatype), arr.reshape(-1), offset
    params = spec.get("parameters") or {}
    if not isinstance(params, dict):
        raise _fail(f"{where}: 'parameters' must be an object")
    size = params.get("binary_data_size")
    if size is None:
        if "data" not in spec:
            raise _fail(f"{where}: no 'data' and no binary_data_size parameter")
        return name, BYTES, _json_bytes(spec["data"], where, count), offset
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise _fail(f"{where}: binary_data_size {size!r} is not a byte count")
    if offset + size > len(binary):
        raise _fail(
            f"{where}: binary_data_size {size} but only {len(binary) - offset} bytes of "
            "binary data are left in the body"
        )
    values = bytes_elements(binary[offset : offset + size], count, where)
    return name, BYTES, values, offset + size


def assemble(
    tensors: Sequence[tuple[str, str, np.ndarray]], design: Design, status: int = 400
) -> RawColumns:
    """The raw columns of a design model from its V2 input tensors ``(name, datatype,
    values)``: each column once, a factor as BYTES (or integers, for a factor of
    integers), a number as a numeric datatype, all of one length."""
    names = design.input_names
    seen: dict[str, np.ndarray] = {}
    for name, datatype, values in tensors:
        if name in seen:
            raise ApiError(status, f"input {name!r} is given twice; each input may appear once")
        if name not in names:
            raise ApiError(
                status,
                f"no input {name!r}: this model takes one tensor per column, named "
                f"{names} (shape [n], BYTES for a factor; GET the model's metadata)",
            )
        spec = design.input(name)
        if spec.kind == "numeric" and datatype == BYTES:
            raise ApiError(
                status, f"input {name!r} is numeric in the model; send FP32 or FP64, not BYTES"
            )
        integers = spec.type == "int" and datatype in DATATYPES and DATATYPES[datatype].kind in "iu"
        if spec.kind == "factor" and datatype != BYTES and not integers:
            raise ApiError(
                status,
                f"input {name!r} is a factor (levels {list(spec.levels)[:20]}); send its "
                f"values as BYTES, not {datatype}",
            )
        factor = spec.kind == "factor"
        seen[name] = text_column(values, name) if factor else numeric_column(values, name)
    missing = [n for n in names if n not in seen]
    if missing:
        raise ApiError(
            status, f"missing input(s) {missing}: this model takes one tensor per column {names}"
        )
    lengths = {len(v) for v in seen.values()}
    if len(lengths) != 1:
        shown = {n: len(v) for n, v in seen.items()}
        raise ApiError(status, f"the inputs have different lengths: {shown}")
    return RawColumns({n: seen[n] for n in names}, lengths.pop())
