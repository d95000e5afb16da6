from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.data import DATASETS, DataError, load_dataset, load_table

from ..conftest import DATA


def test_bundled_datasets_load_by_name():
    lr = load_dataset("plant_richness_lr")
    assert lr.X.shape == (22, 1) and lr.y.shape == (22,)
    assert lr.features == ["area"] and lr.target == "ntv_rich"
    mlr = load_dataset("plant_richness_mlr")
    assert mlr.features == ["area", "latitude", "dist_mainland"]
    assert mlr.X.dtype == np.float64
    raw = pd.read_csv(DATA / "plant_richness_mlr.tsv", sep="\t")
    np.testing.assert_array_equal(mlr.X, raw[mlr.features].to_numpy())
    assert set(DATASETS) == {"plant_richness_lr", "plant_richness_mlr", "penguins"}
    # the table with text columns and gaps (issue 23) loads as a DataFrame, as written
    from training.data import load_dataset_frame

    penguins = load_dataset_frame("penguins")
    written = pd.read_csv(DATA / "penguins.csv")
    assert penguins.shape == written.shape == (344, 8)
    assert penguins.isna().sum().to_dict() == written.isna().sum().to_dict()
    with pytest.raises(DataError, match="has text columns and gaps"):
        load_dataset("penguins")


def test_unknown_dataset():
    with pytest.raises(DataError, match="unknown data set 'nope'"):
        load_dataset("nope")


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".parquet"])
def test_user_files_load_with_chosen_columns(tmp_path, suffix):
    frame = pd.DataFrame(
        {
            "id": [1, 2, 3, 4, 5, 6],
            "a": [1.0, 2, 3, 4, 5, 7],
            "b": [0.5, 0, 1, 2, 2, 1],
            "y": [1.0, 3, 2, 5, 4, 6],
        }
    )
    path = tmp_path / f"t{suffix}"
    if suffix == ".parquet":
        frame.to_parquet(path)
    else:
        frame.to_csv(path, sep="\t" if suffix == ".tsv" else ",", index=False)
    t = load_table(path, target="y", features=["b", "a"])
    assert t.features == ["b", "a"]
    np.testing.assert_array_equal(t.X, frame[["b", "a"]].to_numpy(float))
    np.testing.assert_array_equal(t.y, frame["y"].to_numpy(float))
    everything = load_table(path, target="y")
    assert everything.features == ["id", "a", "b"]


