"""``linreg predict --engine spark``: Spark reads CSV or Parquet and writes a directory of
parts, atomically; read back with pyarrow and compared with the Predictor."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from inference import Predictor
from linreg.main import main
from tests.spark.conftest import needs_spark

pytestmark = needs_spark

MLR = Path(__file__).resolve().parents[2] / "exported_models" / "plant_richness_mlr"


def _input(tmp_path: Path, kind: str, rows: int = 5000):
    import pandas as pd

    rng = np.random.default_rng(11)
    table = pd.DataFrame(
        {
            "id": np.arange(rows),
            "area": rng.integers(1, 900, rows),
            "latitude": rng.normal(40, 8, rows).round(4),
            "dist_mainland": rng.uniform(0, 300, rows).round(3),
            "note": [f"n{i}" for i in range(rows)],
        }
    )
    path = tmp_path / f"in.{kind}"
    if kind == "csv":
        table.to_csv(path, index=False)
    else:
        table.to_parquet(path, index=False)
    return path, table


def _read_parts(directory: Path):
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    parts = sorted(p for p in directory.iterdir() if p.name.startswith("part-"))
    assert parts and (directory / "_SUCCESS").is_file()
    if parts[0].suffix == ".csv":
        import pyarrow as pa

        frame = pa.concat_tables([pacsv.read_csv(p) for p in parts if p.stat().st_size]).to_pandas()
    else:
        frame = pq.read_table(directory).to_pandas()
    # kept columns of a CSV input stay text, as the streaming engine keeps them
    frame["id"] = frame["id"].astype("int64")
    return frame.sort_values("id").reset_index(drop=True)


def _temporaries(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir() if ".tmp-" in p.name or ".old-" in p.name]


@pytest.mark.parametrize(("src_kind", "out_name"), [("csv", "out.parquet"), ("parquet", "out.csv")])
def test_files_are_scored_into_a_directory_of_parts(spark, tmp_path, capsys, src_kind, out_name):
    src, table = _input(tmp_path, src_kind)
    out = tmp_path / out_name
    args = ["predict", str(MLR), str(src), "-o", str(out), "--engine", "spark"]
    assert main([*args, "--id-columns", "id,note", "--interval", "prediction"]) == 0
    assert "scored 5000 rows" in capsys.readouterr().err
    got = _read_parts(out)
    assert list(got.columns) == [
        "id",
        "note",
        "prediction",
        "prediction_lower",
        "prediction_upper",
    ]
    want = Predictor.load(MLR).predict(table, interval="prediction")
    np.testing.assert_array_equal(
        got["prediction"].to_numpy(np.float32), want.prediction.astype("f4")
    )
    np.testing.assert_array_equal(got["prediction_lower"].to_numpy(), want.lower)
    assert got["note"].tolist() == table["note"].tolist() and _temporaries(tmp_path) == []


def test_an_output_is_replaced_only_with_overwrite_and_a_failure_leaves_it(spark, tmp_path, capsys):
    src, table = _input(tmp_path, "csv", rows=300)
    out = tmp_path / "scored.parquet"
    base = ["predict", str(MLR), str(src), "-o", str(out), "--engine", "spark", "--keep-all"]
    assert main(base) == 0
    first = _read_parts(out)
    assert main(base) == 2 and "exists; pass overwrite=True" in capsys.readouterr().err
    text = src.read_text().splitlines()
    cells = text[42].split(",")
    cells[2] = "north"  # latitude of id 41: not a number
    text[42] = ",".join(cells)
    src.write_text("\n".join(text) + "\n")
    assert main([*base, "--overwrite"]) == 1
    err = capsys.readouterr().err
    assert "column 'latitude': a null" in err and "Spark partition" in err
    assert _read_parts(out).equals(first) and _temporaries(tmp_path) == []
    assert main([*base, "--overwrite", "--bad-rows", "null"]) == 0
    replaced = _read_parts(out)
    assert replaced["prediction"].isna().tolist() == (replaced["id"] == 41).tolist()
    assert _temporaries(tmp_path) == []
    good = table[table["id"] != 41]
    want = Predictor.load(MLR).predict(good)
    np.testing.assert_array_equal(replaced["prediction"].dropna().to_numpy(np.float32), want)


def test_a_directory_that_is_not_spark_output_is_never_replaced(spark, tmp_path, capsys):
    src, _ = _input(tmp_path, "parquet", rows=10)
    out = tmp_path / "mine"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    args = ["predict", str(MLR), str(src), "-o", str(out) + ".parquet", "--engine", "spark"]
    (tmp_path / "mine.parquet").symlink_to(out)
    assert main([*args, "--overwrite"]) == 2
    assert "is not an output of Spark" in capsys.readouterr().err
    assert (out / "keep.txt").read_text() == "precious"
