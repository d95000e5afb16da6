"""Batch scoring of files: formats, kept columns, bad rows, atomic output, the CLI."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from inference import Predictor
from inference.batch import BAD_ROWS_COLUMNS, score_file
from inference.errors import BatchError
from inference.io.csv import reader as csv_reader
from inference.io.parquet import reader as parquet_reader
from linreg.main import main

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "exported_models" / "plant_richness_mlr"
FEATURES = ["area", "latitude", "dist_mainland"]
N = 5_000
# ONNX Runtime's float32 kernel for a batch of 2 or 3 rows sums in another order than
# for larger batches, so a row scored in a small chunk can differ from the same row
# scored in one big call by a few float32 ulps (more where terms cancel).
RTOL, ATOL = 1e-5, 1e-6


@pytest.fixture(scope="module")
def predictor():
    return Predictor.load(MODEL, providers="cpu")


def make_frame(n: int = N, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "id": [f"r{i:06d}" for i in range(n)],
            "area": rng.uniform(-1, 4, n).round(4),
            "note": rng.choice(["a", "b, with a comma", ""], n),
            "latitude": rng.uniform(35, 48, n).round(3),
            "dist_mainland": rng.uniform(0, 300, n).round(2),
        }
    )


@pytest.fixture(scope="module")
def frame():
    return make_frame()


def write(frame: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False, row_group_size=1_500)
    else:
        frame.to_csv(path, index=False, sep="\t" if path.suffix == ".tsv" else ",")
    return path


def read(path: Path) -> pd.DataFrame:
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path, sep="\t" if path.suffix == ".tsv" else ",", keep_default_na=False)


def lines_of(lines: list[str], path: Path) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def no_temporaries(directory: Path) -> bool:
    return not [p for p in directory.iterdir() if p.name.startswith(".") and "tmp" in p.name]


# --- formats and kept columns -------------------------------------------------
@pytest.mark.parametrize(
    ("src", "dst"),
    [
        (".csv", ".csv"),
        (".csv", ".parquet"),
        (".parquet", ".csv"),
        (".parquet", ".parquet"),
        (".tsv", ".tsv"),
    ],
)
def test_formats_in_and_out_keep_ids_and_equal_predict(tmp_path, frame, predictor, src, dst):
    source = write(frame, tmp_path / f"in{src}")
    out = tmp_path / f"out{dst}"
    report = score_file(MODEL, source, out, id_columns=["id"], chunk_rows=700)
    assert (report.rows_read, report.rows_written, report.rows_bad) == (N, N, 0)
    got = read(out)
    assert list(got.columns) == ["id", "prediction"]
    assert got["id"].tolist() == frame["id"].tolist()
    expected = predictor.predict(frame)
    # CSV holds the float32 prediction in its shortest decimal form, exact when read back.
    got_y = got["prediction"].to_numpy().astype(np.float32)
    np.testing.assert_allclose(got_y, expected, rtol=RTOL, atol=ATOL)
    if dst == ".parquet":
        assert pq.read_schema(out).field("prediction").type == pa.float32()
    assert no_temporaries(tmp_path)


def test_interval_columns_and_prediction_column_name(tmp_path, frame, predictor):
    source = write(frame, tmp_path / "in.csv")
    out = tmp_path / "out.parquet"
    score_file(
        MODEL, source, out, id_columns=["id"], interval="prediction", prediction_column="yhat"
    )
    got = pd.read_parquet(out)
    assert list(got.columns) == ["id", "yhat", "yhat_lower", "yhat_upper"]
    expected = predictor.predict(frame, interval="prediction")
    np.testing.assert_allclose(got["yhat"], expected.prediction, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(got["yhat_lower"], expected.lower, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(got["yhat_upper"], expected.upper, rtol=RTOL, atol=ATOL)


def test_keep_all_copies_csv_text_exactly(tmp_path):
    lines = ["id,area,latitude,dist_mainland,note", "007,1.50,42.0,3,x", '008,2,41,1e1,"a, b"']
    source = lines_of(lines, tmp_path / "in.csv")
    out = tmp_path / "out.csv"
    score_file(MODEL, source, out, keep_all=True)
    text = out.read_text().splitlines()
    assert text[0] == "id,area,latitude,dist_mainland,note,prediction"
    assert text[1].startswith("007,1.50,42.0,3,x,")
    assert text[2].startswith('008,2,41,1e1,"a, b",')


def test_directory_of_parts_in_sorted_order(tmp_path, frame, predictor):
    parts = tmp_path / "parts"
    parts.mkdir()
    for j in (2, 0, 1):  # written out of order; read in sorted name order
        write(frame.iloc[j * 1000 : (j + 1) * 1000], parts / f"part-{j}.csv")
    (parts / "_SUCCESS").write_text("")
    (parts / ".part-0.csv.crc").write_text("junk")
    out = tmp_path / "out.csv"
    report = score_file(MODEL, parts, out, id_columns=["id"])
    assert report.parts == 3 and report.rows_written == 3000
    got = read(out)
    assert got["id"].tolist() == frame["id"][:3000].tolist()
    np.testing.assert_allclose(
        got["prediction"], predictor.predict(frame[:3000]), rtol=RTOL, atol=ATOL
    )
    with pytest.raises(ValueError, match="inside the input directory"):
        score_file(MODEL, parts, parts / "scored.csv")


def test_compressed_csv_and_whitespace_and_blank_lines(tmp_path, predictor):
    lines = ["id,area,latitude,dist_mainland", "a, 1.5 ,42,3", "", "b,2,41,1", ""]
    source = tmp_path / "in.csv.gz"
    source.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    out = tmp_path / "out.csv.gz"
    report = score_file(MODEL, source, out, id_columns=["id"])
    assert (report.rows_read, report.rows_written) == (2, 2)
    got = pd.read_csv(out)
    assert got["id"].tolist() == ["a", "b"]
    expected = predictor.predict(np.array([[1.5, 42, 3], [2, 41, 1]]))
    np.testing.assert_allclose(got["prediction"], expected, rtol=RTOL, atol=ATOL)


# --- faults -------------------------------------------------------------------
BAD_LINE = 3_001  # line numbers count the header as line 1


@pytest.mark.parametrize(
    ("row", "column", "match"),
    [
        ("x,abc,42.0,3", "area", r"'abc' is not a number"),
        ("x,1.5,,3", "latitude", r"missing value"),
        ("x,1.5,NaN,3", "latitude", r"'NaN' is not a finite number"),
        ("x,1.5,42,-inf", "dist_mainland", r"'-inf' is not a finite number"),
        ("x,1.5,1e39,3", "latitude", r"'1e39' is not a finite number \(beyond the range of"),
        ("x,1.5,42", "dist_mainland", r"3 field\(s\), expected 4 \(a missing field\)"),
        ("x,1.5,42,3,4", None, r"5 field\(s\), expected 4 \(too many fields\)"),
    ],
)
def test_a_bad_row_in_the_middle_stops_with_its_line_and_column(tmp_path, row, column, match):
    lines = ["id,area,latitude,dist_mainland"] + [f"r{i},1.5,42.0,{i % 50}" for i in range(6000)]
    lines[BAD_LINE - 1] = row
    source = lines_of(lines, tmp_path / "in.csv")
    out = tmp_path / "out.csv"
    with pytest.raises(BatchError, match=match) as info:
        score_file(MODEL, source, out, id_columns=["id"], chunk_rows=500)
    err = info.value
    assert (err.line, err.row, err.column) == (BAD_LINE, BAD_LINE - 1, column)
    where = f"in.csv, line {BAD_LINE}" + (f", column '{column}'" if column else "")
    assert where in str(err)
    assert not out.exists() and no_temporaries(tmp_path)


def test_a_bad_row_keeps_an_older_output_untouched(tmp_path):
    lines = ["id,area,latitude,dist_mainland", "a,1,40,1", "b,oops,40,1"]
    source = lines_of(lines, tmp_path / "in.csv")
    out = tmp_path / "out.csv"
    out.write_text("previous\n")
    with pytest.raises(BatchError, match=r"line 3, column 'area': 'oops' is not a number"):
        score_file(MODEL, source, out, overwrite=True)
    assert out.read_text() == "previous\n" and no_temporaries(tmp_path)


def test_parquet_bad_rows_are_named_by_row_number(tmp_path, frame):
    latitude = frame["latitude"].to_numpy().copy()
    latitude[2_345] = np.nan  # a NaN value
    dist = frame["dist_mainland"].tolist()
    dist[4_000] = None  # and a null (missing) one, later
    table = pa.table(
        {
            "id": frame["id"].tolist(),
            "area": frame["area"].to_numpy(),
            "latitude": pa.array(latitude),  # from numpy: NaN stays NaN, not null
            "dist_mainland": pa.array(dist, type=pa.float64()),
        }
    )
    source = tmp_path / "in.parquet"
    pq.write_table(table, source, row_group_size=1_000)
    out = tmp_path / "out.parquet"
    with pytest.raises(BatchError, match=r"in.parquet, row 2346, column 'latitude': nan is not a"):
        score_file(MODEL, source, out, chunk_rows=512)
    assert not out.exists()
    report = score_file(MODEL, source, out, bad_rows=tmp_path / "bad.csv", id_columns=["id"])
    assert (report.rows_read, report.rows_written, report.rows_bad) == (N, N - 2, 2)
    rejected = pd.read_csv(tmp_path / "bad.csv")
    assert rejected["row"].tolist() == [2346, 4001]
    assert rejected["column"].tolist() == ["latitude", "dist_mainland"]
    assert rejected["error"].tolist() == [
        "nan is not a finite number",
        "a missing value (null)",  # Parquet's word (issue 28), not CSV's "empty field"
    ]
    assert '"id": "r004000"' in rejected["record"][1]


def bad_file(tmp_path: Path) -> tuple[Path, dict[int, str | None]]:
    """1000 rows with five bad ones (and a blank line); returns {line: column}."""
    lines = ["id,area,latitude,dist_mainland"] + [f"r{i},1.5,42.0,{i % 50}" for i in range(1000)]
    bad = {
        10: ("r8,zz,42,1", "area"),
        11: ("r9,1,,1", "latitude"),
        500: ("r498,1,42", "dist_mainland"),
        700: ("r698,1,42,1,1", None),
        1001: ("r999,1,inf,1", "latitude"),
    }
    for line, (text, _) in bad.items():
        lines[line - 1] = text
    lines.insert(300, "")  # a blank line: skipped, and the lines after it are one further
    moved = {(line + 1 if line > 300 else line): col for line, (_, col) in bad.items()}
    return lines_of(lines, tmp_path / "in.csv"), moved


def test_skip_mode_counts_and_drops_bad_rows(tmp_path):
    source, _ = bad_file(tmp_path)
    out = tmp_path / "out.csv"
    report = score_file(MODEL, source, out, id_columns=["id"], bad_rows="skip", chunk_rows=64)
    assert (report.rows_read, report.rows_written, report.rows_bad) == (1000, 995, 5)
    assert report.bad_rows_file is None and "5 bad row(s) set aside" in report.summary()
    ids = read(out)["id"].tolist()
    assert len(ids) == 995 and not {"r8", "r9", "r498", "r698", "r999"} & set(ids)


def test_file_mode_writes_the_bad_rows_with_lines_and_columns(tmp_path):
    source, bad = bad_file(tmp_path)
    out, rejected_path = tmp_path / "out.parquet", tmp_path / "rejected.csv"
    report = score_file(MODEL, source, out, bad_rows=rejected_path, chunk_rows=64)
    assert (report.rows_written, report.rows_bad) == (995, 5)
    assert report.bad_rows_file == str(rejected_path)
    rejected = pd.read_csv(rejected_path, keep_default_na=False)
    assert tuple(rejected.columns) == BAD_ROWS_COLUMNS
    assert rejected["line"].tolist() == sorted(bad)
    assert rejected["column"].tolist() == [bad[line] or "" for line in sorted(bad)]
    assert rejected["record"].tolist()[:2] == ["r8,zz,42,1", "r9,1,,1"]
    assert (rejected["file"] == str(source)).all()
    assert len(pd.read_parquet(out)) == 995 and no_temporaries(tmp_path)


def test_a_missing_column_is_reported_before_any_data_is_read(tmp_path, frame, monkeypatch):
    def no_reading(*args, **kwargs):
        raise AssertionError("data was read")

    monkeypatch.setattr(csv_reader, "_csv_blocks", no_reading)
    monkeypatch.setattr(parquet_reader, "record_batches", no_reading)
    for suffix in (".csv", ".parquet"):
        source = write(frame.drop(columns="latitude"), tmp_path / f"in{suffix}")
        with pytest.raises(BatchError, match=r"column 'latitude': no such column") as info:
            score_file(MODEL, source, tmp_path / "out.csv")
        assert info.value.column == "latitude"
        with pytest.raises(BatchError, match=r"column 'key': no such column \(asked to keep"):
            score_file(MODEL, write(frame, source), tmp_path / "out.csv", id_columns=["key"])
    assert not (tmp_path / "out.csv").exists()


def test_usage_errors(tmp_path, frame):
    source = write(frame, tmp_path / "in.csv")
    with pytest.raises(ValueError, match=r"cannot tell the format from '.xlsx'"):
        score_file(MODEL, source, tmp_path / "out.xlsx")
    (tmp_path / "out.csv").write_text("x\n")
    with pytest.raises(ValueError, match=r"exists; pass overwrite=True"):
        score_file(MODEL, source, tmp_path / "out.csv")
    with pytest.raises(ValueError, match=r"is also the input"):
        score_file(MODEL, source, source, overwrite=True)
    with pytest.raises(ValueError, match=r"two columns named 'area'"):
        score_file(MODEL, source, tmp_path / "o.csv", keep_all=True, prediction_column="area")
    with pytest.raises(BatchError, match=r"no such file or directory"):
        score_file(MODEL, tmp_path / "nope.csv", tmp_path / "o.csv")
    with pytest.raises(ValueError, match=r"interval must be None"):
        score_file(MODEL, source, tmp_path / "o.csv", interval="credible")


# --- the command line ---------------------------------------------------------
def test_cli_exit_status_message_and_final_line(tmp_path, frame, capsys):
    source = write(frame, tmp_path / "in.csv")
    out = tmp_path / "out.parquet"
    assert main(["predict", str(MODEL), str(source), "-o", str(out), "--id-columns", "id"]) == 0
    err = capsys.readouterr().err
    assert f"scored {N} rows in " in err and " rows/s)" in err
    assert len(pd.read_parquet(out)) == N

    lines = ["id,area,latitude,dist_mainland", "a,1,40,1", "b,1,40,1", "c,1,forty,1"]
    bad = lines_of(lines, tmp_path / "bad.csv")
    out2 = tmp_path / "out2.csv"
    assert main(["predict", str(MODEL), str(bad), "-o", str(out2)]) == 1
    err = capsys.readouterr().err
    assert "line 4, column 'latitude': 'forty' is not a number" in err
    assert not out2.exists()
    assert main(["predict", str(MODEL), str(bad), "-o", str(out2), "--bad-rows", "skip"]) == 0
    assert "scored 2 rows" in capsys.readouterr().err

    assert main(["predict", str(MODEL), str(source), "-o", str(out)]) == 2  # exists
    assert "--overwrite" in capsys.readouterr().err
    assert main(["predict", str(MODEL), str(source), "-o", str(out), "--scheduler", "x"]) == 2
    with pytest.raises(SystemExit) as info:
        main(["predict", str(MODEL), str(source)])  # no -o
    assert info.value.code == 2


def test_progress_bar_counts_rows(tmp_path, frame, capsys):
    source = write(frame, tmp_path / "in.csv")
    score_file(MODEL, source, tmp_path / "out.csv", progress=True, chunk_rows=500)
    err = capsys.readouterr().err
    assert "scoring" in err and "rows/s" in err


@pytest.mark.slow
def test_sigkill_halfway_leaves_no_output_and_a_rerun_succeeds(tmp_path):
    rng = np.random.default_rng(1)
    n = 1_500_000
    table = pa.table(
        {
            "id": np.arange(n),
            "area": rng.uniform(0, 4, n),
            "latitude": rng.uniform(35, 48, n),
            "dist_mainland": rng.uniform(0, 300, n),
        }
    )
    source = tmp_path / "big.csv"
    pacsv.write_csv(table, source)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "scored.csv"
    code = (
        "import sys; sys.modules['torch'] = None\n"  # the command needs no torch
        "from linreg.main import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    args = [sys.executable, "-c", code, "predict", str(MODEL), str(source), "-o", str(out)]
    args += ["--id-columns", "id", "--chunk-rows", "2000", "--parse-threads", "1"]
    proc = subprocess.Popen(args, cwd=ROOT, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not any(p.name.startswith(".scored.csv.tmp") for p in out_dir.iterdir()):
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "the job never started writing"
            time.sleep(0.01)
        time.sleep(0.2)  # let it write a few chunks
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
        if proc.stderr:
            proc.stderr.close()
    assert not out.exists()
    leftovers = list(out_dir.iterdir())
    assert all(p.name.startswith(".scored.csv.tmp-") for p in leftovers) and leftovers
    assert leftovers[0].stat().st_size > 0  # it was killed while writing

    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"scored {n} rows" in done.stderr
    with out.open() as f:
        assert sum(1 for _ in f) == n + 1
    assert os.path.getsize(out) > 0


@pytest.mark.slow
def test_the_streaming_job_needs_neither_pandas_nor_torch(tmp_path, frame):
    source = write(frame, tmp_path / "in.csv")
    write(frame, tmp_path / "in.parquet")
    lines = source.read_text().splitlines()
    lines[10] = lines[10].replace(",", ",oops,", 1)  # a bad row, to take the slow path too
    lines_of(lines, tmp_path / "bad.csv")
    code = (
        "import sys; sys.modules['torch'] = None; sys.modules['pandas'] = None\n"
        "from inference.batch import score_file\n"
        f"d = {str(tmp_path)!r}\n"
        f"m = {str(MODEL)!r}\n"
        "score_file(m, d + '/in.csv', d + '/a.parquet', keep_all=True, interval='confidence')\n"
        "score_file(m, d + '/in.parquet', d + '/b.csv', id_columns=['id'])\n"
        "r = score_file(m, d + '/bad.csv', d + '/c.csv', keep_all=True, bad_rows=d + '/x.csv')\n"
        "assert r.rows_bad == 1, r\n"
        "assert 'pandas' not in sys.modules or sys.modules['pandas'] is None\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert len(read(tmp_path / "b.csv")) == N
