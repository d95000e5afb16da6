"""Load training tables: the bundled data sets by name, or CSV, TSV and Parquet files.

Every loader returns a :class:`Table` of float64 features ``X`` of shape
``(n_samples, n_features)`` and target ``y`` of shape ``(n_samples,)``, both
finite. Anything else raises :class:`DataError` naming the file, the column and
the row (1-based data row; for text files also the 1-based line, header = line 1).

Files are read by pyarrow as typed float64 columns, in parallel, with the reader of
``linreg predict`` (:mod:`training.table_reader`); a bad cell is located only when
that fails. :func:`iter_table_chunks` gives a file's rows in chunks for fits larger
than memory (:mod:`training.streaming`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pandas is imported only to locate faults in odd files
    import pandas as pd

__all__ = [
    "DATASETS",
    "DataError",
    "Table",
    "iter_table_chunks",
    "load_dataset",
    "load_table",
    "table_columns",
    "validate_xy",
]


class DataError(ValueError):
    """A training table that cannot be used, with where and why."""


@dataclass(frozen=True)
class BundledDataset:
    target: str
    features: tuple[str, ...]
    description: str


DATASETS: dict[str, BundledDataset] = {
    "plant_richness_lr": BundledDataset(
        target="ntv_rich",
        features=("area",),
        description="22 islands: log10 native plant richness against log10 island area "
        "(McMaster 2005, via bioinfokit).",
    ),
    "plant_richness_mlr": BundledDataset(
        target="ntv_rich",
        features=("area", "latitude", "dist_mainland"),
        description="22 islands: log10 native plant richness against log10 area, latitude "
        "and distance to the mainland (McMaster 2005, via bioinfokit).",
    ),
}


@dataclass(frozen=True)
class Table:
    """Features and target ready for fitting.

    X : ndarray of shape (n_samples, n_features), float64
    y : ndarray of shape (n_samples,), float64
    """

    X: np.ndarray
    y: np.ndarray
    features: list[str]
    target: str
    source: str

    @property
    def n_samples(self) -> int:
        return int(self.X.shape[0])


def load_dataset(name: str) -> Table:
    """Load a bundled data set by name (see :data:`DATASETS`)."""
    if name not in DATASETS:
        raise DataError(f"unknown data set {name!r}; the bundled ones are {sorted(DATASETS)}")
    spec = DATASETS[name]
    ref = resources.files("training") / "datasets" / f"{name}.tsv"
    with resources.as_file(ref) as path:
        table = load_table(path, features=list(spec.features), target=spec.target)
    return Table(table.X, table.y, table.features, table.target, source=name)


def _text_separator(path: Path) -> str:
    return "\t" if path.suffix.lower() in {".tsv", ".tab"} else ","


def _read_frame(path: Path) -> tuple[pd.DataFrame, int]:
    """Read a file as a frame; returns it and the line number of its first data row
    (0 for formats without lines)."""
    import pandas as pd

    suffix = path.suffix.lower()
    if suffix in {".parquet", ".pq"}:
        import pyarrow.parquet as pq

        try:
            frame = pq.read_table(path).to_pandas()
        except Exception as exc:  # pyarrow raises several types for bad files
            raise DataError(f"{path}: not a readable Parquet file ({exc})") from exc
        return frame, 0
    if suffix not in {".csv", ".tsv", ".tab", ".txt"}:
        raise DataError(f"{path}: unknown file type {suffix!r}; expected .csv, .tsv or .parquet")
    try:
        # header=None: the header row sets the field count, so a row with more fields
        # is an error (with a header, pandas would silently make the first column an
        # index when every row has one field more) and names are not renamed ("a.1").
        frame = pd.read_csv(
            path,
            sep=_text_separator(path),
            dtype=str,
            keep_default_na=False,
            skip_blank_lines=True,
            header=None,
        )
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"{path}: the file is empty (no header, no rows)") from exc
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot be parsed as {suffix} text ({exc})") from exc
    header = frame.iloc[0].tolist()
    frame = frame.iloc[1:].reset_index(drop=True)
    frame.columns = header
    return frame, 2


def _numeric_column(frame: pd.DataFrame, column: str, path: Path, first_line: int) -> np.ndarray:
    import pandas as pd

    raw = frame[column]
    if raw.dtype == object or pd.api.types.is_string_dtype(raw):
        text = raw.astype(str).str.strip()
        values = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64)
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            i = int(bad[0])
            cell = text.iloc[i]
            what = "an empty cell" if cell == "" else f"the value {cell!r}"
            kind = (
                "not a finite number" if cell.lower() in {"nan", "inf", "-inf"} else "not numeric"
            )
            raise DataError(
                f"{path}: column {column!r}, row {i + 1}{_line(i, first_line)}: "
                f"{what} is {kind} ({bad.size} bad cell(s) in this column)"
            )
        return values
    if pd.api.types.is_bool_dtype(raw) or not pd.api.types.is_numeric_dtype(raw):
        raise DataError(f"{path}: column {column!r} has type {raw.dtype}, expected a number type")
    values = raw.to_numpy(dtype=np.float64, na_value=np.nan)
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        i = int(bad[0])
        raise DataError(
            f"{path}: column {column!r}, row {i + 1}{_line(i, first_line)}: "
            f"{values[i]} is not a finite number ({bad.size} bad cell(s) in this column)"
        )
    return values


def _line(row_index: int, first_line: int) -> str:
    return f" (line {row_index + first_line})" if first_line else ""


def load_table(
    path: str | Path,
    *,
    target: str,
    features: Sequence[str] | None = None,
) -> Table:
    """Load ``features`` and ``target`` columns from a CSV, TSV or Parquet file.

    ``features=None`` takes every column but the target. Raises :class:`DataError`
    for a missing file or column, a non-numeric, empty, NaN or infinite cell, an
    empty file, or fewer rows than the model needs.

    The columns are read by pyarrow as typed float64, in parallel (the reader of
    ``linreg predict``). Only when that fails is the file read again to locate the
    bad cell: in chunks, by the batch scoring reader, or for a file that is not one
    record per line (and for Parquet) as text with pandas, which words every other
    fault.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    from training.table_reader import load_fast

    fast = load_fast(path, target, features)
    if fast is not None:
        return fast
    return _load_slow(path, target, features)


