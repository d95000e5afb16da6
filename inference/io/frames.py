"""A table read whole into a pandas DataFrame, typed: numbers as numbers, text as text.

:func:`read_frame` is for a training table with text columns and gaps
(:mod:`training.formula`): pyarrow infers each column's type (CSV: numbers, booleans
``true``/``false``, or text), an empty cell is a null (pandas shows ``NaN`` or
``None``), Parquet columns keep their own types. Lines longer than the readers' limit
are refused before pyarrow sees them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from inference.errors import BatchError
from inference.io.arrow import import_pyarrow
from inference.io.formats import FileFormat
from inference.io.limits import DEFAULT_MAX_LINE_BYTES, check_max_line_bytes

__all__ = ["read_frame"]


def read_frame(
    path: str | Path,
    fmt: FileFormat,
    columns: Sequence[str] | None = None,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> Any:
    """The file's ``columns`` (default: all) as a pandas DataFrame.

    Raises :class:`~inference.errors.BatchError` naming the file when pyarrow cannot
    read it (:class:`~inference.errors.LineTooLongError` for a line longer than
    ``max_line_bytes``).
    """
    pa = import_pyarrow()
    path = Path(path)
    try:
        if fmt.kind == "parquet":
            import pyarrow.parquet as pq

            table = pq.read_table(path, columns=list(columns) if columns else None)
        else:
            from inference.io.csv.lines import scan_text_file

            if fmt.compression is None:
                scan_text_file(path, check_max_line_bytes(max_line_bytes))
            import pyarrow.csv as pacsv

            table = pacsv.read_csv(
                str(path),
                read_options=pacsv.ReadOptions(use_threads=True, block_size=4 << 20),
                parse_options=pacsv.ParseOptions(delimiter=fmt.delimiter),
                convert_options=pacsv.ConvertOptions(
                    include_columns=list(columns) if columns else None,
                    null_values=[""],
                    strings_can_be_null=True,
                ),
            )
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise BatchError(f"cannot read it as a table ({exc})", file=str(path)) from exc
    return table.to_pandas()