def _write(tmp_path, text, name="t.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_missing_column_names_file_and_column(tmp_path):
    path = _write(tmp_path, "a,y\n1,2\n2,3\n3,4\n4,5\n")
    with pytest.raises(
        DataError, match=r"t\.csv: missing column\(s\) \['b'\]; the file has columns \['a', 'y'\]"
    ):
        load_table(path, target="y", features=["a", "b"])


def test_non_numeric_cell_names_column_row_and_line(tmp_path):
    path = _write(tmp_path, "a,y\n1,2\n2,3\nseven,4\n4,5\n")
    with pytest.raises(
        DataError, match=r"t\.csv: column 'a', row 3 \(line 4\): the value 'seven' is not numeric"
    ):
        load_table(path, target="y")


@pytest.mark.parametrize("cell", ["nan", "inf", "-inf", "NaN"])
def test_nan_and_inf_cells(tmp_path, cell):
    path = _write(tmp_path, f"a,y\n1,2\n2,3\n3,4\n4,{cell}\n")
    with pytest.raises(
        DataError, match=rf"column 'y', row 4 \(line 5\): the value '{cell}' is not a finite number"
    ):
        load_table(path, target="y")


def test_empty_cell(tmp_path):
    path = _write(tmp_path, "a,y\n1,2\n,3\n3,4\n4,5\n")
    with pytest.raises(
        DataError, match=r"column 'a', row 2 \(line 3\): an empty cell is not numeric"
    ):
        load_table(path, target="y")


def test_nan_in_parquet_names_row(tmp_path):
    path = tmp_path / "t.parquet"
    pd.DataFrame({"a": [1.0, 2.0, np.nan, 4.0], "y": [1.0, 2, 3, 4]}).to_parquet(path)
    with pytest.raises(
        DataError, match=r"t\.parquet: column 'a', row 3: nan is not a finite number"
    ):
        load_table(path, target="y")


def test_empty_file(tmp_path):
    with pytest.raises(DataError, match=r"t\.csv: the file is empty"):
        load_table(_write(tmp_path, ""), target="y")


def test_header_only(tmp_path):
    with pytest.raises(DataError, match="has a header but no data rows"):
        load_table(_write(tmp_path, "a,y\n"), target="y")


def test_fewer_rows_than_parameters(tmp_path):
    path = _write(tmp_path, "a,b,y\n1,2,3\n2,3,4\n3,1,5\n")
    with pytest.raises(
        DataError, match=r"3 row\(s\) is too few: a model with 2 feature\(s\) has 3 parameters"
    ):
        load_table(path, target="y")


def test_missing_file_and_unknown_type(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_table(tmp_path / "absent.csv", target="y")
    with pytest.raises(DataError, match="unknown file type '.xlsx'"):
        load_table(_write(tmp_path, "x", "t.xlsx"), target="y")


def test_typed_reading_matches_python_floats_with_spaces_and_blank_lines(tmp_path):
    text = "a,b,y\n 1.5 ,2,3\n\n2e3, -4 ,+5\n7,8.25,9\n10,11,12\n"
    t = load_table(_write(tmp_path, text), target="y")
    expected = [[float(c) for c in line.split(",")] for line in text.splitlines()[1:] if line]
    np.testing.assert_array_equal(t.X, np.array(expected)[:, :2])
    np.testing.assert_array_equal(t.y, np.array(expected)[:, 2])


def test_bad_cell_after_blank_lines_names_its_true_line_and_counts(tmp_path):
    path = _write(tmp_path, "a,y\n1,2\n\n2,3\nx,4\n5,6\n,7\n8,9\n")
    with pytest.raises(
        DataError,
        match=r"column 'a', row 3 \(line 5\): the value 'x' is not numeric "
        r"\(2 bad cell\(s\) in this column\)",
    ):
        load_table(path, target="y")


def test_first_bad_column_in_feature_order_is_reported(tmp_path):
    path = _write(tmp_path, "a,b,y\n1,oops,2\n2,3,3\n3,4,4\nnan,5,5\n6,7,8\n")
    with pytest.raises(DataError, match=r"column 'b', row 1 \(line 2\): the value 'oops'"):
        load_table(path, target="y", features=["b", "a"])
    with pytest.raises(DataError, match=r"column 'a', row 4 \(line 5\): the value 'nan' is not a"):
        load_table(path, target="y", features=["a", "b"])


def test_parquet_integer_and_float32_columns_load_as_float64(tmp_path):
    path = tmp_path / "t.parquet"
    frame = pd.DataFrame(
        {"a": np.arange(6, dtype=np.int32), "b": np.linspace(0, 1, 6, dtype=np.float32)}
    )
    frame["y"] = [1.0, 3.0, 2.0, 5.0, 4.0, 6.0]
    frame.to_parquet(path)
    t = load_table(path, target="y")
    assert t.X.dtype == np.float64
    np.testing.assert_array_equal(t.X, frame[["a", "b"]].to_numpy(np.float64))


@pytest.mark.slow
def test_loading_a_clean_file_does_not_import_pandas(tmp_path):
    import subprocess
    import sys

    path = _write(tmp_path, "a,b,y\n1,2,3\n2,3,5\n3,5,8\n4,4,9\n5,1,7\n")
    code = (
        "import sys; from training.data import load_table; "
        f"t = load_table({str(path)!r}, target='y'); print(t.X.shape, 'pandas' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "(5, 2) False"


def test_bytes_that_are_not_utf8_are_refused_even_in_columns_not_read(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes(b"id,a,y\nx\xff,1,2\nb,2,3\nc,3,5\nd,4,4\n")
    with pytest.raises(DataError, match=r"t\.csv: cannot be parsed"):
        load_table(path, target="y", features=["a"])
