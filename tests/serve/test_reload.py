"""Hot reload under load: ten re-exports and one tampered copy, zero failed requests.

A load generator (two keep-alive clients) sends requests all along. The model
directory is re-exported ten times with ``training.export.export_model`` (each a
fit on a different seeded split, so each answers differently), then replaced by
a copy whose ``model.onnx`` no longer matches its manifest, through the same
atomic directory exchange export uses. Every response must be a 200 from a
complete model; each new model must answer after its export; the tampered one
must be refused (logged, counted) while the previous one keeps answering. The
delays from each export to the first answer of the new model are printed (the
machine is shared, so they are reported, not asserted).
"""

from __future__ import annotations

import json
import shutil
import threading
import time

import numpy as np
import pytest

from tests.serve.conftest import needs_serve

pytestmark = [needs_serve, pytest.mark.slow]
requests = pytest.importorskip("requests")
pytest.importorskip("torch")

AREA = 10.0


def test_reload_under_load(start_server, tmp_path):
    from inference import Predictor
    from training.data import load_dataset
    from training.export import export_model
    from training.export.publish import exchange
    from training.pipeline import train

    table = load_dataset("plant_richness_lr")
    served = tmp_path / "plant"
    export_model(train(table, progress=False), served, plots=False)
    srv = start_server([str(served), "--reload-interval", "0.1", "--no-access-log"])

    stop = threading.Event()
    seen: list[tuple[float, int, str, float | None]] = []
    lock = threading.Lock()

    def load() -> None:
        deadline = time.monotonic() + 240  # bounded, whatever happens
        with requests.Session() as http:
            while not stop.is_set() and time.monotonic() < deadline:
                try:
                    r = http.post(srv.url + "/predict", json={"area": AREA}, timeout=30)
                    body = r.json()
                    item = (
                        time.monotonic(),
                        r.status_code,
                        body.get("version", ""),
                        (body.get("predictions") or [None])[0],
                    )
                except (requests.RequestException, ValueError) as exc:
                    item = (time.monotonic(), 0, repr(exc), None)
                with lock:
                    seen.append(item)

    threads = [threading.Thread(target=load) for _ in range(2)]
    for t in threads:
        t.start()

    def first_answer(version: str, since: float, bound: float = 30.0) -> tuple[float, float]:
        end = time.monotonic() + bound
        while time.monotonic() < end:
            with lock:
                for t, status, v, y in seen:
                    if t >= since and status == 200 and v == version:
                        return t - since, float(y)  # type: ignore[arg-type]
            time.sleep(0.01)
        raise AssertionError(f"version {version} never answered within {bound} s")

    delays = []
    try:
        for seed in range(1, 11):
            run = train(table, test_size=0.2, seed=seed, progress=False)
            export_model(run, served, overwrite=True, plots=False)
            exported = time.monotonic()
            manifest = json.loads((served / "manifest.json").read_text())
            version = manifest["artifacts"]["model.onnx"]["sha256"][:12]
            delay, y = first_answer(version, exported)
            delays.append(delay)
            assert y == Predictor.load(served).predict_one(area=AREA)
        good_version = version
        # the tampered copy: same manifest, a changed weight in model.onnx
        tampered = tmp_path / "tampered"
        shutil.copytree(served, tampered)
        onnx = bytearray((tampered / "model.onnx").read_bytes())
        onnx[-20] ^= 0x01
        (tampered / "model.onnx").write_bytes(bytes(onnx))
        assert exchange(tampered, served)  # export's atomic directory swap
        swapped = time.monotonic()
        end = swapped + 30
        while "refused" not in srv.log() and time.monotonic() < end:
            time.sleep(0.05)
        time.sleep(0.5)  # more answers after the refusal
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    print(f"\nexport -> first answer of the new model (s): {[round(d, 3) for d in delays]}")
    assert "refused" in srv.log() and "sha256" in srv.log()
    failed = [s for s in seen if s[1] != 200]
    assert not failed, failed[:5]
    after = [s for s in seen if s[0] > swapped]
    assert after and all(s[2] == good_version for s in after)
    metrics = requests.get(srv.url + "/metrics", timeout=30).text
    assert 'linreg_model_reloads_total{model="plant",result="loaded"} 10.0' in metrics
    assert 'linreg_model_reloads_total{model="plant",result="refused"} 1.0' in metrics
    assert len(delays) == 10 and np.all(np.isfinite(delays))
