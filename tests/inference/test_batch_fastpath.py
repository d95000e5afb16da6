"""The C fast path of the CSV reader gives what pyarrow's path gives, byte for byte, and
the background writer keeps the order and raises its errors in the caller."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from inference.batch import score_file
from inference.batch.writers import BackgroundWriter
from inference.errors import BatchError
from inference.io.csv import native as fastcsv

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "exported_models" / "plant_richness_mlr"

needs_extension = pytest.mark.skipif(
    not fastcsv.available(), reason="the C extension inference.io.csv._fastcsv was not built"
)


def plain_lines(n: int, seed: int = 0) -> list[str]:
    """Lines of an id column and the model's three features, as repr of doubles."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3)) * [1.0, 5.0, 80.0] + [1.0, 40.0, 100.0]
    return [f"{i},{a!r},{b!r},{c!r}" for i, (a, b, c) in enumerate(X.tolist())]


def write_csv(path: Path, lines: list[str], end: str = "\n") -> Path:
    path.write_text("id,area,latitude,dist_mainland\n" + "\n".join(lines) + end)
    return path


def score_both(tmp_path: Path, monkeypatch, source: Path, **options) -> tuple[dict, dict]:
    """Score ``source`` with the fast path and without it (the extension hidden): the
    output files' bytes (and the bad-rows file's) and the reports, for each."""
    calls = {"plain": 0}
    parse = fastcsv.parse_block

    def counting(*args, **kwargs):
        rows = parse(*args, **kwargs)
        calls["plain"] += rows is not None
        return rows

    results = []
    for fast in (True, False):
        with monkeypatch.context() as m:
            m.setattr(fastcsv, "parse_block", counting)
            if not fast:
                m.setenv("LINREG_NO_NATIVE", "1")
            tag = "fast" if fast else "slow"
            out = tmp_path / f"{tag}.csv"
            bad = options.get("bad_rows")
            extra = dict(options)
            if bad not in (None, "skip", "error"):
                extra["bad_rows"] = str(tmp_path / f"{tag}-bad.csv")
            try:
                report = score_file(MODEL, source, out, progress=False, **extra)
                error = None
            except BatchError as exc:
                report, error = None, str(exc)
            files = {p.name.replace(tag, "", 1): p.read_bytes() for p in tmp_path.glob(f"{tag}*")}
            results.append(
                {
                    "files": files,
                    "error": error,
                    "counts": None if report is None else (report.rows_read, report.rows_bad),
                    "plain_blocks": calls["plain"],
                }
            )
            calls["plain"] = 0
    return results[0], results[1]


@needs_extension
@pytest.mark.parametrize("end", ["\n", ""], ids=["final-newline", "no-final-newline"])
def test_plain_file_goes_through_the_fast_path_with_the_same_bytes(tmp_path, monkeypatch, end):
    source = write_csv(tmp_path / "in.csv", plain_lines(20_000), end)
    fast, slow = score_both(tmp_path, monkeypatch, source, chunk_rows=1_000)
    assert fast["plain_blocks"] >= 10  # every block of this file is plain
    assert slow["plain_blocks"] == 0
    assert fast["files"] == slow["files"] and fast["files"]
    assert fast["counts"] == slow["counts"] == (20_000, 0)


@needs_extension
@pytest.mark.parametrize("bad_rows", ["skip", "file", "error"])
def test_bad_rows_between_plain_blocks_are_reported_as_before(tmp_path, monkeypatch, bad_rows):
    lines = plain_lines(12_000, seed=1)
    lines[2_500] = "2500,abc,40.0,1.0"  # not a number
    lines[6_000] = "6000,1.0,,1.0"  # missing value
    lines[7_000] = "7000,1e39,40.0,1.0"  # beyond float32: inf for this model
    lines[9_000] = "9000,1.0,40.0"  # a missing field
    lines[10_000] = ' 10000,"1.5",40.0,1.0'  # quoted, spaced: valid, for pyarrow's path
    source = write_csv(tmp_path / "in.csv", lines)
    fast, slow = score_both(tmp_path, monkeypatch, source, chunk_rows=500, bad_rows=bad_rows)
    assert fast["plain_blocks"] > 0
    assert fast == {**slow, "plain_blocks": fast["plain_blocks"]}
    if bad_rows == "error":
        assert "line 2502" in fast["error"] and "'abc' is not a number" in fast["error"]
    else:
        assert fast["counts"] == (12_000, 4)


@needs_extension
def test_kept_columns_use_pyarrow(tmp_path, monkeypatch):
    """A job that copies columns as text reads them with pyarrow: same bytes, no fast path."""
    source = write_csv(tmp_path / "in.csv", plain_lines(3_000))
    fast, slow = score_both(tmp_path, monkeypatch, source, id_columns=["id"], chunk_rows=500)
    assert fast["plain_blocks"] == 0
    assert fast["files"] == slow["files"]


class Recording:
    def __init__(self, fail_at: int | None = None) -> None:
        self.batches: list[int] = []
        self.closed = False
        self.fail_at = fail_at

    def write(self, batch: int) -> None:
        if batch == self.fail_at:
            raise OSError(f"disk full at batch {batch}")
        self.batches.append(batch)

    def close(self) -> None:
        self.closed = True


def test_background_writer_writes_in_order_then_closes():
    inner = Recording()
    writer = BackgroundWriter(inner, depth=2)  # type: ignore[arg-type]
    for i in range(100):
        writer.write(i)
    writer.close()
    assert inner.batches == list(range(100)) and inner.closed


def test_background_writer_raises_the_threads_error_and_still_closes():
    inner = Recording(fail_at=3)
    writer = BackgroundWriter(inner, depth=2)  # type: ignore[arg-type]
    with pytest.raises(OSError, match="disk full at batch 3"):
        for i in range(100):  # a later write (or close) raises it
            writer.write(i)
        writer.close()
    if not inner.closed:
        with pytest.raises(OSError, match="disk full"):
            writer.close()
    assert inner.closed
    assert inner.batches == [0, 1, 2]


@pytest.mark.parametrize("rows", [70_003, 98_321])
def test_parquet_batch_size_does_not_change_the_predictions(tmp_path, rows):
    """The default Parquet batch (65,536 rows) gives the bytes of the former default
    (32,768): every batch but the last is a multiple of ONNX Runtime's row blocks, and
    the last one ends on the same rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(7)
    X = rng.normal(size=(rows, 3)) * [1.0, 5.0, 80.0] + [1.0, 40.0, 100.0]
    table = pa.table(
        {
            "id": np.arange(rows),
            **dict(zip(["area", "latitude", "dist_mainland"], X.T, strict=True)),
        }
    )
    source = tmp_path / "in.parquet"
    pq.write_table(table, source, row_group_size=30_000)
    predictions = []
    for chunk_rows in (None, 32_768):
        out = tmp_path / f"out-{chunk_rows}.parquet"
        score_file(MODEL, source, out, id_columns=["id"], chunk_rows=chunk_rows, progress=False)
        predictions.append(pq.read_table(out).column("prediction").to_numpy())
    assert len(predictions[0]) == rows
    np.testing.assert_array_equal(predictions[0].view(np.uint32), predictions[1].view(np.uint32))
