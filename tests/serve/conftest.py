"""Real server processes on loopback for the ``linreg serve`` tests.

Every server is started with ``python -m linreg serve`` on a free port and
always stopped (SIGTERM, then SIGKILL) by the fixture's finaliser.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = ROOT / "exported_models"
NEEDED = ("uvicorn", "starlette", "orjson", "prometheus_client", "requests")
MISSING = [m for m in NEEDED if importlib.util.find_spec(m) is None]
#: every test module of the server carries this mark
needs_serve = pytest.mark.skipif(
    bool(MISSING), reason=f"linreg serve tests need {MISSING} (extras 'serve', 'serve-test')"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """One ``linreg serve`` process; ``url`` is its base address."""

    def __init__(self, args: list[str], *, env: dict[str, str] | None = None, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log
        self._log = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "linreg", "serve", *args, "--port", str(self.port)],
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode}: {self.log()}")
            try:
                with urllib.request.urlopen(self.url + "/v2/health/live", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the server did not start within 60 s: {self.log()}")
            time.sleep(0.1)

    def wait_ready(self, timeout: float = 60) -> None:
        """Until ``/v2/health/ready`` answers 200 (models loaded after the server listens)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/v2/health/ready", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"the server was not ready within {timeout} s: {self.log()}")

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()
        return int(self.proc.returncode)


@pytest.fixture(scope="session")
def model_copies(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Copies of the bundled models (servers never touch the committed ones)."""
    root = tmp_path_factory.mktemp("models")
    for name in ("plant_richness_lr", "plant_richness_mlr"):
        shutil.copytree(BUNDLED / name, root / name)
    return root


@pytest.fixture
def start_server(tmp_path: Path):
    """``start_server(args, env=None) -> ServerProcess``; all stopped at the end."""
    started: list[ServerProcess] = []

    def start(args: list[str], env: dict[str, str] | None = None) -> ServerProcess:
        server = ServerProcess(args, env=env, log=tmp_path / f"server-{len(started)}.log")
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop(timeout=15)


@pytest.fixture(scope="module")
def server(model_copies: Path, tmp_path_factory: pytest.TempPathFactory):
    """A server of both bundled models, with small limits to test 413."""
    log = tmp_path_factory.mktemp("server") / "server.log"
    proc = ServerProcess(
        [
            str(model_copies / "plant_richness_lr"),
            str(model_copies / "plant_richness_mlr"),
            "--max-body-bytes",
            "2000000",
            "--max-rows",
            "50000",
        ],
        log=log,
    )
    yield proc
    proc.stop(timeout=15)
