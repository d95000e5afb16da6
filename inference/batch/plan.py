"""The plan of a job: which columns are read, kept and written, checked before any data is read.

Shared by the streaming engine (:mod:`inference.batch.job`) and the Dask engine
(:mod:`inference.dask`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inference.batch.options import ScoreOptions
from inference.errors import BatchError, UsageError
from inference.io import Part, ReadSpec, import_pyarrow, inspect_part
from inference.predictor import Predictor
from inference.session import Signature

__all__ = ["Plan", "plan_job"]


@dataclass(frozen=True, kw_only=True)
class Plan(ReadSpec):
    """The columns of a job: what the readers read (:class:`~inference.io.ReadSpec`:
    ``features`` in the model's order, ``kept`` copied beside the prediction, the
    model's ``dtype``), and the output's names and Arrow schema."""

    out_names: list[str]
    out_schema: Any


def _numeric_or_text(pa: Any, t: Any) -> bool:
    types = pa.types
    return bool(
        types.is_integer(t)
        or types.is_floating(t)
        or types.is_decimal(t)
        or types.is_string(t)
        or types.is_large_string(t)
        or types.is_null(t)
    )


def plan_job(
    paths: Sequence[Path],
    predictor: Predictor | Signature,
    options: ScoreOptions,
) -> tuple[list[Part], Plan]:
    """Read every part's header (or Parquet schema), no data, and plan the output
    columns; a missing or repeated column raises :class:`BatchError` here, before
    any row is read. Only the model's ``features`` and ``dtype`` are used: a loaded
    :class:`Predictor`, or the :class:`~inference.session.Signature` its manifest gives.
    Shared by the streaming and the Dask engines."""
    parts = [
        inspect_part(path, options.input_format, max_line_bytes=options.max_line_bytes)
        for path in paths
    ]
    plan = _make_plan(
        parts,
        predictor,
        id_columns=options.id_columns,
        keep_all=options.keep_all,
        prediction_column=options.prediction_column,
        interval=options.interval,
    )
    return parts, plan


def _check_columns(parts: list[Part], features: list[str], kept: list[str], keep_all: bool) -> None:
    """Every part has each feature and kept column once (keep_all: the same columns), and
    a Parquet part's features hold numbers or text."""
    pa = import_pyarrow()
    first = parts[0]
    for part in parts:
        line = 1 if part.fmt.kind == "csv" else None
        for name in features + kept:
            if name not in part.columns:
                role = "the model needs it" if name in features else "asked to keep it"
                raise BatchError(
                    f"no such column ({role}); the file has {part.columns}, the model "
                    f"reads {features}",
                    file=part.name,
                    line=line,
                    column=name,
                )
            if part.columns.count(name) > 1:
                raise BatchError(
                    "the header names this column more than once",
                    file=part.name,
                    line=line,
                    column=name,
                )
        if keep_all and list(part.columns) != kept:
            raise BatchError(
                f"columns {part.columns} differ from the first part's {kept} "
                f"({first.name}); keep_all needs the same columns in every part",
                file=part.name,
                line=line,
            )
        if part.fmt.kind == "parquet":
            for name in features:
                t = part.types[name]
                if not _numeric_or_text(pa, t):
                    raise BatchError(
                        f"holds {t}; expected numbers (integer, float or decimal) or text",
                        file=part.name,
                        column=name,
                    )


def _make_plan(
    parts: list[Part],
    predictor: Predictor | Signature,
    *,
    id_columns: Sequence[str] | None,
    keep_all: bool,
    prediction_column: str,
    interval: str | None,
) -> Plan:
    pa = import_pyarrow()
    features = list(predictor.features)
    first = parts[0]
    kept = list(first.columns) if keep_all else list(id_columns or [])
    if len(set(kept)) != len(kept):
        raise BatchError(f"repeated column names in {kept}", file=first.name)
    _check_columns(parts, features, kept, keep_all)
    out_names = kept + [prediction_column]
    if interval is not None:
        out_names += [f"{prediction_column}_lower", f"{prediction_column}_upper"]
    clash = [n for n in out_names[len(kept) :] if n in kept]
    if clash:
        raise UsageError(
            f"the output would have two columns named {clash[0]!r} (an input column and a "
            "prediction column); choose another prediction_column"
        )
    if first.fmt.kind == "csv":
        kept_types = [pa.string()] * len(kept)
    else:
        kept_types = [first.types[n] for n in kept]
    out_types = kept_types + [pa.from_numpy_dtype(predictor.dtype)]
    if interval is not None:
        out_types += [pa.float64(), pa.float64()]
    schema = pa.schema([pa.field(n, t) for n, t in zip(out_names, out_types, strict=True)])
    return Plan(features, kept, predictor.dtype, out_names=out_names, out_schema=schema)
