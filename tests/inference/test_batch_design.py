"""Batch scoring of a model fitted on a real table: text columns, gaps, a formula.

``score_file`` on CSV, TSV and Parquet (string and dictionary columns) is compared with
``Predictor.predict`` on the same rows in the same batches (bit for bit), with
statsmodels' formula OLS fitted values (1e-6 relative to the largest with float32,
1e-12 with float64), and with itself with the C readers switched off
(``LINREG_NO_NATIVE=1``: byte for byte). Unseen levels and gaps are bad rows in every
``bad_rows`` mode, named by file, line or row, column and value.
"""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

pytest.importorskip("torch")
pytest.importorskip("statsmodels")

from inference import Predictor  # noqa: E402
from inference.batch import BAD_ROWS_COLUMNS, score_file  # noqa: E402
from inference.errors import BatchError, InputError  # noqa: E402
from inference.io.csv import reader as csv_reader  # noqa: E402
from inference.io.parquet import fast as parquet_fast  # noqa: E402
from tests.inference.design_models import (  # noqa: E402
    PENGUINS_FORMULA,
    RTOL,
    TYPES_FORMULA,
    export,
    fitted_values,
    penguins,
    types_frame,
)

FORMATS = ["csv", "tsv", "quoted.csv", "string.parquet", "dictionary.parquet"]


@pytest.fixture(scope="module", params=["float32", "float64"])
def model(request, tmp_path_factory):
    directory = tmp_path_factory.mktemp(f"penguins-{request.param}") / "model"
    export(penguins(), PENGUINS_FORMULA, directory, request.param)
    return request.param, Predictor.load(directory, providers="cpu")


@pytest.fixture(scope="module")
def complete():
    """The penguins statsmodels fits: the rows without a gap in a used column."""
    frame = penguins()
    return frame.loc[fitted_values(frame, PENGUINS_FORMULA).index].reset_index(drop=True)


def write(frame: pd.DataFrame, path: Path) -> Path:
    """``frame`` as the file ``path`` names: CSV, TSV, CSV with quoted text, Parquet with
    string columns or with dictionary (pandas categorical) columns."""
    name = path.name
    if name.endswith("string.parquet"):
        frame.to_parquet(path, index=False, row_group_size=700)
    elif name.endswith("dictionary.parquet"):
        text = frame.select_dtypes(exclude="number").columns
        frame.astype({c: "category" for c in text}).to_parquet(path, index=False)
    elif name.endswith("quoted.csv"):
        frame.to_csv(path, index=False, quoting=csv.QUOTE_NONNUMERIC)
    else:
        frame.to_csv(path, index=False, sep="\t" if name.endswith("tsv") else ",")
    return path


def scored(path: Path) -> np.ndarray:
    if path.suffix == ".parquet":
        return pq.read_table(path).column("prediction").to_numpy()
    return pd.read_csv(path)["prediction"].to_numpy()


def predict(predictor: Predictor, frame: pd.DataFrame, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the columns the model does not read
        return predictor.predict(frame, **kwargs)


@pytest.fixture
def fast_paths(monkeypatch):
    """How many chunks the C readers gave (CSV blocks, Parquet batches)."""
    counts = {"csv": 0, "parquet": 0}
    parse_plain, decoded = csv_reader._parse_plain, parquet_fast.decoded_batches

    def counted_parse(*args):
        chunk = parse_plain(*args)
        counts["csv"] += chunk is not None
        return chunk

    def counted_decoded(*args):
        for batch in decoded(*args):
            counts["parquet"] += 1
            yield batch

    monkeypatch.setattr(csv_reader, "_parse_plain", counted_parse)
    monkeypatch.setattr(parquet_fast, "decoded_batches", counted_decoded)
    return counts


@pytest.mark.parametrize("fmt", FORMATS)
def test_batch_equals_predict_and_statsmodels(model, complete, fmt, tmp_path, fast_paths):
    dtype, predictor = model
    source = write(complete, tmp_path / f"in.{fmt}")
    out = tmp_path / "out.parquet"
    report = score_file(predictor, source, out)
    assert report.rows_written == len(complete) and report.rows_bad == 0
    got = scored(out)
    assert got.dtype == predictor.dtype
    # one chunk, one call: the same bits as the Predictor on the same rows
    np.testing.assert_array_equal(got, predict(predictor, complete))
    fitted = fitted_values(penguins(), PENGUINS_FORMULA).to_numpy()
    scale = RTOL[dtype] * np.abs(fitted).max()
    np.testing.assert_allclose(got, fitted, rtol=RTOL[dtype], atol=scale)
    # the C readers did the reading (not the fallback), numbers and factor fields alike
    kind = "parquet" if fmt.endswith("parquet") else "csv"
    assert fast_paths[kind] >= 1, fast_paths


@pytest.mark.parametrize("fmt", ["csv", "quoted.csv", "string.parquet", "dictionary.parquet"])
def test_without_the_c_readers_the_output_is_the_same_bytes(
    model, complete, fmt, tmp_path, monkeypatch
):
    _, predictor = model
    big = pd.concat([complete] * 30, ignore_index=True)  # about 10,000 rows
    source = write(big, tmp_path / f"in.{fmt}")
    outputs = []
    for native in ("0", "1"):
        monkeypatch.setenv("LINREG_NO_NATIVE", native)
        out = tmp_path / f"out-{native}.csv"
        score_file(predictor, source, out, chunk_rows=1_000, id_columns=["species"])
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]
    assert outputs[0].count(b"\n") == len(big) + 1


