"""Version changes under load: version 2 appears and the policy removes version 1, then a
corrupt version 3 arrives, while clients send requests to the default version over
HTTP and gRPC; every answer must be a 200 (gRPC: OK) from a whole model, equal to the
prediction of ``Predictor.load`` on the version that answered.

The load is bounded (at most 60 s, whatever happens). The two versions are fits on
different seeded splits (so they answer differently); the corrupt one is a copy of
version 2 with one changed byte in ``model.onnx``. Copies arrive atomically, as a
hidden folder renamed to its version number.
"""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from inference import Predictor
from tests.serve.conftest import free_port, needs_serve

pytestmark = [needs_serve, pytest.mark.slow]
requests = pytest.importorskip("requests")
pytest.importorskip("torch")
triton_grpc = pytest.importorskip("tritonclient.grpc")

AREA = 10.0
BODY = {"inputs": [{"name": "features", "shape": [1, 1], "datatype": "FP32", "data": [AREA]}]}


def arrive(source: Path, model_dir: Path, version: int, corrupt: bool = False) -> None:
    tmp = model_dir / f".incoming-{version}"
    shutil.copytree(source, tmp)
    if corrupt:
        onnx = bytearray((tmp / "model.onnx").read_bytes())
        onnx[-20] ^= 0x01
        (tmp / "model.onnx").write_bytes(bytes(onnx))
    tmp.rename(model_dir / str(version))


class Load:
    """Clients sending requests to the default version until stopped (60 s at most)."""

    def __init__(self, url: str, grpc_address: str) -> None:
        self.url, self.grpc_address = url, grpc_address
        self.seen: list[tuple[float, str, int | str, str, float | None]] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.deadline = time.monotonic() + 60
        targets = [self._http, self._http, self._grpc]
        self.threads = [threading.Thread(target=t) for t in targets]
        for t in self.threads:
            t.start()

    def _add(self, *item) -> None:
        with self.lock:
            self.seen.append((time.monotonic(), *item))

    def _running(self) -> bool:
        return not self.stop.is_set() and time.monotonic() < self.deadline

    def _http(self) -> None:
        with requests.Session() as http:
            while self._running():
                try:
                    r = http.post(self.url + "/v2/models/plants/infer", json=BODY, timeout=30)
                    body = r.json()
                    y = body["outputs"][0]["data"][0] if r.status_code == 200 else None
                    self._add("http", r.status_code, body.get("model_version", ""), y)
                except (requests.RequestException, ValueError, KeyError) as exc:
                    self._add("http", repr(exc), "", None)

    def _grpc(self) -> None:
        client = triton_grpc.InferenceServerClient(self.grpc_address)
        X = np.array([[AREA]], dtype=np.float32)
        while self._running():
            tensor = triton_grpc.InferInput("features", [1, 1], "FP32")
            tensor.set_data_from_numpy(X)
            try:
                result = client.infer("plants", [tensor], client_timeout=30)
                version = result.get_response().model_version
                self._add("grpc", 200, version, float(result.as_numpy("prediction")[0]))
            except Exception as exc:  # any failure is a failed answer
                self._add("grpc", repr(exc), "", None)
        client.close()

    def versions_since(self, since: float) -> set[str]:
        with self.lock:
            return {v for t, _, status, v, _ in self.seen if t >= since and status == 200}

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(60)


def wait_for(check, bound: float = 30.0) -> None:
    end = time.monotonic() + bound
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"not within {bound} s: {check.__doc__}")


def test_versions_change_under_load_without_a_failed_request(start_server, tmp_path):
    from training.data import load_dataset
    from training.export import export_model
    from training.pipeline import train

    table = load_dataset("plant_richness_lr")
    fits = {}
    for v in (1, 2):
        fits[v] = tmp_path / f"fit{v}"
        export_model(train(table, test_size=0.2, seed=v, progress=False), fits[v], plots=False)
    expected = {
        str(v): Predictor.load(p).predict(np.array([[AREA]], dtype=np.float32))[0]
        for v, p in fits.items()
    }
    assert expected["1"] != expected["2"]
    repo = tmp_path / "repo"
    (repo / "plants").mkdir(parents=True)
    arrive(fits[1], repo / "plants", 1)
    grpc_port = free_port()
    args = ["--model-repository", str(repo), "--reload-interval", "0.1", "--no-access-log"]
    srv = start_server([*args, "--grpc-port", str(grpc_port)])
    srv.wait_ready()

    def index() -> dict[str, tuple[str, str]]:
        got = requests.post(srv.url + "/v2/repository/index", timeout=30).json()
        return {e["version"]: (e["state"], e["reason"]) for e in got}

    load = Load(srv.url, f"127.0.0.1:{grpc_port}")
    try:
        time.sleep(0.5)
        arrived = time.monotonic()
        arrive(fits[2], repo / "plants", 2)

        def swapped() -> bool:
            """version 2 answers and the policy unloaded version 1"""
            return "2" in load.versions_since(arrived) and index()["1"][0] == "UNAVAILABLE"

        wait_for(swapped)
        assert index()["1"] == ("UNAVAILABLE", "not in the version policy (latest 1)")
        time.sleep(0.5)
        corrupt_at = time.monotonic()
        arrive(fits[2], repo / "plants", 3, corrupt=True)

        def refused() -> bool:
            """version 3 is refused"""
            return index().get("3", ("", ""))[0] == "UNAVAILABLE"

        wait_for(refused)
        time.sleep(0.5)  # more answers after the refusal
    finally:
        load.finish()
    state, reason = index()["3"]
    assert "sha256" in reason, reason
    assert index()["2"] == ("READY", "")
    failed = [s for s in load.seen if s[2] != 200]
    assert not failed, failed[:5]
    assert {p for _, p, *_ in load.seen} == {"http", "grpc"}
    for _, protocol, _, version, y in load.seen:
        assert np.float32(y) == expected[version], (protocol, version, y)
    assert load.versions_since(corrupt_at) == {"2"}
    print(
        f"\n{len(load.seen)} answers, none failed; versions seen: {sorted(load.versions_since(0))}"
    )
