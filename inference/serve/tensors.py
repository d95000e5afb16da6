"""V2 input tensors: shape, datatype and data (JSON, or binary after the header).

The shape is checked against the row limit and the model's features before any
array is built. JSON ``data`` (flat, or nested by rows) is read as the declared
datatype, as Triton and KServe read it: a value the datatype cannot hold is a 400
naming the input and the index (2.5 or 300 as UINT8, 1e300 as FP32), a boolean is
refused (numpy would read ``true`` as 1.0), a ``null`` is a missing value.
Binary data (Triton's extension) are the datatype's little-endian bytes.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np

from inference.serve.matrix import release
from inference.serve.responses import ApiError

__all__ = ["DATATYPES", "read_tensor"]

#: V2 datatypes accepted for inputs, and their little-endian numpy dtypes
DATATYPES: dict[str, np.dtype] = {
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
    "INT8": np.dtype("i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "UINT8": np.dtype("u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
}
_BOOLS = frozenset({bool, np.bool_})


def _fail(message: str, status: int = 400) -> ApiError:
    return ApiError(status, message)


def shape_list(spec: dict[str, Any], where: str) -> list[int]:
    """A tensor's ``shape``, checked to be a non-empty list of non-negative integers."""
    shape = spec.get("shape")
    if not (
        isinstance(shape, list)
        and shape
        and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
    ):
        raise _fail(f"{where}: 'shape' {shape!r} is not a list of non-negative integers")
    return shape


def _shape(spec: dict[str, Any], where: str, features: list[str], max_rows: int) -> list[int]:
    """The tensor's shape, checked against the limit and the model before any array."""
    k = len(features)
    shape = shape_list(spec, where)
    if len(shape) > 2:
        raise _fail(f"{where}: shape {shape} has {len(shape)} dimensions; expected 1 or 2")
    if shape[0] > max_rows:
        raise _fail(f"{where}: {shape[0]} rows, above the limit of {max_rows}", 413)
    if len(shape) == 2 and shape[1] not in (1, k):
        raise _fail(
            f"{where}: shape {shape}: X has {shape[1]} features, but the model expects {k}: "
            f"{features} (or one [n] or [n, 1] tensor per feature)"
        )
    return shape


def _first_bool(data: list[Any]) -> int | None:
    """The flat index of the first boolean in ``data`` (flat, or rows), or None."""
    nested = bool(data) and isinstance(data[0], list)
    flat = itertools.chain.from_iterable(data) if nested else data
    try:
        if _BOOLS.isdisjoint(map(type, flat)):
            return None
    except TypeError:  # rows mixed with scalars: np.asarray says so
        return None
    flat = itertools.chain.from_iterable(data) if nested else data
    return next(i for i, v in enumerate(flat) if type(v) in _BOOLS)


def _as_datatype(arr: np.ndarray, where: str, datatype: str, dtype: np.dtype) -> np.ndarray:
    """``arr`` as ``dtype``, the declared datatype of JSON data: 400 for a value that
    datatype cannot hold (2.5 as INT64, 300 as UINT8, 1e300 as FP32)."""
    flat = arr.reshape(-1)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        if flat.dtype.kind == "f":
            with np.errstate(invalid="ignore"):
                bad = ~(np.isfinite(flat) & (flat == np.trunc(flat)))
            if bad.any():
                i = int(np.argmax(bad))
                raise _fail(
                    f"{where}: {flat[i].item()!r} at index {i} is not an integer; "
                    f"datatype {datatype} holds integers"
                )
            bad = (flat < info.min) | (flat >= float(info.max) + 1)
        else:
            bad = (flat < info.min) | (flat > info.max)
        if bad.any():
            i = int(np.argmax(bad))
            raise _fail(
                f"{where}: {flat[i].item()!r} at index {i} is out of the range of "
                f"{datatype} [{info.min}, {info.max}]"
            )
        return arr.astype(dtype)
    if arr.dtype == dtype:
        return arr
    try:  # numpy flags a value that overflows the cast (as as_matrix finds it)
        with np.errstate(over="raise"):
            return arr.astype(dtype)
    except FloatingPointError:
        pass
    with np.errstate(over="ignore"):
        bad = np.isinf(arr.astype(dtype)) & np.isfinite(arr)
    i = int(np.argmax(bad.reshape(-1)))
    raise _fail(
        f"{where}: {flat[i].item()!r} at index {i} is beyond the range of {datatype} "
        f"(±{np.finfo(dtype).max:.3g})"
    )


