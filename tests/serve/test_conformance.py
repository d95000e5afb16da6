"""Protocol conformance (issue 27) over HTTP against a real ``linreg serve`` process:
the requests of the issue get the answers it describes.

Expected predictions come from the Predictor in this process, never from the server.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import uuid
import zlib

import numpy as np
import pytest

from inference import Predictor
from tests.serve.conftest import needs_serve

pytestmark = [needs_serve, pytest.mark.slow]
requests = pytest.importorskip("requests")
MLR = "plant_richness_mlr"
FEATURES = ["area", "latitude", "dist_mainland"]
ROWS = [[1.107, 41.13, 3.802], [3.588, 44.07, 28.63], [20.0, 35.0, 120.0]]


@pytest.fixture(scope="module")
def predictor(model_copies):
    return Predictor.load(model_copies / MLR)


@pytest.fixture(scope="module")
def http():
    with requests.Session() as session:
        yield session


def infer(server, http, body, **kwargs):
    return http.post(f"{server.url}/v2/models/{MLR}/infer", json=body, **kwargs)


def tensor(datatype="FP32", data=None, shape=None, name="features"):
    data = [v for r in ROWS for v in r] if data is None else data
    return {"name": name, "datatype": datatype, "shape": shape or [len(data) // 3, 3], "data": data}


def f32(values) -> np.ndarray:
    return np.asarray(values, dtype=np.float64).astype(np.float32)


# --- MLflow ---------------------------------------------------------------------------
def test_mlflow_ignores_extra_columns(server, http, predictor):
    records = [{**dict(zip(FEATURES, r, strict=True)), "region": "north"} for r in ROWS]
    r = http.post(server.url + "/invocations?model=" + MLR, json={"dataframe_records": records})
    assert r.status_code == 200, r.text
    np.testing.assert_array_equal(f32(r.json()["predictions"]), predictor.predict(ROWS))


def test_strict_columns_keeps_the_refusal(start_server, model_copies, http):
    srv = start_server([str(model_copies / MLR), "--strict-columns"])
    records = [{**dict(zip(FEATURES, ROWS[0], strict=True)), "region": 1.0}]
    r = http.post(srv.url + "/invocations", json={"dataframe_records": records})
    assert r.status_code == 400 and r.json()["error_code"] == "BAD_REQUEST"
    assert "unknown ['region']" in r.json()["message"]
    csv = "area,latitude,dist_mainland,region\n1,2,3,4\n"
    r = http.post(srv.url + "/invocations", data=csv, headers={"Content-Type": "text/csv"})
    assert r.status_code == 400 and "unknown ['region']" in r.json()["message"]
    r = http.post(srv.url + "/predict", json={**records[0]})
    assert r.status_code == 422 and "unknown ['region']" in r.json()["error"]
    doc = http.get(srv.url + "/openapi.json").json()
    record = doc["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    assert record["schema"]["anyOf"][0]["additionalProperties"] is False


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ("[[1.0, NaN, 3.0]]", "row 0, column 'latitude'"),
        ("[[1, 2, 3], [Infinity, 2, 3]]", "row 1, column 'area'"),
        ("[[1, 2, -Infinity]]", "row 0, column 'dist_mainland'"),
        ("[[1, 2, 3], [1, null, 3]]", "row 1, column 'latitude'"),
    ],
)
def test_mlflow_nonfinite_and_null_parse_then_400_naming_row_and_column(server, http, data, where):
    body = f'{{"dataframe_split": {{"columns": {json.dumps(FEATURES)}, "data": {data}}}}}'
    r = http.post(
        f"{server.url}/invocations?model={MLR}",
        data=body.encode(),
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 400, r.text
    answer = r.json()
    assert answer["error_code"] == "BAD_REQUEST" and where in answer["message"]
    assert "not valid JSON" not in answer["message"]


def test_mlflow_records_with_null_name_the_record(server, http):
    body = {"dataframe_records": [{"area": 1.0}, {"area": None}]}
    r = http.post(server.url + "/invocations", json=body)
    assert r.status_code == 400
    assert r.json()["message"].startswith("row 1, column 'area': a missing value (null)")


def test_mlflow_statuses_and_error_codes(server, http):
    r = http.post(server.url + "/invocations", json={"dataframe_records": [{"area": "x"}]})
    assert (r.status_code, r.json()["error_code"]) == (400, "BAD_REQUEST")
    r = http.post(server.url + "/invocations", data=b"x", headers={"Content-Type": "image/png"})
    assert (r.status_code, r.json()["error_code"]) == (415, "BAD_REQUEST")
    r = http.post(server.url + "/invocations?model=nope", json={"inputs": [[1]]})
    assert (r.status_code, r.json()["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")
    big = {"inputs": {"area": [1.0] * 60_000}}
    r = http.post(server.url + "/invocations", json=big)
    assert (r.status_code, r.json()["error_code"]) == (413, "REQUEST_LIMIT_EXCEEDED")
    latin = {"Content-Type": "application/json; charset=latin-1"}
    r = http.post(server.url + "/invocations", data=b'{"inputs": [[1]]}', headers=latin)
    assert r.status_code == 415 and "charset" in r.json()["message"]


def test_mlflow_ping_and_version_are_json_as_mlflow(server, http):
    for path in ("/ping", "/health"):
        r = http.get(server.url + path)
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    r = http.get(server.url + "/version")
    assert r.headers["content-type"] == "application/json" and r.text == "0.1.0"


def _parquet(columns: dict) -> bytes:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    out = io.BytesIO()
    pq.write_table(pa.table(columns), out)
    return out.getvalue()


PARQUET = {"Content-Type": "application/vnd.apache.parquet"}


def test_mlflow_parquet_bodies(server, http, predictor):
    X = np.random.default_rng(3).uniform(0, 50, size=(200, 3))
    columns = {f: X[:, j] for j, f in enumerate(FEATURES)}
    columns["dist_mainland"] = X[:, 2].astype(np.int64)  # an integer column too
    columns["note"] = ["text"] * 200  # not read, whatever it holds
    url = f"{server.url}/invocations?model={MLR}"
    r = http.post(url, data=_parquet(columns), headers=PARQUET)
    assert r.status_code == 200, r.text
    want = predictor.predict({f: columns[f] for f in FEATURES})
    np.testing.assert_array_equal(f32(r.json()["predictions"]), want)
    nulls = {**columns, "area": [None, *X[1:, 0]]}
    r = http.post(url, data=_parquet(nulls), headers=PARQUET)
    assert r.status_code == 400 and "row 0, column 'area': a missing value" in r.text
    text = {**columns, "latitude": ["north"] * 200}
    r = http.post(url, data=_parquet(text), headers=PARQUET)
    assert r.status_code == 400 and "column 'latitude' holds string" in r.text
    r = http.post(url, data=b"PAR1 nope PAR1", headers=PARQUET)
    assert r.status_code == 400 and "not a Parquet file" in r.text


def test_mlflow_parquet_limits(server, http):
    many = _parquet({f: np.zeros(60_000) for f in FEATURES})  # compresses to a few KiB
    assert len(many) < 2_000_000
    r = http.post(f"{server.url}/invocations?model={MLR}", data=many, headers=PARQUET)
    assert r.status_code == 413 and "60000 rows, above the limit of 50000" in r.text
    rng = np.random.default_rng(0)
    large = _parquet({f: rng.uniform(size=40_000) for f in FEATURES})  # about 1 MB
    r = http.post(f"{server.url}/invocations?model={MLR}", data=large * 3, headers=PARQUET)
    assert r.status_code == 413 and "limit of 2000000" in r.text


def test_mlflow_interval_params(server, http, predictor):
    body = {
        "dataframe_split": {"columns": FEATURES, "data": ROWS},
        "params": {"interval": "prediction", "level": 0.9, "other": "ignored"},
    }
    r = http.post(f"{server.url}/invocations?model={MLR}", json=body)
    assert r.status_code == 200, r.text
    got = r.json()["predictions"]
    want = predictor.predict(ROWS, interval="prediction", level=0.9)
    np.testing.assert_allclose([g["lower"] for g in got], want.lower, rtol=1e-12)
    np.testing.assert_allclose([g["upper"] for g in got], want.upper, rtol=1e-12)
    np.testing.assert_array_equal(f32([g["prediction"] for g in got]), predictor.predict(ROWS))


# --- V2 statuses, id, redirects ---------------------------------------------------
@pytest.mark.parametrize(
    ("inp", "words"),
    [
        (tensor("INT64", [2.5, 40, 100]), "2.5 at index 0 is not an integer"),
        (tensor("UINT8", [300, 40, 100]), "300 at index 0 is out of the range of UINT8"),
        (tensor("FP32", [1, 2]), "'data' has 2 values"),
        (tensor("FP32", shape=[3, 2]), "X has 2 features"),
        (tensor("FP32", [1, True, 3]), "a boolean at index 1"),
        (tensor("BYTES", ["a", "b", "c"]), "datatype 'BYTES' is not supported"),
        (tensor("FP32", [1, float("nan"), 3]), "row 0, column 'latitude': nan"),
    ],
)
def test_v2_input_errors_are_400_with_their_messages(server, http, inp, words):
    r = http.post(
        f"{server.url}/v2/models/{MLR}/infer",
        data=json.dumps({"inputs": [inp]}),  # Python's json: NaN as the token NaN
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 400, r.text
    assert words in r.json()["error"]


def test_v2_duplicate_inputs_and_unknown_names_are_400(server, http):
    col = {"datatype": "FP32", "shape": [1], "data": [1.0]}
    twice = [{"name": f, **col} for f in (*FEATURES, "area")]
    r = infer(server, http, {"inputs": twice})
    assert r.status_code == 400 and "input 'area' is given twice" in r.json()["error"]
    other = [{"name": f, **col} for f in ("area", "latitude", "elevation")]
    r = infer(server, http, {"inputs": other})
    assert r.status_code == 400 and "unexpected ['elevation']" in r.json()["error"]


def test_v2_unknown_model_and_output_are_404(server, http):
    r = http.post(server.url + "/v2/models/nope/infer", json={"inputs": [tensor()]})
    assert r.status_code == 404 and "no model 'nope'" in r.json()["error"]
    r = infer(server, http, {"inputs": [tensor()], "outputs": [{"name": "nope"}]})
    assert r.status_code == 404 and "no output 'nope'" in r.json()["error"]
    r = infer(server, http, {"inputs": [tensor()], "outputs": [{"name": "lower"}]})
    assert r.status_code == 400 and "needs the request parameter 'interval'" in r.text


def test_v2_id_is_echoed_or_generated(server, http):
    assert infer(server, http, {"id": "abc", "inputs": [tensor()]}).json()["id"] == "abc"
    ids = {infer(server, http, {"inputs": [tensor()]}).json()["id"] for _ in range(3)}
    # UUIDs (RFC 9562 version 8: random per process, then a count), each new
    assert len(ids) == 3 and all(uuid.UUID(i).version == 8 for i in ids)
    r = infer(server, http, {"id": 7, "inputs": [tensor()]})
    assert r.status_code == 400 and "'id' 7 is not a string" in r.json()["error"]


def test_v2_outputs_deduplicated_and_empty_means_all(server, http, predictor):
    twice = [{"name": "prediction"}, {"name": "prediction"}]
    out = infer(server, http, {"inputs": [tensor()], "outputs": twice}).json()["outputs"]
    assert [o["name"] for o in out] == ["prediction"]
    np.testing.assert_array_equal(f32(out[0]["data"]), predictor.predict(ROWS))
    body = {"inputs": [tensor()], "outputs": [], "parameters": {"interval": "confidence"}}
    out = infer(server, http, body).json()["outputs"]
    assert [o["name"] for o in out] == ["prediction", "lower", "upper"]


def test_v2_metadata_tells_the_truth(server, http, predictor):
    meta = http.get(f"{server.url}/v2/models/{MLR}").json()
    body = {"inputs": [tensor()], "parameters": {"interval": "prediction", "level": 0.99}}
    out = infer(server, http, body).json()["outputs"]
    assert [(o["name"], o["datatype"]) for o in out] == [
        (m["name"], m["datatype"]) for m in meta["outputs"]
    ]
    want = predictor.predict(ROWS, interval="prediction", level=0.99)
    got = {o["name"]: o["data"] for o in out}
    np.testing.assert_array_equal(f32(got["prediction"]), predictor.predict(ROWS))
    np.testing.assert_allclose(got["lower"], want.lower, rtol=1e-12)
    config = http.get(f"{server.url}/v2/models/{MLR}/config").json()
    types = {"FP32": "TYPE_FP32", "FP64": "TYPE_FP64"}
    assert [(t["name"], t["data_type"], t["dims"]) for t in config["output"]] == [
        (m["name"], types[m["datatype"]], m["shape"]) for m in meta["outputs"]
    ]
    assert [(t["name"], t["dims"]) for t in config["input"]] == [("features", [-1, 3])]
    assert config["name"] == MLR and config["platform"] == "onnxruntime_onnx"
    assert config["max_batch_size"] == 0


def test_no_redirects_with_a_trailing_slash(server, http):
    doc = http.get(server.url + "/openapi.json").json()
    gets = [p for p, item in doc["paths"].items() if "get" in item and "{" not in p]
    assert "/v2" in gets and f"/v2/models/{MLR}/ready" in gets
    for path in gets:
        if path == "/":
            continue
        plain = http.get(server.url + path, allow_redirects=False)
        slashed = http.get(server.url + path + "/", allow_redirects=False)
        assert slashed.status_code == plain.status_code, path
        assert slashed.status_code < 300 or slashed.status_code >= 400, path
    r = http.get(server.url + "/v2/", allow_redirects=False)
    assert r.status_code == 200 and r.json()["name"] == "linreg-onnx"
    r = http.post(f"{server.url}/v2/models/{MLR}/infer/", json={"inputs": [tensor()]})
    assert r.status_code == 200 and not r.history
    r = http.post(server.url + "/invocations/", json={"inputs": [ROWS[0][:1]]})
    assert r.status_code == 200 and not r.history


# --- compression --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("coding", "compress"), [("gzip", gzip.compress), ("deflate", zlib.compress)]
)
def test_compressed_requests(server, http, coding, compress, predictor):
    headers = {"Content-Encoding": coding, "Content-Type": "application/json"}
    body = json.dumps({"inputs": [tensor()]}).encode()
    r = http.post(f"{server.url}/v2/models/{MLR}/infer", data=compress(body), headers=headers)
    assert r.status_code == 200, r.text
    np.testing.assert_array_equal(f32(r.json()["outputs"][0]["data"]), predictor.predict(ROWS))
    csv = ("area\n" + "\n".join(str(r[0]) for r in ROWS) + "\n").encode()
    headers = {"Content-Encoding": coding, "Content-Type": "text/csv"}
    r = http.post(server.url + "/invocations", data=compress(csv), headers=headers)
    assert r.status_code == 200, r.text


def test_a_decompression_bomb_is_413_and_other_codings_415(server, http):
    bomb = gzip.compress(b" " * 50_000_000)  # 50 MB of spaces: about 50 kB compressed
    headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
    r = http.post(server.url + "/predict", data=bomb, headers=headers)
    assert r.status_code == 413 and "once decompressed" in r.json()["error"]
    r = http.post(server.url + "/predict", data=b"{}", headers={"Content-Encoding": "br"})
    assert r.status_code == 415 and "'br' is not supported" in r.json()["error"]
    assert http.get(server.url + "/v2/health/live").status_code == 200


# --- Triton extensions ------------------------------------------------------------------
def _stats(server, http) -> dict:
    r = http.get(f"{server.url}/v2/models/{MLR}/stats")
    assert r.status_code == 200
    (stat,) = [s for s in r.json()["model_stats"] if s["version"] == _version(server, http)]
    return stat


def _version(server, http) -> str:
    return http.get(f"{server.url}/v2/models/{MLR}").json()["versions"][0]


def test_inference_statistics_count_what_was_sent(server, http):
    before = _stats(server, http)
    for n in (1, 4, 7):
        body = {"inputs": [tensor(data=[1.0] * 3 * n, shape=[n, 3])]}
        assert infer(server, http, body).status_code == 200
    assert http.post(f"{server.url}/models/{MLR}/predict", json=ROWS).status_code == 200
    assert infer(server, http, {"inputs": [tensor("INT8", [1.5, 2, 3])]}).status_code == 400
    after = _stats(server, http)
    inf, old = after["inference_stats"], before["inference_stats"]
    assert after["inference_count"] - before["inference_count"] == 1 + 4 + 7 + 3
    assert after["execution_count"] - before["execution_count"] == 4
    assert inf["success"]["count"] - old["success"]["count"] == 4
    assert inf["fail"]["count"] - old["fail"]["count"] == 1
    for key in ("queue", "compute_input", "compute_infer", "compute_output"):
        assert inf[key]["count"] - old[key]["count"] == 4
        assert inf[key]["ns"] >= old[key]["ns"]
    assert (
        inf["success"]["ns"] - old["success"]["ns"]
        >= inf["compute_infer"]["ns"] - old["compute_infer"]["ns"]
    )
    sizes = {b["batch_size"] for b in after["batch_stats"]}
    assert {4, 7} <= sizes
    every = http.get(server.url + "/v2/models/stats").json()["model_stats"]
    assert {s["name"] for s in every} == {"plant_richness_lr", MLR}
    versioned = http.get(f"{server.url}/v2/models/{MLR}/versions/{_version(server, http)}/stats")
    assert versioned.json()["model_stats"][0]["inference_count"] >= after["inference_count"]


@pytest.mark.parametrize(
    ("method", "path", "extension"),
    [
        ("GET", "/v2/logging", "logging"),
        ("GET", "/v2/trace/setting", "trace"),
        ("GET", f"/v2/models/{MLR}/trace/setting", "trace"),
        ("GET", "/v2/systemsharedmemory/status", "system_shared_memory"),
        ("GET", "/v2/cudasharedmemory/status", "cuda_shared_memory"),
    ],
)
def test_other_triton_extensions_say_not_supported(server, http, method, path, extension):
    r = http.request(method, server.url + path)
    assert r.status_code == 501
    assert re.search(f"extension '{extension}' is not supported", r.json()["error"])
    assert extension not in http.get(server.url + "/v2").json()["extensions"]


def test_statistics_with_micro_batching(start_server, model_copies, predictor):
    """Merged runs count once in execution_count; every request's rows, queue and
    run still add up (16 concurrent one-row requests)."""
    from concurrent.futures import ThreadPoolExecutor

    srv = start_server(
        [str(model_copies / MLR), "--max-batch-rows", "64", "--max-batch-delay-us", "20000"]
    )
    url = f"{srv.url}/v2/models/{MLR}/infer"

    def one(i: int) -> list[float]:
        body = {"inputs": [tensor(data=[float(i), 40.0, 100.0], shape=[1, 3])]}
        r = requests.post(url, json=body, timeout=30)
        assert r.status_code == 200, r.text
        return r.json()["outputs"][0]["data"]

    with ThreadPoolExecutor(16) as pool:
        got = list(pool.map(one, range(16)))
    want = predictor.predict([[float(i), 40.0, 100.0] for i in range(16)])
    np.testing.assert_allclose(f32([g[0] for g in got]), want, rtol=1e-6)  # merged: last bit
    with requests.Session() as http:
        assert "dynamic_batching" in http.get(f"{srv.url}/v2/models/{MLR}/config").json()
        (stat,) = http.get(f"{srv.url}/v2/models/{MLR}/stats").json()["model_stats"]
    inf = stat["inference_stats"]
    assert stat["inference_count"] == 16 and inf["success"]["count"] == 16
    assert 1 <= stat["execution_count"] <= 16, stat
    assert sum(b["compute_infer"]["count"] for b in stat["batch_stats"]) == stat["execution_count"]
    assert sum(b["batch_size"] * b["compute_infer"]["count"] for b in stat["batch_stats"]) == 16
    assert inf["queue"]["count"] == inf["compute_infer"]["count"] == 16
