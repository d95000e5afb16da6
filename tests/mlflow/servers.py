"""``mlflow models serve`` as a process beside ``linreg serve`` (the side-by-side tests
and ``benchmarks/mlflow_side_by_side.py`` start both)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.serve.conftest import free_port

__all__ = ["MlflowServer"]

BIN = Path(sys.executable).parent


class MlflowServer:
    """``mlflow models serve -m MODEL --env-manager local`` on a free port (uvicorn, found
    on PATH, must be this environment's)."""

    def __init__(self, model: Path, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.log_path = log
        mlflow_cli = shutil.which("mlflow", path=str(BIN)) or "mlflow"
        env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
        self.proc = subprocess.Popen(
            [mlflow_cli, "models", "serve", "-m", str(model), "--env-manager", "local"]
            + ["--host", "127.0.0.1", "-p", str(self.port), "-w", "1"],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        deadline = time.monotonic() + 90
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mlflow models serve exited: {log.read_text()}")
            try:
                with urllib.request.urlopen(self.url + "/ping", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"mlflow models serve did not start: {log.read_text()}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)  # its own group: uvicorn's workers go with it
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait(10)
        self._log.close()