def _not_numbers(data: list[Any], arr: np.ndarray, where: str) -> ApiError:
    """The 400 for JSON data that numpy read as objects or text: the first value that
    is not a number, by index (a null is a missing value)."""
    flat = arr.reshape(-1) if arr.dtype.kind == "O" else np.asarray(data, dtype=object).reshape(-1)
    for i, v in enumerate(flat):
        if v is None:
            return _fail(f"{where}: a missing value (null) at index {i}; expected a number")
        if not isinstance(v, int | float):
            return _fail(f"{where}: {v!r} at index {i} is not a number")
    return _fail(f"{where}: 'data' holds {arr.dtype} values; expected numbers")


def _from_data(
    spec: dict[str, Any], where: str, shape: list[int], datatype: str, dtype: np.dtype
) -> np.ndarray:
    """A tensor's JSON ``data`` (flat, or nested by rows) as an array of ``shape`` and
    of the declared datatype's ``dtype``."""
    count = math.prod(shape)
    if "data" not in spec:
        raise _fail(f"{where}: no 'data' and no binary_data_size parameter")
    data = spec["data"]
    if not isinstance(data, list):
        raise _fail(f"{where}: 'data' is a {type(data).__name__}; expected a list")
    if len(data) not in (count, shape[0]):
        raise _fail(f"{where}: 'data' has {len(data)} values, shape {shape} needs {count}")
    at = _first_bool(data)
    if at is not None:
        raise _fail(f"{where}: a boolean at index {at}; datatype {datatype} holds numbers")
    try:
        arr = np.asarray(data)
    except (ValueError, TypeError) as exc:
        raise _fail(f"{where}: 'data' is not a regular list of numbers ({exc})") from None
    if arr.dtype.kind not in "iuf":
        if arr.size != 0:
            raise _not_numbers(data, arr, where)
        arr = arr.astype(dtype)
    if arr.size != count:
        raise _fail(f"{where}: 'data' has {arr.size} values, shape {shape} needs {count}")
    arr = _as_datatype(arr, where, datatype, dtype)
    release(data)
    return arr.reshape(shape)


def read_tensor(
    spec: Any, index: int, binary: memoryview, offset: int, features: list[str], max_rows: int
) -> tuple[np.ndarray, int]:
    """Input ``index`` of a request as an array of its shape and declared datatype, and
    the offset in ``binary`` (the bytes after the JSON header) after its data; 400
    for anything wrong (413 above ``max_rows`` rows)."""
    if not isinstance(spec, dict):
        raise _fail(f"inputs[{index}] is a {type(spec).__name__}; expected an object")
    name = spec.get("name")
    if not isinstance(name, str):
        raise _fail(f"inputs[{index}]: 'name' {name!r} is not a string")
    datatype = spec.get("datatype")
    where = f"input {name!r}"
    shape = _shape(spec, where, features, max_rows)
    dtype = DATATYPES.get(datatype) if isinstance(datatype, str) else None
    if dtype is None:
        raise _fail(
            f"{where}: datatype {datatype!r} is not supported; expected one of {list(DATATYPES)}"
        )
    assert isinstance(datatype, str)
    params = spec.get("parameters") or {}
    if not isinstance(params, dict):
        raise _fail(f"{where}: 'parameters' must be an object")
    size = params.get("binary_data_size")
    if size is None:
        return _from_data(spec, where, shape, datatype, dtype), offset
    count = math.prod(shape)
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise _fail(f"{where}: binary_data_size {size!r} is not a byte count")
    if offset + size > len(binary):
        raise _fail(
            f"{where}: binary_data_size {size} but only {len(binary) - offset} bytes of "
            "binary data are left in the body"
        )
    if size != count * dtype.itemsize:
        raise _fail(
            f"{where}: {size} bytes of binary data for shape {shape} of {datatype} "
            f"({count * dtype.itemsize} bytes expected)"
        )
    arr = np.frombuffer(binary[offset : offset + size], dtype=dtype).reshape(shape)
    return arr, offset + size
