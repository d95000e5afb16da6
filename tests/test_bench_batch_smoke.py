"""A smoke run of benchmarks/bench_batch.py at a tiny size, so that it cannot rot.

No timing is asserted. Every job (``linreg predict``, polars, DuckDB, naive pandas)
runs in its own process on the same file, and the benchmark's own check compares
each output with numpy on the same data; a further test makes sure that check
catches a wrong prediction.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("pyarrow")
for _module in ("polars", "duckdb", "pandas"):
    if importlib.util.find_spec(_module) is None:
        pytest.skip(
            f"{_module} is not installed (pip install 'linreg-onnx[bench]')",
            allow_module_level=True,
        )

#: starts processes (a cluster, a server, a browser): not in the fast subset
pytestmark = pytest.mark.slow


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import bench_batch  # noqa: E402  (after the skips)

ROWS = 3_000


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    directory = tmp_path_factory.mktemp("bench-batch")
    args = argparse.Namespace(
        rows=str(ROWS), features=4, formats="csv,parquet", jobs=",".join(bench_batch.JOBS),
        repeats=1,
    )  # fmt: skip
    return directory, bench_batch.bench(args, directory)


def test_every_job_runs_and_agrees_with_numpy(results):
    # bench() stops with SystemExit when a job's output differs from numpy's
    directory, rows = results
    assert {(r["job"], r["format"]) for r in rows} == {
        (job, fmt) for job in bench_batch.JOBS for fmt in ("csv", "parquet")
    }
    for r in rows:
        assert r["rows"] == ROWS and len(r["runs"]) == 1
        assert r["seconds"] > 0 and r["peak_mb"] > 1
    table = bench_batch.table(rows).splitlines()
    assert len(table) == 2 + len(rows)
    assert sum("`linreg predict`" in line for line in table) == 2


def test_the_check_catches_a_wrong_prediction(results, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    directory, _ = results
    reference = np.load(directory / f"reference-{ROWS}.npy")
    ids = pa.array(np.arange(ROWS))

    def check(prediction: np.ndarray, id_column=ids) -> str:
        path = tmp_path / "out.parquet"
        pq.write_table(pa.table({"id": id_column, "prediction": prediction}), path)
        return bench_batch.check_output(path, directory / f"reference-{ROWS}.npy", "parquet")

    assert check(reference.astype(np.float32)) == ""
    wrong = reference.copy()
    wrong[1234] += 0.01 * (1 + abs(wrong[1234]))
    assert check(wrong).startswith("row 1234:")
    assert "rows" in check(reference[:-1], ids[:-1])
    assert "ids" in check(reference, pa.array(np.arange(ROWS)[::-1].copy()))


def test_the_text_mode_runs_and_agrees_with_numpy(tmp_path_factory):
    """``--text``: two text columns as factors, polars' ``replace_strict`` and DuckDB's
    ``CASE WHEN`` beside ``linreg predict``; bench() checks every output against numpy."""
    directory = tmp_path_factory.mktemp("bench-batch-text")
    args = argparse.Namespace(
        rows=str(ROWS), features=3, formats="csv,parquet", jobs=",".join(bench_batch.JOBS),
        repeats=1, text=True,
    )  # fmt: skip
    rows = bench_batch.bench(args, directory)
    assert {(r["job"], r["format"]) for r in rows} == {
        (job, fmt) for job in bench_batch.JOBS for fmt in ("csv", "parquet")
    }
    manifest = (directory / "text" / "model" / "manifest.json").read_text()
    assert '"C(g50)[T.L49]"' in manifest and '"C(g10)[T.L09]"' in manifest
    # the CSV holds the text unquoted, as pandas and polars write it (pyarrow quotes the
    # header's names whatever the quoting style)
    with open(directory / "text" / f"input-{ROWS}.csv") as f:
        header, first = f.readline(), f.readline()
    assert header.replace('"', "").strip().endswith("g10,g50") and '"' not in first


def test_a_base_tree_runs_beside_this_one(tmp_path):
    """``--base``: ``linreg predict`` from another checkout (here this one) in the same
    run, its output checked against numpy like every job's."""
    args = argparse.Namespace(
        rows=str(ROWS), features=4, formats="parquet", jobs="linreg", repeats=1, base=ROOT
    )  # fmt: skip
    rows = bench_batch.bench(args, tmp_path)
    assert [r["job"] for r in rows] == ["linreg", "base"]
    assert "base: `linreg predict`" in bench_batch.table(rows)
