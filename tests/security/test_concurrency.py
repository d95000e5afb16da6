"""Concurrency and load: one Predictor shared by many threads, several processes at once.

Results must be bit-identical to serial runs, with no errors, and memory must stay
flat (resident set size, ``VmRSS`` of ``/proc/self/status``, after a warm-up).
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from inference import Predictor

ROOT = Path(__file__).resolve().parents[2]
FEATURES = ["area", "latitude", "dist_mainland"]
THREADS = 16
CALLS = 10_000
DISTINCT = 500  # rows per thread, each predicted CALLS / DISTINCT times
#: allowed RSS growth after a warm-up: a leak of 64 bytes per call would show
RSS_SLACK = 8 << 20

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/status").exists(), reason="reads VmRSS from /proc"
)


def rss() -> int:
    """Resident set size of this process in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


@pytest.fixture(scope="module")
def model_dir(exported) -> Path:
    return exported("plant_richness_mlr", "float32")[1]


def rows_for(thread: int) -> list[dict[str, float]]:
    rng = np.random.default_rng(1000 + thread)
    X = rng.normal(size=(DISTINCT, 3)) * [1, 2, 10] + [2, 42, 15]
    return [dict(zip(FEATURES, map(float, r), strict=True)) for r in X]


def all_at_once(work: Callable[[int], None]) -> None:
    """Run ``work(t)`` in THREADS threads released together; raise the first error."""
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def guarded(t: int) -> None:
        try:
            start.wait()
            work(t)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(t,)) for t in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def run_threads(predictor: Predictor, rows: list[list[dict]], calls: int) -> np.ndarray:
    """Each thread t calls predict_one ``calls`` times cycling over rows[t];
    returns the (THREADS, calls) results. Raises the first error any thread met."""
    out = np.full((THREADS, calls), np.nan)

    def work(t: int) -> None:
        mine, row = rows[t], out[t]
        for i in range(calls):
            r = mine[i % DISTINCT]
            row[i] = predictor.predict_one(**r) if i % 2 else predictor.predict_one(r)

    all_at_once(work)
    return out


def test_16_threads_x_10000_predict_one_calls_equal_serial_and_memory_is_flat(model_dir):
    predictor = Predictor.load(model_dir, providers="cpu")
    rows = [rows_for(t) for t in range(THREADS)]
    serial = np.array([[predictor.predict_one(r) for r in rows[t]] for t in range(THREADS)])
    # warm-up as long as the measured run: thread-local buffers, and malloc's per-thread
    # arenas, which a busy machine's scheduling may otherwise first grow mid-measurement
    run_threads(predictor, rows, CALLS)
    gc.collect()
    before = rss()
    got = run_threads(predictor, rows, CALLS)
    gc.collect()
    after = rss()
    expected = np.tile(serial, CALLS // DISTINCT)
    np.testing.assert_array_equal(got, expected)  # bit-identical, no NaN left unset
    assert after - before < RSS_SLACK, f"RSS grew by {(after - before) >> 10} KiB"


def test_mixed_calls_from_many_threads_equal_serial(model_dir):
    """predict on batches, with intervals, and predict_one, all at once on one Predictor."""
    predictor = Predictor.load(model_dir, providers="cpu")
    rng = np.random.default_rng(5)
    batches = [rng.normal(size=(int(rng.integers(1, 400)), 3)) + [2, 42, 15] for _ in range(48)]
    serial = [predictor.predict(b) for b in batches]
    serial_iv = [predictor.predict(b, interval="prediction") for b in batches]
    serial_one = [predictor.predict_one(**dict(zip(FEATURES, b[0], strict=True))) for b in batches]
    results: dict[tuple[str, int], object] = {}

    def work(t: int) -> None:
        for _ in range(5):
            for j in range(t % 3, len(batches), 3):
                b = batches[j]
                results["p", j] = predictor.predict(b)
                results["i", j] = predictor.predict(b, interval="prediction")
                results["o", j] = predictor.predict_one(**dict(zip(FEATURES, b[0], strict=True)))

    all_at_once(work)
    for j in range(len(batches)):
        np.testing.assert_array_equal(results["p", j], serial[j])
        for got, want in zip(results["i", j], serial_iv[j], strict=True):
            np.testing.assert_array_equal(got, want)
        assert results["o", j] == serial_one[j]


def test_short_lived_threads_leave_no_per_thread_state_behind(model_dir):
    """Per-thread buffers must go with their thread: 2,000 threads, memory flat."""
    predictor = Predictor.load(model_dir, providers="cpu")
    row = {"area": 3.0, "latitude": 42.0, "dist_mainland": 10.0}
    expected = predictor.predict_one(row)
    got: list[float] = []

    def burst(n: int) -> None:
        for _ in range(n // 20):
            threads = [
                threading.Thread(target=lambda: got.append(predictor.predict_one(row)))
                for _ in range(20)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()

    burst(400)  # warm-up
    before = rss()
    burst(2_000)
    after = rss()
    assert len(got) == 2_400 and set(got) == {expected}
    assert after - before < RSS_SLACK, f"RSS grew by {(after - before) >> 10} KiB"


WORKER = """
import json, sys
from pathlib import Path
import numpy as np
from inference import Predictor

model, data, out = sys.argv[1:4]
status = Path("/proc/self/status")

def rss():
    line = next(l for l in status.read_text().splitlines() if l.startswith("VmRSS:"))
    return int(line.split()[1]) * 1024

p = Predictor.load(model, providers="cpu", threads=1)
X = np.load(data)
y = p.predict(X)
for _ in range(3):
    p.predict(X)
before = rss()
for _ in range(30):
    again = p.predict(X)
    assert np.array_equal(again, y)
after = rss()
np.save(out, y)
print(json.dumps({"before": before, "after": after}))
"""


@pytest.mark.slow
def test_processes_scoring_different_files_at_once_equal_serial(model_dir, tmp_path):
    inputs = []
    for i in range(3):
        X = np.random.default_rng(i).normal(size=(200_000, 3)) * [1, 2, 10] + [2, 42, 15]
        path = tmp_path / f"in{i}.npy"
        np.save(path, X.astype(np.float32) if i == 1 else X)
        inputs.append(path)
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                WORKER,
                str(model_dir),
                str(path),
                str(tmp_path / f"out{i}.npy"),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i, path in enumerate(inputs)
    ]
    reports = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr
        reports.append(json.loads(stdout.strip().splitlines()[-1]))
    serial = Predictor.load(model_dir, providers="cpu", threads=1)
    for i, path in enumerate(inputs):
        np.testing.assert_array_equal(
            np.load(tmp_path / f"out{i}.npy"), serial.predict(np.load(path))
        )
    for report in reports:
        assert report["after"] - report["before"] < RSS_SLACK, report
