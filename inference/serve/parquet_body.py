"""A Parquet request body (MLflow 3's ``application/vnd.apache.parquet``) as an (n, k) matrix.

What a body may cost is known from its footer before any data page is read: the
row count (413 above ``max_rows``) and the type of every feature column (numbers
only: integers or floats, refused with the column's name otherwise). Only the
feature columns are read, so the memory taken is at most ``rows × k`` values of
8 bytes beside the body, whatever the other columns hold; those are ignored, as
``mlflow models serve`` ignores them (``strict``: refused). A null in a feature
column is a missing value, named by row and column. Needs pyarrow (the
``tables`` extra); without it such bodies get 415. A model fitted on raw columns (a
design) reads its factors from string, dictionary or boolean columns
(:func:`parse_parquet_columns`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from inference.design import Design
from inference.errors import InputError
from inference.inputs import as_matrix
from inference.io.arrow import to_numpy
from inference.serve.design_body import RawColumns
from inference.serve.responses import ApiError

__all__ = ["CONTENT_TYPE", "parse_parquet"]

#: the content type MLflow's scoring server takes for Parquet
CONTENT_TYPE = "application/vnd.apache.parquet"
STYLE = "mlflow"


def _open(body: bytes | bytearray, max_rows: int) -> Any:
    """The ``pyarrow.parquet.ParquetFile`` of ``body`` (415 without pyarrow, 400 when the
    body is not a Parquet file, 413 when it has over ``max_rows`` rows)."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ApiError(
            415,
            "Parquet bodies need pyarrow on the server (pip install 'linreg-onnx[tables]'); "
            "send application/json or text/csv",
            style=STYLE,
        ) from None
    try:
        pf = pq.ParquetFile(pa.BufferReader(body))
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise ApiError(400, f"the body is not a Parquet file ({exc})", style=STYLE) from None
    rows = pf.metadata.num_rows
    if rows > max_rows:
        raise ApiError(
            413, f"the Parquet body has {rows} rows, above the limit of {max_rows}", style=STYLE
        )
    return pf


def _check_schema(schema: Any, features: Sequence[str], strict: bool) -> None:
    """InputError for a missing feature, a feature that is not a number column, or (with
    ``strict``) a column the model does not read."""
    import pyarrow as pa

    names = list(schema.names)
    missing = [f for f in features if f not in names]
    unknown = [n for n in names if n not in features] if strict else []
    if missing or unknown:
        parts = [f"missing {missing}"] if missing else []
        parts += [f"unknown {unknown} (--strict-columns)"] if unknown else []
        raise InputError(
            f"Parquet columns: {' and '.join(parts)}; the model expects {list(features)}"
        )
    if len(set(names)) != len(names):
        raise InputError(f"the Parquet file repeats column names: {names}")
    for f in features:
        kind = schema.field(f).type
        if not (pa.types.is_integer(kind) or pa.types.is_floating(kind)):
            raise InputError(
                f"Parquet column {f!r} holds {kind}; expected numbers (an integer or float type)"
            )


def parse_parquet(
    body: bytes | bytearray,
    features: Sequence[str],
    dtype: np.dtype,
    max_rows: int,
    *,
    strict: bool = False,
) -> np.ndarray:
    """The (n, k) matrix of a Parquet body (columns matched by name)."""
    pf = _open(body, max_rows)
    rows = pf.metadata.num_rows
    schema = pf.schema_arrow
    _check_schema(schema, features, strict)
    try:
        table = pf.read(columns=list(features))
    except Exception as exc:  # a corrupt page: pyarrow's ArrowInvalid, OSError, ...
        raise ApiError(400, f"the Parquet body could not be read ({exc})", style=STYLE) from None
    if table.num_rows != rows:
        raise ApiError(
            400,
            f"the Parquet body holds {table.num_rows} rows, its footer says {rows}",
            style=STYLE,
        )
    columns = {}
    for f in features:
        column = table.column(f).combine_chunks()
        if column.null_count:
            import pyarrow.compute as pc

            row = pc.index(column.is_null(), True).as_py()
            raise InputError(
                f"row {row}, column {f!r}: a missing value (null); every feature needs a number"
            )
        columns[f] = to_numpy(column)
    return as_matrix(columns, features, dtype, strict=True)


def _kind_error(name: str, kind: Any, factor: bool) -> InputError:
    wanted = (
        "text (a string or dictionary type)" if factor else "numbers (an integer or float type)"
    )
    what = "a factor" if factor else "numeric"
    return InputError(
        f"Parquet column {name!r} holds {kind}; it is {what} in the model: expected {wanted}"
    )


def parse_parquet_columns(
    body: bytes | bytearray, design: Design, max_rows: int, *, strict: bool = False
) -> RawColumns:
    """The raw columns of a Parquet body for a model fitted on raw columns (a design):
    numbers for its numeric columns (a null: NaN, a missing value the Predictor names),
    text for its factors (string, dictionary or boolean columns, integers for a factor
    of integers; a null is None)."""
    import pyarrow as pa

    pf = _open(body, max_rows)
    names = design.input_names
    schema = pf.schema_arrow
    present = list(schema.names)
    missing = [n for n in names if n not in present]
    unknown = [n for n in present if n not in names] if strict else []
    if missing or unknown:
        parts = [f"missing {missing}"] if missing else []
        parts += [f"unknown {unknown} (--strict-columns)"] if unknown else []
        raise InputError(f"Parquet columns: {' and '.join(parts)}; the model reads {names}")
    for spec in design.inputs:
        kind = schema.field(spec.name).type
        base = kind.value_type if pa.types.is_dictionary(kind) else kind
        number = pa.types.is_integer(base) or pa.types.is_floating(base)
        text = pa.types.is_string(base) or pa.types.is_large_string(base)
        if spec.kind == "numeric" and not (number and base == kind):
            raise _kind_error(spec.name, kind, False)
        if spec.kind == "factor" and not (text or pa.types.is_boolean(base) or number):
            raise _kind_error(spec.name, kind, True)
    try:
        table = pf.read(columns=names)
    except Exception as exc:  # a corrupt page: pyarrow's ArrowInvalid, OSError, ...
        raise ApiError(400, f"the Parquet body could not be read ({exc})", style=STYLE) from None
    columns: dict[str, np.ndarray] = {}
    for spec in design.inputs:
        column = table.column(spec.name).combine_chunks()
        if spec.kind == "numeric":
            columns[spec.name] = column.to_numpy(zero_copy_only=False).astype(np.float64)
        else:
            columns[spec.name] = np.array(column.to_pylist(), dtype=object)
    return RawColumns(columns, table.num_rows)
