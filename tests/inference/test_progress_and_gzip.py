"""The progress bar and the summary line agree on rows/s, and a ``.csv.gz`` output is
standard gzip, whichever compressor wrote it (issue 28)."""

from __future__ import annotations

import contextlib
import gzip
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from inference.batch import score_file, writers

MLR = Path(__file__).resolve().parents[2] / "exported_models" / "plant_richness_mlr"
SI = {"": 1.0, "k": 1e3, "M": 1e6, "G": 1e9}


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    pytest.importorskip("pyarrow")
    rng = np.random.default_rng(0)
    n = 50_000
    frame = pd.DataFrame(
        {
            "id": np.arange(n),
            "area": rng.uniform(0, 5, n),
            "latitude": rng.uniform(40, 45, n),
            "dist_mainland": rng.uniform(0, 50, n),
        }
    )
    path = tmp_path_factory.mktemp("gz") / "in.csv"
    frame.to_csv(path, index=False)
    return path


def test_the_bar_ends_on_the_summary_rate(source, tmp_path):
    pytest.importorskip("tqdm")
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        report = score_file(MLR, source, tmp_path / "o.csv", progress=True, chunk_rows=4096)
    last = err.getvalue().rstrip().split("\r")[-1]
    count, rate, prefix = re.search(
        r"(\d[\d.]*\S*)/\S+ \[.*?, ([\d.]+)([kMG]?) rows/s\]", last
    ).groups()
    assert count in (f"{report.rows_written / 1e3:.1f}k", f"{report.rows_written / 1e3:.0f}k")
    shown = float(rate) * SI[prefix]
    digits = len(rate.replace(".", "").lstrip("0"))  # tqdm shows 3 significant digits
    unit = 10.0 ** (np.floor(np.log10(shown)) - digits + 1)
    assert abs(shown - report.rows_per_second) <= unit / 2 * 1.001, (last, report.summary())


@pytest.mark.parametrize("use_isal", [True, False], ids=["isal", "pyarrow"])
def test_gzip_stream_writes_standard_gzip(tmp_path, use_isal):
    if use_isal:
        pytest.importorskip("isal")
    pa = pytest.importorskip("pyarrow")
    parts = [b"a,b\n", b"", b"1,2\n" * 10_000, memoryview(b"3,4\n" * 5), pa.py_buffer(b"5,6\n")]
    stream = writers.GzipStream(tmp_path / "x.gz", use_isal=use_isal)
    for part in parts:
        stream.write(part)
    stream.close()
    assert stream.backend == ("isal" if use_isal else "pyarrow")
    raw = (tmp_path / "x.gz").read_bytes()
    expected = b"".join(bytes(p) for p in parts)
    assert raw[:2] == b"\x1f\x8b"
    assert gzip.decompress(raw) == expected  # Python's gzip: every member
    with pa.input_stream(str(tmp_path / "x.gz"), compression="gzip") as f:
        assert f.read() == expected  # pyarrow reads it back (linreg predict's reader)


@pytest.mark.parametrize("use_isal", [True, False], ids=["isal", "pyarrow"])
def test_a_gz_output_holds_the_plain_output(source, tmp_path, monkeypatch, use_isal):
    if use_isal:
        pytest.importorskip("isal")
    real = writers.GzipStream
    monkeypatch.setattr(writers, "GzipStream", lambda path: real(path, use_isal=use_isal))
    plain = tmp_path / "o.csv"
    packed = tmp_path / "o.csv.gz"
    score_file(MLR, source, plain, id_columns=["id"], interval="prediction")
    score_file(MLR, source, packed, id_columns=["id"], interval="prediction")
    assert gzip.decompress(packed.read_bytes()) == plain.read_bytes()
    back = pd.read_csv(packed)  # pandas reads it as any .csv.gz
    assert len(back) == 50_000 and list(back.columns)[:2] == ["id", "prediction"]
