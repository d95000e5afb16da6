"""KServe's custom predictor contract: the port from ``$PORT``, ``--model-dir`` holding a
single model or a repository, readiness that answers 503 until the models are loaded,
and SIGTERM finishing the requests in flight.

Each server is a real process started as KServe starts one (``PORT=N linreg serve
--model-dir DIR``, no ``--port``), on a free port of the loopback.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from inference import Predictor
from tests.serve.conftest import BUNDLED, ROOT, free_port, needs_serve

pytestmark = [needs_serve, pytest.mark.slow]

LR = BUNDLED / "plant_richness_lr"


class KServeProcess:
    def __init__(self, args: list[str], log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log
        self._log = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "linreg", "serve", *args],
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PORT": str(self.port)},
        )

    def status(self, path: str) -> int:
        """The HTTP status of GET ``path``; 0 when nothing answers."""
        try:
            with urllib.request.urlopen(self.url + path, timeout=5) as r:
                return int(r.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)
        except OSError:
            return 0

    def until(self, path: str, status: int, bound: float = 60) -> list[int]:
        """The statuses seen until GET ``path`` answers ``status``."""
        seen = []
        end = time.monotonic() + bound
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise AssertionError(f"the server exited: {self.log_path.read_text()}")
            got = self.status(path)
            seen.append(got)
            if got == status:
                return seen
            time.sleep(0.02)
        raise AssertionError(f"{path} never answered {status}: {seen[-5:]}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()
        return int(self.proc.returncode)


@pytest.fixture
def kserve(tmp_path):
    started: list[KServeProcess] = []

    def start(args: list[str]) -> KServeProcess:
        server = KServeProcess(args, tmp_path / f"kserve-{len(started)}.log")
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def test_a_repository_in_model_dir_is_not_ready_until_its_model_is_loaded(kserve, tmp_path):
    mnt = tmp_path / "mnt" / "models"
    (mnt / "plants").mkdir(parents=True)
    srv = kserve(["--model-dir", str(mnt), "--reload-interval", "0.1"])
    srv.until("/v2/health/live", 200)  # listening on $PORT
    assert srv.status("/v2/health/ready") == 503
    assert srv.status("/v2/models/plants/ready") == 503
    shutil.copytree(LR, mnt / "plants" / ".incoming")
    (mnt / "plants" / ".incoming").rename(mnt / "plants" / "1")
    seen = srv.until("/v2/health/ready", 200)
    assert set(seen) <= {503, 200}
    assert srv.status("/v2/models/plants/ready") == 200
    assert srv.status("/v2/models/plants/versions/1/ready") == 200
    body = json.dumps({"area": 3.0}).encode()
    req = urllib.request.Request(srv.url + "/predict", data=body)
    with urllib.request.urlopen(req, timeout=30) as r:
        answer = json.loads(r.read())
    assert answer["version"] == "1"
    assert answer["predictions"] == [Predictor.load(LR).predict_one(area=3.0)]


def test_a_single_model_in_model_dir_and_sigterm_finishes_requests_in_flight(kserve, tmp_path):
    mnt = tmp_path / "mnt" / "models"
    shutil.copytree(LR, mnt)
    srv = kserve(["--model-dir", str(mnt), "--model-name", "plants"])
    srv.until("/v2/health/live", 200)
    seen = srv.until("/v2/health/ready", 200)
    assert set(seen) <= {0, 503, 200}, seen  # 0: not listening yet
    assert srv.status("/v2/models/plants/ready") == 200
    # slow clients: headers and half the body before SIGTERM, the rest after it
    slow = []
    for i in range(3):
        body = json.dumps({"area": float(i + 1)}).encode()
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
        s.sendall(
            b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body[:5]
        )
        slow.append((s, body, float(i + 1)))
    time.sleep(0.3)
    srv.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    predictor = Predictor.load(LR)
    for s, body, area in slow:
        s.sendall(body[5:])
        s.settimeout(30)
        data = b""
        while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        s.close()
        head, _, payload = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), data
        got = json.loads(payload)["predictions"][0]
        assert np.float32(got) == np.float32(predictor.predict_one(area=area))
    srv.proc.wait(30)
    assert srv.proc.returncode in (0, -signal.SIGTERM)


def test_a_grpc_port_in_use_is_exit_status_1(tmp_path):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    try:
        args = [str(LR), "--port", str(free_port()), "--grpc-port", str(port)]
        run = subprocess.run(
            [sys.executable, "-m", "linreg", "serve", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        busy.close()
    assert run.returncode == 1, run.stderr[-2000:]
    assert "linreg serve: error: the server did not start" in run.stderr
    assert "Address already in use" in run.stderr
