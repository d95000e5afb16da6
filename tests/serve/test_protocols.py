"""Every endpoint over real HTTP against a real server process on loopback.

Expected values come from the Predictor in this process and from the manifest's
parameters (``x @ coef + intercept`` in float64), never from the server itself.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from inference import Predictor
from tests.serve.conftest import needs_serve

pytestmark = needs_serve
requests = pytest.importorskip("requests")


def reference(model_dir: Path, X: np.ndarray) -> np.ndarray:
    params = json.loads((model_dir / "manifest.json").read_text())["parameters"]
    return np.asarray(X, dtype=np.float64) @ np.asarray(params["coef"]) + params["intercept"]


@pytest.fixture(scope="module")
def models(model_copies):
    return {
        name: Predictor.load(model_copies / name)
        for name in ("plant_richness_lr", "plant_richness_mlr")
    }


@pytest.fixture(scope="module")
def http():
    with requests.Session() as session:
        yield session


def rows(k: int, n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 50, size=(n, k)).astype(np.float32)


# --- V2 -----------------------------------------------------------------------
@pytest.mark.slow
def test_v2_health_and_metadata(server, http, models):
    assert http.get(server.url + "/v2/health/live").json() == {"live": True}
    assert http.get(server.url + "/v2/health/ready").json() == {"ready": True}
    meta = http.get(server.url + "/v2").json()
    assert "binary_tensor_data" in meta["extensions"]
    m = http.get(server.url + "/v2/models/plant_richness_mlr").json()
    assert m["name"] == "plant_richness_mlr"
    assert m["inputs"] == [{"name": "features", "datatype": "FP32", "shape": [-1, 3]}]
    assert m["outputs"] == [{"name": "prediction", "datatype": "FP32", "shape": [-1]}]
    assert m["parameters"]["features"] == models["plant_richness_mlr"].features
    version = m["versions"][0]
    base = server.url + "/v2/models/plant_richness_mlr"
    assert http.get(base + "/ready").json()["ready"] is True
    assert http.get(f"{base}/versions/{version}/ready").status_code == 200
    missing = http.get(base + "/versions/nope/ready")
    assert missing.status_code == 404 and "no version 'nope'" in missing.json()["error"]
    r = http.get(server.url + "/v2/models/nope")
    assert r.status_code == 404
    assert "plant_richness_lr" in r.json()["error"]


@pytest.mark.slow
def test_v2_json_infer_matches_predictor(server, http, models, model_copies):
    X = rows(3, 7)
    body = {
        "id": "abc",
        "inputs": [{"name": "features", "shape": [7, 3], "datatype": "FP32", "data": X.tolist()}],
    }
    r = http.post(server.url + "/v2/models/plant_richness_mlr/infer", json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["id"] == "abc" and out["model_name"] == "plant_richness_mlr"
    y = np.asarray(out["outputs"][0]["data"], dtype=np.float32)
    np.testing.assert_array_equal(y, models["plant_richness_mlr"].predict(X))
    np.testing.assert_allclose(y, reference(model_copies / "plant_richness_mlr", X), rtol=1e-5)


@pytest.mark.slow
def test_v2_one_tensor_per_feature(server, http, models):
    X = rows(3, 4, seed=1)
    names = models["plant_richness_mlr"].features
    body = {
        "inputs": [
            {"name": f, "shape": [4], "datatype": "FP64", "data": X[:, j].tolist()}
            for j, f in enumerate(names)
        ]
    }
    r = http.post(server.url + "/v2/models/plant_richness_mlr/infer", json=body)
    assert r.status_code == 200, r.text
    y = np.asarray(r.json()["outputs"][0]["data"], dtype=np.float32)
    np.testing.assert_array_equal(y, models["plant_richness_mlr"].predict(X))


@pytest.mark.slow
def test_v2_intervals(server, http, models):
    X = rows(1, 3, seed=2)
    body = {
        "inputs": [
            {"name": "features", "shape": [3, 1], "datatype": "FP32", "data": X.ravel().tolist()}
        ],
        "parameters": {"interval": "confidence", "level": 0.99},
    }
    r = http.post(server.url + "/v2/models/plant_richness_lr/infer", json=body)
    assert r.status_code == 200, r.text
    outs = {o["name"]: np.asarray(o["data"]) for o in r.json()["outputs"]}
    expected = models["plant_richness_lr"].predict(X, interval="confidence", level=0.99)
    np.testing.assert_allclose(outs["lower"], expected.lower, rtol=1e-12)
    np.testing.assert_allclose(outs["upper"], expected.upper, rtol=1e-12)


@pytest.mark.slow
def test_tritonclient_binary_infer(server, models):
    httpclient = pytest.importorskip("tritonclient.http", reason="needs tritonclient[http]")
    client = httpclient.InferenceServerClient(url=server.url.removeprefix("http://"))
    try:
        assert client.is_server_live() and client.is_model_ready("plant_richness_mlr")
        meta = client.get_model_metadata("plant_richness_mlr")
        assert meta["inputs"][0]["shape"] == [-1, 3]
        X = rows(3, 1000, seed=3)
        for binary in (True, False):
            inp = httpclient.InferInput("features", list(X.shape), "FP32")
            inp.set_data_from_numpy(X, binary_data=binary)
            outputs = (
                None
                if binary
                else [httpclient.InferRequestedOutput("prediction", binary_data=False)]
            )
            result = client.infer("plant_richness_mlr", [inp], outputs=outputs)
            y = result.as_numpy("prediction")
            assert y.dtype == np.float32 and y.shape == (1000,)
            np.testing.assert_array_equal(y, models["plant_richness_mlr"].predict(X))
        # a NaN reaches the Predictor's own message
        bad = X[:5].copy()
        bad[2, 1] = np.nan
        inp = httpclient.InferInput("features", list(bad.shape), "FP32")
        inp.set_data_from_numpy(bad)
        with pytest.raises(Exception) as info:
            client.infer("plant_richness_mlr", [inp])
        with pytest.raises(ValueError) as local:
            models["plant_richness_mlr"].predict(bad)
        assert str(local.value) in str(info.value)
    finally:
        client.close()


@pytest.mark.slow
def test_v2_binary_by_hand(server, http, models):
    """The binary extension without tritonclient: header length, raw bytes, binary output."""
    X = rows(1, 5, seed=4)
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "features",
                    "shape": [5, 1],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": X.nbytes},
                }
            ],
            "outputs": [{"name": "prediction", "parameters": {"binary_data": True}}],
        }
    ).encode()
    r = http.post(
        server.url + "/v2/models/plant_richness_lr/infer",
        data=header + X.astype("<f4").tobytes(),
        headers={"Inference-Header-Content-Length": str(len(header))},
    )
    assert r.status_code == 200, r.text
    hlen = int(r.headers["Inference-Header-Content-Length"])
    meta = json.loads(r.content[:hlen])
    assert meta["outputs"][0]["parameters"]["binary_data_size"] == 20
    y = np.frombuffer(r.content[hlen:], dtype="<f4")
    np.testing.assert_array_equal(y, models["plant_richness_lr"].predict(X))


def tensor(shape: list[int], datatype: str, data: list) -> str:
    return json.dumps(
        {"inputs": [{"name": "features", "shape": shape, "datatype": datatype, "data": data}]}
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ("{", 400, "not valid JSON"),
        ('{"inputs": []}', 400, "no 'inputs'"),
        (
            tensor([1, 2], "FP32", [1, 2]),
            422,
            "X has 2 features",
        ),
        (
            tensor([2, 1], "FP32", [1]),
            422,
            "shape [2, 1] needs 2",
        ),
        (
            tensor([1, 1], "BYTES", ["a"]),
            422,
            "datatype 'BYTES'",
        ),
        (
            tensor([1, 1], "FP32", [1e300]),
            422,
            "beyond",
        ),
        (
            tensor([60000, 1], "FP32", []),
            413,
            "limit of 50000",
        ),
    ],
)
def test_v2_errors(server, http, body, status, words):
    r = http.post(server.url + "/v2/models/plant_richness_lr/infer", data=body)
    assert r.status_code == status, r.text
    assert words in r.json()["error"]
    assert "Traceback" not in r.text


# --- MLflow ---------------------------------------------------------------------
@pytest.mark.slow
def test_mlflow_formats(server, http, models):
    X = rows(1, 3, seed=5).astype(np.float64)
    expected = models["plant_richness_lr"].predict(X)
    area = X[:, 0].tolist()
    bodies = [
        {"dataframe_split": {"columns": ["area"], "data": [[v] for v in area]}},
        {"dataframe_records": [{"area": v} for v in area]},
        {"instances": [{"area": v} for v in area]},
        {"inputs": {"area": area}},
        {"inputs": [[v] for v in area], "params": {}},
    ]
    for body in bodies:
        r = http.post(server.url + "/invocations", json=body)
        assert r.status_code == 200, (body, r.text)
        np.testing.assert_array_equal(
            np.asarray(r.json()["predictions"], dtype=np.float32), expected
        )
    csv = "area\n" + "\n".join(repr(v) for v in area) + "\n"
    r = http.post(server.url + "/invocations", data=csv, headers={"Content-Type": "text/csv"})
    assert r.status_code == 200, r.text
    np.testing.assert_array_equal(np.asarray(r.json()["predictions"], dtype=np.float32), expected)
    r = http.post(
        server.url + "/invocations?model=plant_richness_mlr", json={"instances": [[1, 2, 3]]}
    )
    assert r.status_code == 200
    np.testing.assert_array_equal(
        np.asarray(r.json()["predictions"], dtype=np.float32),
        models["plant_richness_mlr"].predict([[1, 2, 3]]),
    )


@pytest.mark.slow
def test_mlflow_errors_and_health(server, http):
    r = http.post(server.url + "/invocations", json={"dataframe_records": [{"aera": 1.0}]})
    assert r.status_code == 422
    assert r.json()["error_code"] == "BAD_REQUEST" and "missing ['area']" in r.json()["message"]
    r = http.post(server.url + "/invocations", json={"nope": 1})
    assert r.status_code == 400 and "exactly one of" in r.json()["message"]
    r = http.post(
        server.url + "/invocations", data="area\nx\n", headers={"Content-Type": "text/csv"}
    )
    assert r.status_code == 422 and "line 2" in r.json()["message"]
    r = http.post(server.url + "/invocations", data=b"1", headers={"Content-Type": "image/png"})
    assert r.status_code == 415
    assert http.get(server.url + "/ping").status_code == 200
    assert http.get(server.url + "/health").status_code == 200
    assert http.get(server.url + "/version").text == "0.1.0"


# --- /predict ---------------------------------------------------------------------
@pytest.mark.slow
def test_predict_formats(server, http, models):
    p = models["plant_richness_mlr"]
    X = rows(3, 4, seed=6).astype(np.float64)
    records = [dict(zip(p.features, map(float, row), strict=True)) for row in X]
    columns = {f: X[:, j].tolist() for j, f in enumerate(p.features)}
    url = server.url + "/models/plant_richness_mlr/predict"
    for body in (records, columns, X.tolist(), {"inputs": records}):
        r = http.post(url, json=body)
        assert r.status_code == 200, r.text
        np.testing.assert_array_equal(
            np.asarray(r.json()["predictions"], dtype=np.float32), p.predict(X)
        )
    one = http.post(url, json=records[0]).json()
    assert one["predictions"] == [p.predict_one(records[0])]
    assert one["model"] == "plant_richness_mlr"


@pytest.mark.slow
def test_predict_intervals(server, http, models):
    p = models["plant_richness_lr"]
    X = rows(1, 5, seed=7)
    body = {"inputs": {"area": X[:, 0].tolist()}, "interval": "prediction", "level": 0.9}
    r = http.post(server.url + "/predict", json=body)
    assert r.status_code == 200, r.text
    got = r.json()
    expected = p.predict(X, interval="prediction", level=0.9)
    np.testing.assert_allclose(got["lower"], expected.lower, rtol=1e-12)
    np.testing.assert_allclose(got["upper"], expected.upper, rtol=1e-12)
    assert got["interval"] == "prediction" and got["level"] == 0.9
    q = http.post(server.url + "/predict?interval=confidence&level=0.95", json={"area": 2.0}).json()
    expected = p.predict([[2.0]], interval="confidence", level=0.95)
    np.testing.assert_allclose(q["lower"], expected.lower, rtol=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("body", "query", "status", "words"),
    [
        ({"area": "3"}, "", 422, "holds strings"),
        ({"aera": 3}, "", 422, "unknown ['aera']"),
        ({"area": 3}, "?interval=sideways", 422, "interval must be one of"),
        ({"area": 3}, "?interval=prediction&level=1.5", 422, "level must be between 0 and 1"),
        ({"area": 3}, "?level=0.9", 422, "without 'interval'"),
    ],
)
def test_predict_errors(server, http, models, body, query, status, words):
    r = http.post(server.url + "/predict" + query, json=body)
    assert r.status_code == status, r.text
    assert words in r.json()["error"]


@pytest.mark.slow
def test_an_empty_batch_gets_an_empty_answer(server, http):
    """``[]`` is an empty batch, as in every input form of the Predictor (issue 28;
    it was a 422 "a 1-D input is one row: got 0 values")."""
    r = http.post(server.url + "/predict", json=[])
    assert r.status_code == 200, r.text
    assert r.json()["predictions"] == []


@pytest.mark.slow
def test_predict_error_is_the_predictors_message(server, http, models):
    body = [{"area": 1.0}, {"area": 1e40}]
    r = http.post(server.url + "/predict", json=body)
    with pytest.raises(ValueError) as local:
        models["plant_richness_lr"].predict(body)
    assert r.status_code == 422 and r.json()["error"] == str(local.value)


@pytest.mark.slow
def test_limits_and_unknown_routes(server, http):
    big = b'{"area": [' + b"1.0," * 600_000 + b"1.0]}"
    r = http.post(server.url + "/predict", data=big)
    assert r.status_code == 413 and "limit of 2000000" in r.json()["error"]
    r = http.post(server.url + "/predict", json={"area": [1.0] * 60_000})
    assert r.status_code == 413 and "limit of 50000" in r.json()["error"]
    r = http.get(server.url + "/nowhere")
    assert r.status_code == 404 and "no route" in r.json()["error"]
    r = http.get(server.url + "/predict")
    assert r.status_code == 405 and "not allowed" in r.json()["error"]
    for path in ("/models/nope/predict", "/v2/models/nope/infer", "/invocations?model=nope"):
        r = http.post(server.url + path, json={"area": 1.0})
        assert r.status_code == 404, path
        assert "no model 'nope'" in r.text


# --- operations, documents, page -------------------------------------------------------
@pytest.mark.slow
def test_metrics(server, http):
    http.post(server.url + "/predict", json={"area": 1.0})
    http.post(server.url + "/predict", json={"area": "x"})
    text = http.get(server.url + "/metrics").text
    assert 'linreg_requests_total{endpoint="predict",method="POST",status="200"}' in text
    assert 'linreg_request_errors_total{endpoint="predict",status="422"}' in text
    assert "linreg_request_duration_seconds_bucket" in text
    assert 'linreg_request_rows_count{model="plant_richness_lr"}' in text
    assert 'linreg_batch_rows_count{model="plant_richness_lr"}' in text
    assert 'linreg_model_info{model="plant_richness_mlr"' in text


@pytest.mark.slow
def test_access_log_is_json(server, http):
    http.post(server.url + "/models/plant_richness_mlr/predict", json=[[1, 2, 3]])
    import time

    deadline = time.monotonic() + 30  # access lines are written in batches
    while True:
        lines = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
        hits = [x for x in lines if x.get("path") == "/models/plant_richness_mlr/predict"]
        if hits or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert hits and hits[-1]["status"] == 200 and hits[-1]["rows"] == 1
    assert hits[-1]["model"] == "plant_richness_mlr" and hits[-1]["ms"] >= 0


@pytest.mark.slow
def test_openapi_and_offline_docs(server, http, models):
    doc = http.get(server.url + "/openapi.json").json()
    schema = doc["paths"]["/models/plant_richness_mlr/predict"]["post"]["requestBody"]
    record = schema["content"]["application/json"]["schema"]["anyOf"][0]
    assert list(record["properties"]) == models["plant_richness_mlr"].features
    assert record["properties"]["area"]["format"] == "float"
    infer = doc["paths"]["/v2/models/plant_richness_mlr/infer"]["post"]["summary"]
    assert "[n, 3]" in infer
    page = http.get(server.url + "/docs").text
    assert "http://" not in page and "https://" not in page  # nothing from a CDN
    for asset in (
        "/docs/assets/swagger-ui.css",
        "/docs/assets/swagger-ui-bundle.js",
        "/docs/init.js",
    ):
        assert asset in page or asset == "/docs/init.js"
        assert http.get(server.url + asset).status_code == 200
    assert http.get(server.url + "/docs/assets/..%2Fsecret").status_code == 404


@pytest.mark.slow
def test_model_page_html(server, http):
    page = http.get(server.url + "/").text
    assert "plant_richness_mlr" in page and "dist_mainland" in page
    assert "/models/plant_richness_lr/plots/regression.png" in page
    png = http.get(server.url + "/models/plant_richness_lr/plots/regression.png")
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    assert http.get(server.url + "/models/plant_richness_lr/plots/manifest.json").status_code == 404


@pytest.mark.slow
def test_token_and_slow_body(start_server, model_copies, tmp_path, http):
    import socket
    import time

    token = tmp_path / "token"
    token.write_text("s3cret\n")
    srv = start_server(
        [str(model_copies / "plant_richness_lr"), "--token-file", str(token), "--body-timeout", "1"]
    )
    assert http.get(srv.url + "/v2/health/ready").status_code == 200  # probes stay open
    r = http.post(srv.url + "/predict", json={"area": 1.0})
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Bearer"
    r = http.post(
        srv.url + "/predict", json={"area": 1.0}, headers={"Authorization": "Bearer nope"}
    )
    assert r.status_code == 401
    ok = {"Authorization": "Bearer s3cret"}
    assert http.post(srv.url + "/predict", json={"area": 1.0}, headers=ok).status_code == 200
    # a client that sends half its body and stalls gets 408, not a held connection
    with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as s:
        s.sendall(
            b"POST /predict HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer s3cret\r\n"
            b'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"area": '
        )
        start = time.monotonic()
        reply = s.recv(65536)
        while b"\r\n\r\n" not in reply and time.monotonic() - start < 30:
            reply += s.recv(65536)
    assert reply.startswith(b"HTTP/1.1 408"), reply


def test_bad_model_dir_is_a_command_error(tmp_path, capsys):
    from linreg.main import main

    assert main(["serve", str(tmp_path / "nope")]) == 1
    assert "linreg serve: error:" in capsys.readouterr().err


@pytest.mark.slow
def test_two_workers(start_server, model_copies, http, models):
    srv = start_server([str(model_copies / "plant_richness_lr"), "--workers", "2"])
    for area in (1.0, 2.0, 3.0, 4.0):
        r = http.post(srv.url + "/predict", json={"area": area}, headers={"Connection": "close"})
        assert r.json()["predictions"] == [models["plant_richness_lr"].predict_one(area=area)]
    assert srv.stop() in (0, -15)
    assert "uvicorn.access" not in srv.log()  # one access log, the server's own