def _load_slow(path: Path, target: str, features: Sequence[str] | None) -> Table:
    """The text reader: every cell read as text with pandas, then converted."""
    frame, first_line = _read_frame(path)
    columns = [str(c) for c in frame.columns]
    frame.columns = columns
    wanted = _wanted_columns(path, columns, target, features)
    if len(frame) == 0:
        raise DataError(f"{path}: the file has a header but no data rows")
    X = np.column_stack([_numeric_column(frame, c, path, first_line) for c in wanted])
    y = _numeric_column(frame, target, path, first_line)
    validate_xy(X, y, source=str(path))
    return Table(X=X, y=y, features=wanted, target=target, source=str(path))


def _wanted_columns(
    path: Path, columns: list[str], target: str, features: Sequence[str] | None
) -> list[str]:
    """The feature columns to read, after checking the header against the request."""
    repeated = sorted(c for c, n in Counter(columns).items() if n > 1)
    if repeated or "" in columns:
        what = f"repeats column name(s) {repeated}" if repeated else "has an empty column name"
        raise DataError(f"{path}: the header {what}; the file has columns {columns}")
    wanted = [c for c in columns if c != target] if features is None else list(features)
    if not wanted:
        raise DataError(f"{path}: no feature columns (columns are {columns})")
    if len(set(wanted)) != len(wanted):
        raise DataError(f"{path}: feature names repeat: {wanted}")
    if target in wanted:
        raise DataError(f"{path}: the target {target!r} is also listed as a feature")
    missing = [c for c in [*wanted, target] if c not in columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}; the file has columns {columns}")
    return wanted


def table_columns(
    path: str | Path, *, target: str, features: Sequence[str] | None = None
) -> list[str]:
    """The feature columns of a file's header (all but the target when ``features`` is
    None), checked as :func:`load_table` checks them; reads no data."""
    from training.table_reader import header_columns

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    return _wanted_columns(path, header_columns(path), target, features)


def iter_table_chunks(
    path: str | Path,
    *,
    target: str,
    features: Sequence[str],
    chunk_rows: int | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The rows of a file in chunks, ``(X (m, k), y (m,))`` float64, read by the batch
    scoring reader (CSV blocks parsed on threads, Parquet batches read ahead).

    The first bad cell raises :class:`DataError` naming the file, the column, the row
    and (text files) the line, as :func:`load_table` does (without the count of bad
    cells, which would need the rest of the file).
    """
    from training.table_reader import stream_chunks

    return stream_chunks(Path(path), target, list(features), chunk_rows)


def validate_xy(
    X: np.ndarray, y: np.ndarray, *, source: str = "input", fit_intercept: bool = True
) -> None:
    """Check shapes, finiteness and that there are more rows than parameters."""
    if X.ndim != 2:
        raise DataError(f"{source}: X must be 2-D (n_samples, n_features), got shape {X.shape}")
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise DataError(f"{source}: y must have shape ({X.shape[0]},), got {y.shape}")
    n, k = X.shape
    if k == 0:
        raise DataError(f"{source}: X has no feature columns")
    for name, arr in (("X", X), ("y", y)):
        bad = np.argwhere(~np.isfinite(arr))
        if bad.size:
            where = (
                f"row {bad[0][0] + 1}, column {bad[0][1] + 1}"
                if arr.ndim == 2
                else f"row {bad[0][0] + 1}"
            )
            raise DataError(f"{source}: {name} has a NaN or infinite value at {where}")
    n_params = k + 1 if fit_intercept else k
    if n <= n_params:
        raise DataError(
            f"{source}: {n} row(s) is too few: a model with {k} feature(s) has {n_params} "
            f"parameters and needs at least {n_params + 1} rows (one residual degree of freedom)"
        )
