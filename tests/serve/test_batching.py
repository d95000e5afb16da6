"""Micro-batching: merged runs give each request its own rows' predictions, an idle
server never waits, and one request's bad row fails that request alone."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from inference import InputError, Predictor
from tests.serve.conftest import needs_serve

pytestmark = needs_serve
requests = pytest.importorskip("requests")
HOUR_US = 3_600_000_000


@pytest.fixture(scope="module")
def model(model_copies):
    from inference.serve.registry import load_model

    return load_model("mlr", model_copies / "plant_richness_mlr", threads=1)


def _runner(inflight: int, delay_us: int, runs: list[int]):
    from inference.serve.batching import Runner

    return Runner(
        max_batch_rows=1000,
        max_batch_delay_us=delay_us,
        inflight=lambda: inflight,
        observe_batch=lambda name, rows: runs.append(rows),
    )


def test_concurrent_requests_share_one_run(model):
    runs: list[int] = []
    runner = _runner(inflight=10, delay_us=HOUR_US, runs=runs)
    rng = np.random.default_rng(0)
    parts = [rng.uniform(0, 50, (i + 1, 3)).astype(np.float32) for i in range(10)]

    async def main():
        return await asyncio.wait_for(
            asyncio.gather(*(runner.predict(model, X) for X in parts)), 60
        )

    results = asyncio.run(main())
    assert runs == [sum(len(X) for X in parts)]  # ten requests, one session run
    for X, y in zip(parts, results, strict=True):
        # a merged run may round differently by one float32 ulp (Gemm's blocking)
        np.testing.assert_allclose(y, model.predictor.predict(X), rtol=1e-6)


def test_idle_server_does_not_wait(model):
    runs: list[int] = []
    runner = _runner(inflight=1, delay_us=HOUR_US, runs=runs)
    X = np.ones((2, 3), dtype=np.float32)

    async def main():
        # with an hour's delay, only the idle path can finish within the guard
        return await asyncio.wait_for(runner.predict(model, X), 60)

    np.testing.assert_array_equal(asyncio.run(main()), model.predictor.predict(X))
    assert runs == [2]


def test_a_bad_row_fails_only_its_request(model):
    runs: list[int] = []
    runner = _runner(inflight=3, delay_us=HOUR_US, runs=runs)
    good = np.ones((2, 3), dtype=np.float32)
    bad = np.ones((2, 3), dtype=np.float32)
    bad[1, 2] = np.nan

    async def main():
        return await asyncio.wait_for(
            asyncio.gather(
                runner.predict(model, good),
                runner.predict(model, bad),
                runner.predict(model, good * 2),
                return_exceptions=True,
            ),
            60,
        )

    a, b, c = asyncio.run(main())
    np.testing.assert_allclose(a, model.predictor.predict(good), rtol=1e-6)
    np.testing.assert_allclose(c, model.predictor.predict(good * 2), rtol=1e-6)
    with pytest.raises(InputError) as local:
        model.predictor.predict(bad)
    assert isinstance(b, InputError) and str(b) == str(local.value)


@pytest.mark.slow
def test_batching_server_answers_each_request(start_server, model_copies):
    model_dir = model_copies / "plant_richness_mlr"
    srv = start_server(
        [
            str(model_dir),
            "--max-batch-delay-us",
            "2000",
            "--max-batch-rows",
            "64",
            "--no-access-log",
        ]
    )
    predictor = Predictor.load(model_dir)
    rng = np.random.default_rng(1)
    bodies = [rng.uniform(0, 50, (1 + i % 3, 3)).round(3) for i in range(48)]
    results: dict[int, tuple[int, list]] = {}

    def client(ids: list[int]) -> None:
        with requests.Session() as http:
            for i in ids:
                r = http.post(
                    srv.url + "/models/plant_richness_mlr/predict", json=bodies[i].tolist()
                )
                results[i] = (r.status_code, r.json()["predictions"])

    threads = [threading.Thread(target=client, args=(list(range(w, 48, 8)),)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sorted(results) == list(range(48))
    for i, (status, preds) in results.items():
        assert status == 200
        np.testing.assert_allclose(
            np.asarray(preds, dtype=np.float32), predictor.predict(bodies[i]), rtol=1e-6
        )
    metrics = requests.get(srv.url + "/metrics", timeout=30).text
    assert 'linreg_batch_rows_count{model="plant_richness_mlr"}' in metrics
