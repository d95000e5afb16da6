"""How a batch job starts: the first chunk is read while the model loads (a model
directory), never before the checks that need no data; and :class:`Primed`, which
fetches an iterator's first item in a thread."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pyarrow")

from inference.batch import job, score_file  # noqa: E402
from inference.errors import BatchError, ModelLoadError  # noqa: E402
from inference.io.threads import Primed  # noqa: E402
from inference.predictor import Predictor  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "exported_models" / "plant_richness_mlr"


def write_csv(path: Path, rows: int = 50) -> Path:
    rng = np.random.default_rng(1)
    lines = [f"{i},{a:.6f},{b:.6f},{c:.6f}" for i, (a, b, c) in enumerate(rng.random((rows, 3)))]
    path.write_text("id,area,latitude,dist_mainland\n" + "\n".join(lines) + "\n")
    return path


def test_primed_fetches_the_first_item_in_a_thread_before_next():
    started, release = threading.Event(), threading.Event()
    threads: list[int] = []
    closed: list[bool] = []

    def items():
        try:
            threads.append(threading.get_ident())
            started.set()
            release.wait(5)
            yield "first"
            threads.append(threading.get_ident())
            yield "second"
        finally:
            closed.append(True)

    primed = Primed(items())
    assert started.wait(5), "the first item was not being fetched before next()"
    release.set()
    assert [next(primed), next(primed)] == ["first", "second"]
    assert threads[0] != threading.get_ident() and threads[1] == threading.get_ident()
    primed.close()
    assert closed == [True]


def test_primed_raises_the_first_fetchs_error_and_ends_on_empty_input():
    def failing():
        raise BatchError("bad header", file="in.csv", line=1)
        yield  # pragma: no cover

    primed = Primed(failing())
    with pytest.raises(BatchError, match="bad header"):
        next(primed)
    with pytest.raises(StopIteration):
        next(Primed(iter([])))


def test_primed_close_waits_for_the_first_fetch_then_closes():
    release = threading.Event()
    closed: list[bool] = []

    def items():
        try:
            release.wait(5)
            yield 1
        finally:
            closed.append(True)

    primed = Primed(items())
    threading.Timer(0.05, release.set).start()
    primed.close()  # would raise "generator already executing" without the wait
    assert closed == [True]


@pytest.mark.parametrize("model_kind", ["directory", "bare onnx"])
def test_a_model_directory_loads_while_the_first_chunk_is_read(tmp_path, monkeypatch, model_kind):
    model = MODEL if model_kind == "directory" else MODEL / "model.onnx"
    reading = threading.Event()
    seen: list[bool] = []
    chunks, load = job.read_parts, Predictor.load.__func__

    def watched_chunks(*args, **kwargs):
        reading.set()
        yield from chunks(*args, **kwargs)

    def watched_load(cls, *args, **kwargs):
        seen.append(reading.wait(2) if model_kind == "directory" else reading.is_set())
        return load(cls, *args, **kwargs)

    monkeypatch.setattr(job, "read_parts", watched_chunks)
    monkeypatch.setattr(Predictor, "load", classmethod(watched_load))
    source = write_csv(tmp_path / "in.csv")
    report = score_file(model, source, tmp_path / "out.csv", progress=False)
    assert report.rows_written == 50
    assert seen == [model_kind == "directory"]


def test_a_model_that_fails_to_load_after_reading_started_leaves_nothing(tmp_path):
    """The manifest reads, so the first chunk is being read when the damaged ONNX file
    is refused: the job still fails cleanly, the older output untouched."""
    model = tmp_path / "model"
    shutil.copytree(MODEL, model)
    onnx = model / "model.onnx"
    onnx.write_bytes(onnx.read_bytes()[:-10] + b"0123456789")
    source = write_csv(tmp_path / "in.csv")
    out = tmp_path / "out.csv"
    out.write_text("older output\n")
    with pytest.raises(ModelLoadError):
        score_file(model, source, out, progress=False, overwrite=True)
    assert out.read_text() == "older output\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "model", "out.csv"]


def test_a_missing_column_is_still_reported_before_the_model_loads(tmp_path, monkeypatch):
    def no_load(*args, **kwargs):
        raise AssertionError("the model was loaded before the columns were checked")

    monkeypatch.setattr(Predictor, "load", no_load)
    source = tmp_path / "in.csv"
    source.write_text("id,area,latitude\n1,2,3\n")
    with pytest.raises(BatchError, match="dist_mainland"):
        score_file(MODEL, source, tmp_path / "out.csv", progress=False)
