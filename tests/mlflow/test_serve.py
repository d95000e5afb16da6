"""``mlflow models serve --env-manager local`` on a model directory answers ``/invocations``
like ``linreg serve``'s MLflow protocol: both started as real processes, every input format."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from inference import Predictor
from tests.mlflow.conftest import BUNDLED, needs_mlflow
from tests.serve.conftest import MISSING as SERVE_MISSING
from tests.serve.conftest import ServerProcess, free_port

pytestmark = [
    needs_mlflow,
    pytest.mark.skipif(bool(SERVE_MISSING), reason=f"linreg serve needs {SERVE_MISSING}"),
    pytest.mark.slow,
]

BIN = Path(sys.executable).parent
MODEL = BUNDLED / "plant_richness_mlr"


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


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    logs = tmp_path_factory.mktemp("logs")
    ours = ServerProcess([str(MODEL)], log=logs / "linreg.log")
    try:
        theirs = MlflowServer(MODEL, logs / "mlflow.log")
    except BaseException:
        ours.stop()
        raise
    yield ours, theirs
    theirs.stop()
    ours.stop()


def _post(url: str, body: bytes, content_type: str) -> tuple[int, dict]:
    request = urllib.request.Request(
        url + "/invocations", data=body, headers={"Content-Type": content_type}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _bodies(features: list[str], rows: list[list]) -> dict[str, tuple[bytes, str]]:
    records = [dict(zip(features, r, strict=True)) for r in rows]
    columns = {f: [r[j] for r in rows] for j, f in enumerate(features)}
    csv = ",".join(features) + "\n" + "".join(",".join(map(repr, r)) + "\n" for r in rows)

    def js(payload: object) -> tuple[bytes, str]:
        return json.dumps(payload).encode(), "application/json"

    return {
        "dataframe_split": js({"dataframe_split": {"columns": features, "data": rows}}),
        "dataframe_records": js({"dataframe_records": records}),
        "instances": js({"instances": records}),
        "inputs": js({"inputs": columns}),
        "csv": (csv.encode(), "text/csv"),
    }


@pytest.mark.parametrize(
    "form", ["dataframe_split", "dataframe_records", "instances", "inputs", "csv"]
)
def test_mlflow_models_serve_answers_as_linreg_serve(servers, form):
    ours, theirs = servers
    predictor = Predictor.load(MODEL)
    rng = np.random.default_rng(7)
    # the last column integers: an int64 column once MLflow reads the body
    rows = [
        [rng.uniform(0.1, 50), rng.uniform(20, 60), int(rng.integers(0, 300))] for _ in range(40)
    ]
    body, ctype = _bodies(predictor.features, rows)[form]
    status_a, a = _post(ours.url, body, ctype)
    status_b, b = _post(theirs.url, body, ctype)
    assert (status_a, status_b) == (200, 200), (a, b)
    # the same float32 values, written as float64 by MLflow (10.409719467163086) and as the
    # shortest float32 text by linreg serve (10.409719)
    want = predictor.predict(np.asarray(rows))
    for answer in (a, b):
        got = np.asarray(answer["predictions"], dtype=np.float64)
        np.testing.assert_array_equal(got.astype(predictor.dtype), want)
    assert b["predictions"] == want.astype(np.float64).tolist()


def test_the_interval_params_and_the_errors_over_http(servers):
    import pandas as pd

    _, theirs = servers
    predictor = Predictor.load(MODEL)
    rows = [[3.0, 40.0, 10], [20.5, 35.0, 120]]
    payload = {
        "dataframe_split": {"columns": predictor.features, "data": rows},
        "params": {"interval": "confidence", "level": 0.9},
    }
    status, answer = _post(theirs.url, json.dumps(payload).encode(), "application/json")
    assert status == 200, answer
    want = predictor.predict(np.asarray(rows), interval="confidence", level=0.9)
    got = answer["predictions"]
    assert [r["lower"] for r in got] == want.lower.tolist()
    assert [r["upper"] for r in got] == want.upper.tolist()
    bad = {"dataframe_split": {"columns": predictor.features, "data": [[1.0, "north", 3.0]]}}
    status, answer = _post(theirs.url, json.dumps(bad).encode(), "application/json")
    with pytest.raises(ValueError) as caught:
        predictor.predict(pd.DataFrame([[1.0, "north", 3.0]], columns=predictor.features))
    assert status == 400 and str(caught.value) in answer["message"]