def test_chunks_equal_predict_on_the_same_batches(model, complete, tmp_path):
    _, predictor = model
    big = pd.concat([complete] * 10, ignore_index=True)
    source = write(big, tmp_path / "in.dictionary.parquet")
    out = tmp_path / "out.parquet"
    score_file(predictor, source, out, chunk_rows=500)
    expected = np.concatenate(
        [predict(predictor, big.iloc[i : i + 500]) for i in range(0, len(big), 500)]
    )
    np.testing.assert_array_equal(scored(out), expected)


def test_intervals_and_kept_text_columns(model, complete, tmp_path):
    _, predictor = model
    source = write(complete, tmp_path / "in.csv")
    out = tmp_path / "out.csv"
    score_file(
        predictor, source, out, id_columns=["island", "sex"], interval="prediction", level=0.9
    )
    got = pd.read_csv(out, keep_default_na=False)
    assert got.columns.tolist() == [
        "island",
        "sex",
        "prediction",
        "prediction_lower",
        "prediction_upper",
    ]
    assert got["island"].tolist() == complete["island"].tolist()
    expected = predict(predictor, complete, interval="prediction", level=0.9)
    np.testing.assert_array_equal(got["prediction_lower"], expected.lower)
    np.testing.assert_array_equal(got["prediction_upper"], expected.upper)


# --- bad rows ------------------------------------------------------------------------
#: (row of the complete table, column, value written there, what the message says)
DAMAGE = [
    (3, "island", "Atlantis", r"'Atlantis' is not a level this model knows \(levels: "),
    (10, "sex", None, "missing value"),
    (20, "bill_length_mm", None, "missing value"),
    (30, "species", "adelie", r"'adelie' is not a level this model knows"),
]


def damaged(complete: pd.DataFrame) -> pd.DataFrame:
    frame = complete.copy()
    for row, column, value, _ in DAMAGE:
        frame.loc[row, column] = value
    return frame


@pytest.mark.parametrize("native", ["0", "1"])
@pytest.mark.parametrize("fmt", ["csv", "string.parquet", "dictionary.parquet"])
def test_unseen_levels_and_gaps_in_every_bad_rows_mode(
    model, complete, fmt, native, tmp_path, monkeypatch
):
    monkeypatch.setenv("LINREG_NO_NATIVE", native)
    _, predictor = model
    frame = damaged(complete)
    source = write(frame, tmp_path / f"in.{fmt}")
    parquet = fmt.endswith("parquet")
    row, column, _, reason = DAMAGE[0]
    where = f"row {row + 1}" if parquet else f"line {row + 2}"
    with pytest.raises(BatchError, match=f"{where}, column '{column}': {reason}") as caught:
        score_file(predictor, source, tmp_path / "out.csv")
    assert "['Biscoe', 'Dream', 'Torgersen']" in str(caught.value)
    assert not (tmp_path / "out.csv").exists()

    report = score_file(predictor, source, tmp_path / "skip.csv", bad_rows="skip")
    assert (report.rows_read, report.rows_bad) == (len(frame), len(DAMAGE))
    kept = complete.drop(index=[r for r, *_ in DAMAGE])
    np.testing.assert_allclose(
        scored(tmp_path / "skip.csv"), predict(predictor, kept), rtol=1e-6, atol=0
    )

    bad_file = tmp_path / "bad.csv"
    score_file(predictor, source, tmp_path / "file.csv", bad_rows=bad_file)
    bad = pd.read_csv(bad_file, keep_default_na=False)
    assert bad.columns.tolist() == list(BAD_ROWS_COLUMNS)
    assert bad["row"].tolist() == [r + 1 for r, *_ in DAMAGE]
    assert bad["column"].tolist() == [c for _, c, *_ in DAMAGE]
    for reason_text, (*_, pattern) in zip(bad["error"], DAMAGE, strict=True):
        assert pd.Series([reason_text]).str.contains(pattern).all(), reason_text
    if not parquet:
        assert bad["line"].tolist() == [r + 2 for r, *_ in DAMAGE]
        assert "Atlantis" in bad["record"][0]


