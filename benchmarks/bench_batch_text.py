"""The text-columns mode of ``benchmarks/bench_batch.py`` (``--text``): a table with factors.

The input has an ``int64`` id, ``--features`` float64 features ``x0, x1, ...`` drawn
from a normal distribution, and two text columns: ``g10`` with 10 levels and ``g50``
with 50 (``"L00"``, ``"L01"``, ...; uniform). The model is the formula
``y ~ x0 + ... + C(g10) + C(g50)`` fitted on 5,000 rows of the same kind
(:func:`training.pipeline.train`, treatment coding, float32 export), so ``linreg
predict`` runs the design graph with each factor coded per distinct value.

The rivals do the same encoding as an expression, each a script in :data:`TEXT_JOBS`
written as a user would write it, the coefficients read from the manifest's design:
polars maps each factor with ``replace_strict`` (an unknown level is an error) and
DuckDB with ``CASE "g10" WHEN 'L00' THEN ... ELSE error(...) END``. The reference is
numpy in float64 on the same values (:func:`make_text_inputs`).
"""

from __future__ import annotations

import json
from pathlib import Path

FACTORS = {"g10": 10, "g50": 50}
TRAIN_ROWS = 5_000

# Each script is run as ``python -c SCRIPT MODEL INPUT OUTPUT``: the design's numeric
# columns and each factor's level -> coefficient (0 for the reference), from the manifest.
_DESIGN = """\
import json, sys
model, src, out = sys.argv[1:4]
with open(f"{model}/manifest.json") as f:
    manifest = json.load(f)
design, params = manifest["design"], manifest["parameters"]
intercept, numeric, levels = params["intercept"], {}, {}
for i in design["inputs"]:
    if i["kind"] == "factor":
        levels[i["name"]] = {level: 0.0 for level in i["levels"]}
for column, w in zip(design["columns"], params["coef"]):
    e = column["expr"]
    if e["op"] == "col":
        numeric[e["input"]] = w
    else:
        assert e["op"] == "level", e
        levels[e["input"]][e["level"]] = w
"""
_POLARS = """\
import polars as pl
prediction = sum((pl.col(f) * w for f, w in numeric.items()), pl.lit(intercept))
for name, mapping in levels.items():
    prediction = prediction + pl.col(name).replace_strict(mapping, return_dtype=pl.Float64)
"""
_DUCKDB = """\
import duckdb
terms = [repr(intercept)] + [f'{w!r} * "{f}"' for f, w in numeric.items()]
for name, mapping in levels.items():
    cases = " ".join(f"WHEN '{level}' THEN {w!r}" for level, w in mapping.items())
    terms.append(f"CASE \\"{name}\\" {cases} ELSE error('unknown level of {name}') END")
prediction = " + ".join(terms)
"""
TEXT_JOBS = {
    ("polars", "csv"): _DESIGN
    + _POLARS
    + """\
pl.scan_csv(src).select(prediction.alias("prediction")).sink_csv(out)
""",
    ("polars", "parquet"): _DESIGN
    + _POLARS
    + """\
pl.scan_parquet(src).select("id", prediction.alias("prediction")).sink_parquet(out)
""",
    ("duckdb", "csv"): _DESIGN
    + _DUCKDB
    + """\
duckdb.sql(f"COPY (SELECT {prediction} AS prediction FROM read_csv('{src}')) TO '{out}' (HEADER)")
""",
    ("duckdb", "parquet"): _DESIGN
    + _DUCKDB
    + """\
duckdb.sql(
    f"COPY (SELECT id, {prediction} AS prediction FROM read_parquet('{src}')) "
    f"TO '{out}' (FORMAT parquet)"
)
""",
}


def level_names(count: int) -> list[str]:
    return [f"L{j:02d}" for j in range(count)]


def _frame(rng, rows: int, features: list[str]):
    """A pandas frame of ``rows`` rows: the features, the two factors (and no target)."""
    import numpy as np
    import pandas as pd

    data = {f: rng.normal(size=rows) for f in features}
    for name, count in FACTORS.items():
        data[name] = np.array(level_names(count), dtype=object)[rng.integers(0, count, rows)]
    return pd.DataFrame(data)


def make_text_model(directory: Path, features: list[str]) -> Path:
    """The formula model on ``features`` and the two factors, exported (float32)."""
    import numpy as np

    from training.export import export_model
    from training.pipeline import train

    rng = np.random.default_rng(0)
    frame = _frame(rng, TRAIN_ROWS, features)
    y = frame[features].to_numpy() @ rng.normal(size=len(features)) + 1.0
    for name, count in FACTORS.items():
        effects = dict(zip(level_names(count), rng.normal(size=count), strict=True))
        y = y + frame[name].map(effects).to_numpy()
    frame["y"] = y + rng.normal(scale=0.1, size=len(frame))
    formula = "y ~ " + " + ".join(features + [f"C({name})" for name in FACTORS])
    run = train(frame, formula=formula, progress=False)
    return export_model(run, directory, plots=False)


def _coefficients(model: Path) -> tuple[float, dict[str, float], dict[str, dict[str, float]]]:
    manifest = json.loads((model / "manifest.json").read_text())
    design, params = manifest["design"], manifest["parameters"]
    numeric: dict[str, float] = {}
    levels = {
        i["name"]: dict.fromkeys(i["levels"], 0.0)
        for i in design["inputs"]
        if i["kind"] == "factor"
    }
    for column, w in zip(design["columns"], params["coef"], strict=True):
        e = column["expr"]
        if e["op"] == "col":
            numeric[e["input"]] = w
        else:
            levels[e["input"]][e["level"]] = w
    return float(params["intercept"]), numeric, levels


def make_text_inputs(directory: Path, rows: int, features: list[str], block: int) -> None:
    """``input-<rows>.csv`` and ``.parquet`` (the same values; Parquet text columns as
    pyarrow writes strings: dictionary-encoded pages), and ``reference-<rows>.npy``
    (numpy, float64, from the manifest's coefficients)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    intercept, numeric, levels = _coefficients(directory / "model")
    rng = np.random.default_rng(1)
    schema = pa.schema(
        [("id", pa.int64())]
        + [(f, pa.float64()) for f in features]
        + [(name, pa.string()) for name in FACTORS]
    )
    stem = directory / f"input-{rows}"
    # unquoted text, as pandas and polars write it (pyarrow quotes every string)
    unquoted = pacsv.WriteOptions(quoting_style="none")
    csv_writer = pacsv.CSVWriter(f"{stem}.csv", schema, write_options=unquoted)
    pq_writer = pq.ParquetWriter(f"{stem}.parquet", schema)
    reference = np.empty(rows)
    for start in range(0, rows, block):
        n = min(block, rows - start)
        X = rng.normal(size=(n, len(features)))
        y = X @ np.array([numeric[f] for f in features]) + intercept
        texts = []
        for name, count in FACTORS.items():
            codes = rng.integers(0, count, n)
            names = level_names(count)
            y += np.array([levels[name][level] for level in names])[codes]
            texts.append(pa.array(np.array(names, dtype=object)[codes], pa.string()))
        reference[start : start + n] = y
        columns = [pa.array(np.arange(start, start + n))] + [pa.array(c) for c in X.T] + texts
        chunk = pa.Table.from_arrays(columns, schema=schema)
        csv_writer.write_table(chunk)
        pq_writer.write_table(chunk)
    csv_writer.close()
    pq_writer.close()
    np.save(directory / f"reference-{rows}.npy", reference)
