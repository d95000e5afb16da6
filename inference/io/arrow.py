"""pyarrow loaded on first use, and conversions between Arrow and numpy that never import pandas.

``pa.array``, ``pa.scalar`` and ``Array.to_numpy`` would import pandas (to check
for a Series); the streaming job does not need it, so these build Arrow arrays
from buffers directly.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "arrow_mask",
    "from_numpy",
    "import_parquet",
    "import_pyarrow",
    "text_scalar",
    "to_numpy",
]


def import_pyarrow() -> Any:
    """The pyarrow module; an ImportError naming the extra to install when it is missing."""
    try:
        import pyarrow
    except ImportError as exc:  # pragma: no cover - pyarrow is installed with the extras
        raise ImportError("batch scoring needs pyarrow: pip install 'linreg-onnx[tables]'") from exc
    return pyarrow


def import_parquet() -> Any:
    """The ``pyarrow.parquet`` module."""
    import_pyarrow()
    import pyarrow.parquet as pq

    return pq


def to_numpy(arr: Any) -> np.ndarray:
    """A numeric Arrow array as numpy, without a copy when it has no nulls (NaN for nulls).

    (``Array.to_numpy`` would import pandas, which the streaming job does not need.)
    """
    pa = import_pyarrow()
    if arr.null_count:
        import pyarrow.compute as pc  # only here: its import costs more than a small job

        if not pa.types.is_floating(arr.type):
            arr = pc.cast(arr, pa.float64())
        arr = pc.fill_null(arr, from_numpy(np.array([np.nan]), arr.type)[0])
    dtype = np.dtype(_NUMPY_DTYPES[str(arr.type)])
    return np.frombuffer(
        arr.buffers()[1], dtype=dtype, count=len(arr), offset=arr.offset * dtype.itemsize
    )


def from_numpy(values: np.ndarray, arrow_type: Any) -> Any:
    """A 1-D numpy array as an Arrow array of ``arrow_type``, sharing its memory when it can
    (``pa.array`` would import pandas to check for a Series)."""
    pa = import_pyarrow()
    values = np.ascontiguousarray(values, dtype=_NUMPY_DTYPES[str(arrow_type)])
    return pa.Array.from_buffers(arrow_type, len(values), [None, pa.py_buffer(values)])


def text_scalar(value: str) -> Any:
    """An Arrow string scalar (``pa.scalar`` would import pandas)."""
    pa = import_pyarrow()
    data = value.encode("utf-8")
    offsets = np.array([0, len(data)], dtype=np.int32)
    array = pa.Array.from_buffers(pa.string(), 1, [None, pa.py_buffer(offsets), pa.py_buffer(data)])
    return array[0]


def arrow_mask(mask: np.ndarray) -> Any:
    """A boolean numpy mask as an Arrow boolean array (bits packed, no copy of Python objects)."""
    pa = import_pyarrow()
    bits = np.packbits(np.asarray(mask, dtype=bool), bitorder="little")
    return pa.Array.from_buffers(pa.bool_(), len(mask), [None, pa.py_buffer(bits)])


_NUMPY_DTYPES = {
    "halffloat": "float16",
    "float": "float32",
    "double": "float64",
    **{f"{sign}int{bits}": f"{sign}int{bits}" for sign in ("", "u") for bits in (8, 16, 32, 64)},
}