def test_a_design_column_that_is_not_finite_is_named(model, complete, tmp_path):
    _, predictor = model
    frame = complete.copy()
    frame.loc[5, "flipper_length_mm"] = -3.0  # np.log of a negative number
    source = write(frame, tmp_path / "in.csv")
    with pytest.raises(
        BatchError,
        match=r"line 7, column 'flipper_length_mm': the design column "
        r"'np.log\(flipper_length_mm\)' is nan for flipper_length_mm=-3.0",
    ):
        score_file(predictor, source, tmp_path / "out.csv")


def test_columns_are_checked_before_any_row(model, complete, tmp_path):
    _, predictor = model
    source = write(complete.drop(columns="sex"), tmp_path / "in.csv")
    with pytest.raises(BatchError, match=r"line 1, column 'sex': no such column"):
        score_file(predictor, source, tmp_path / "out.csv")
    table = pa.Table.from_pandas(complete.astype({"island": "float64"}, errors="ignore"))
    table = table.set_column(
        table.schema.get_field_index("island"), "island", pa.array(np.ones(len(complete)))
    )
    pq.write_table(table, tmp_path / "in.parquet")
    with pytest.raises(BatchError, match=r"column 'island': holds double; this column is a factor"):
        score_file(predictor, tmp_path / "in.parquet", tmp_path / "out.csv")


# --- text, integer and boolean factors -------------------------------------------------
@pytest.fixture(scope="module")
def types_model(tmp_path_factory):
    directory = tmp_path_factory.mktemp("types") / "model"
    export(types_frame(300, 0), TYPES_FORMULA, directory, "float64")
    return Predictor.load(directory, providers="cpu")


@pytest.mark.parametrize("native", ["0", "1"])
def test_integer_and_boolean_factors_by_the_models_rules(
    types_model, tmp_path, monkeypatch, native
):
    monkeypatch.setenv("LINREG_NO_NATIVE", native)
    frame = types_frame(2_000, 1).drop(columns="y")
    expected = predict(types_model, frame)
    frame.to_parquet(tmp_path / "in.parquet", index=False)  # int64 and bool columns
    frame.to_csv(tmp_path / "in.csv", index=False)  # True/False, 1/2/3
    padded = frame.astype({"n": str})
    padded["n"] = "0" + padded["n"]  # "02" is the level 2, by the model's rules
    padded.to_csv(tmp_path / "padded.csv", index=False)
    for name in ("in.parquet", "in.csv", "padded.csv"):
        out = tmp_path / f"{name}.parquet"
        score_file(types_model, tmp_path / name, out)
        np.testing.assert_array_equal(scored(out), expected, err_msg=name)
    frame = frame.astype({"flag": object})
    frame.loc[7, "n"] = 9
    frame.loc[8, "flag"] = None
    frame.to_csv(tmp_path / "bad.csv", index=False)
    report = score_file(
        types_model, tmp_path / "bad.csv", tmp_path / "out.csv", bad_rows=tmp_path / "b.csv"
    )
    assert report.rows_bad == 2
    bad = pd.read_csv(tmp_path / "b.csv")
    assert bad["column"].tolist() == ["n", "flag"]
    assert bad["error"][0] == "'9' is not a level this model knows (levels: ['1', '2', '3'])"
    assert bad["error"][1] == "missing value (an empty field)"


def test_pandas_na_in_a_string_column_is_a_missing_value(model, complete):
    """pandas' string dtype (what Dask makes of text) holds gaps as ``pd.NA``."""
    _, predictor = model
    frame = complete.head(4).astype({"sex": "string"})
    frame.loc[2, "sex"] = pd.NA
    with pytest.raises(InputError, match=r"row 3, column 'sex': a missing value"):
        predict(predictor, frame)
