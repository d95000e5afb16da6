"""``linreg serve --trusted-key`` under load: badly signed re-exports refused, a good one taken.

A server started with a trusted key serves a model exported and signed with that key,
while two keep-alive clients send requests all along. The model directory is then
replaced (export's atomic exchange) by a re-export signed with a key the server does
not trust, then by an unsigned one: each must be refused (logged, counted) while the
old model keeps answering every request. A re-export signed with the trusted key is
then served. Zero failed requests. Bounded: every wait has a deadline, the whole test
about 20 s on an idle machine.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from tests.serve.conftest import needs_serve
from tests.signing.conftest import make_keys

pytestmark = [needs_serve, pytest.mark.slow]
requests = pytest.importorskip("requests")
pytest.importorskip("torch")

AREA = 10.0


class Load:
    """Two clients posting /predict until stopped (or 120 s); every answer recorded."""

    def __init__(self, url: str) -> None:
        self.url, self.stop, self.lock = url, threading.Event(), threading.Lock()
        self.seen: list[tuple[float, int, str, float | None]] = []
        self.threads = [threading.Thread(target=self._run) for _ in range(2)]
        for t in self.threads:
            t.start()

    def _run(self) -> None:
        deadline = time.monotonic() + 120
        with requests.Session() as http:
            while not self.stop.is_set() and time.monotonic() < deadline:
                try:
                    r = http.post(self.url + "/predict", json={"area": AREA}, timeout=30)
                    body = r.json()
                    item = (time.monotonic(), r.status_code, body.get("version", ""),
                            (body.get("predictions") or [None])[0])  # fmt: skip
                except (requests.RequestException, ValueError) as exc:
                    item = (time.monotonic(), 0, repr(exc), None)
                with self.lock:
                    self.seen.append(item)

    def answers(self, since: float) -> list[tuple[float, int, str, float | None]]:
        with self.lock:
            return [s for s in self.seen if s[0] >= since]

    def join(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(60)


def _version(directory: Path) -> str:
    manifest = json.loads((directory / "manifest.json").read_text())
    return str(manifest["artifacts"]["model.onnx"]["sha256"][:12])


def _wait(condition, bound: float = 15.0) -> None:
    end = time.monotonic() + bound
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"not within {bound} s")
        time.sleep(0.02)


def test_signed_reload_under_load(start_server, tmp_path: Path) -> None:
    from training.data import load_dataset
    from training.export import export_model
    from training.pipeline import train

    trusted_private, trusted_public = make_keys(tmp_path, "trusted")
    untrusted_private, _ = make_keys(tmp_path, "untrusted")
    table = load_dataset("plant_richness_lr")
    runs = [train(table, test_size=0.2, seed=s, progress=False) for s in (1, 2, 3, 4)]
    served = tmp_path / "plant"
    export_model(runs[0], served, plots=False, sign_key=trusted_private)
    good = _version(served)
    srv = start_server(
        [
            str(served),
            "--reload-interval",
            "0.1",
            "--no-access-log",
            "--trusted-key",
            str(trusted_public),
        ]  # fmt: skip
    )
    load = Load(srv.url)
    try:
        _wait(lambda: any(s[2] == good for s in load.answers(0)))
        marks = []
        for run, key in ((runs[1], untrusted_private), (runs[2], None)):
            refusals = srv.log().count("refused the new files")
            export_model(run, served, overwrite=True, plots=False, sign_key=key)
            marks.append(time.monotonic())
            _wait(lambda n=refusals: srv.log().count("refused the new files") > n)
            time.sleep(0.3)  # answers after the refusal
        export_model(runs[3], served, overwrite=True, plots=False, sign_key=trusted_private)
        signed_again, new = time.monotonic(), _version(served)
        _wait(lambda: any(s[2] == new for s in load.answers(signed_again)))
    finally:
        load.join()
    log = srv.log()
    assert "signed by a key that is not trusted" in log and "not signed (no model.sig)" in log
    failed = [s for s in load.seen if s[1] != 200]
    assert not failed, failed[:5]
    refused_window = [s for s in load.seen if marks[0] <= s[0] < signed_again]
    assert refused_window and all(s[2] == good for s in refused_window)
    assert len({s[2] for s in load.seen}) == 2  # the first model and the re-signed one only
    metrics = requests.get(srv.url + "/metrics", timeout=30).text
    assert 'linreg_model_reloads_total{model="plant",result="refused"} 2.0' in metrics
    assert 'linreg_model_reloads_total{model="plant",result="loaded"} 1.0' in metrics
    print(f"\n{len(load.seen)} requests, none failed")
