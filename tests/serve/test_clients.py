"""Clients no one here wrote, unchanged, against a real ``linreg serve`` process:
KServe's REST client and its pydantic protocol models, ``tritonclient`` (http and
http.aio, with compression, model configuration and statistics), MLflow's
``ScoringServerClient``, and openapi-spec-validator on ``/openapi.json``. Each skips
with a reason when its package is missing (the ``serve-test`` extra installs them;
kserve with ``--no-deps``, scripts/setup.sh says why).

Predictions are compared with the Predictor in this process.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
import types
import urllib.request

import numpy as np
import pytest

from inference import Predictor
from tests.serve.conftest import needs_serve

pytestmark = [needs_serve, pytest.mark.slow]
MLR = "plant_richness_mlr"
FEATURES = ["area", "latitude", "dist_mainland"]
X = np.random.default_rng(11).uniform(0, 50, size=(64, 3)).astype(np.float32)


@pytest.fixture(scope="module")
def predictor(model_copies):
    return Predictor.load(model_copies / MLR)


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.loads(r.read())  # type: ignore[no-any-return]


# --- KServe --------------------------------------------------------------------------
def kserve():
    """kserve's client and protocol modules. kserve's package ``__init__`` imports its
    model server and its Kubernetes client, whose pins (pandas<3, protobuf<7,
    psutil<6) conflict with this project's; the modules used here need only pydantic,
    httpx, grpcio, cloudevents, numpy and pandas, so they are imported under a bare
    package object standing for ``kserve`` (its ``__init__`` is never run)."""
    if "kserve" not in sys.modules:
        spec = importlib.util.find_spec("kserve")
        if spec is None or spec.submodule_search_locations is None:
            pytest.skip("needs kserve (scripts/setup.sh installs kserve==0.21.0 --no-deps)")
        needed = ("httpx", "grpc", "cloudevents")
        missing = [m for m in needed if importlib.util.find_spec(m) is None]
        if missing:
            pytest.skip(f"kserve's client needs {missing} (the serve-test extra)")
        package = types.ModuleType("kserve")
        package.__path__ = list(spec.submodule_search_locations)
        sys.modules["kserve"] = package
        _import_kserve_messages()
    from kserve.inference_client import InferenceRESTClient, RESTConfig
    from kserve.protocol.infer_type import InferInput, InferRequest, RequestedOutput
    from kserve.protocol.rest import v2_datamodels

    return types.SimpleNamespace(
        InferenceRESTClient=InferenceRESTClient,
        RESTConfig=RESTConfig,
        InferInput=InferInput,
        InferRequest=InferRequest,
        RequestedOutput=RequestedOutput,
        models=v2_datamodels,
    )


def _import_kserve_messages() -> None:
    """Import kserve's generated gRPC messages into a descriptor pool of their own.
    They define the same protobuf package (``inference``) as ``tritonclient.grpc``'s,
    and one process's default pool refuses a symbol defined twice (``duplicate symbol
    'inference.ServerLiveRequest'``); the REST client imports them but never uses them
    (kserve's own pb2 module reads ``descriptor_pool.Default()`` when it is run)."""
    from google.protobuf import descriptor_pool

    default = descriptor_pool.Default
    own = descriptor_pool.DescriptorPool()
    descriptor_pool.Default = lambda: own  # type: ignore[assignment]
    try:
        importlib.import_module("kserve.protocol.grpc.grpc_predict_v2_pb2")
    finally:
        descriptor_pool.Default = default  # type: ignore[assignment]


def _post(url: str, body: dict) -> dict:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as r:
        return json.loads(r.read())  # type: ignore[no-any-return]


def test_kserve_models_accept_every_json_answer(server, predictor):
    k = kserve()
    m = k.models
    base = server.url
    m.ServerLiveResponse.model_validate(_get(base + "/v2/health/live"))
    m.ServerReadyResponse.model_validate(_get(base + "/v2/health/ready"))
    m.ServerMetadataResponse.model_validate(_get(base + "/v2"))
    m.ModelMetadataResponse.model_validate(_get(f"{base}/v2/models/{MLR}"))
    m.ModelReadyResponse.model_validate(_get(f"{base}/v2/models/{MLR}/ready"))
    flat = {"name": "features", "shape": [2, 3], "datatype": "FP32", "data": X[:2].ravel().tolist()}
    columns = [
        {"name": f, "shape": [2], "datatype": "FP64", "data": X[:2, j].tolist()}
        for j, f in enumerate(FEATURES)
    ]
    ints = [1, 2, 3, 4, 5, 6]
    requests = [
        ({"inputs": [flat]}, X[:2]),
        ({"id": "42", "inputs": [flat], "outputs": [{"name": "prediction"}]}, X[:2]),
        ({"inputs": columns, "parameters": {"interval": "confidence", "level": 0.9}}, X[:2]),
        ({"inputs": [flat], "outputs": [], "parameters": {"interval": "prediction"}}, X[:2]),
        ({"inputs": [{**flat, "datatype": "INT64", "data": ints}]}, np.reshape(ints, (2, 3))),
    ]
    for body, rows in requests:
        m.InferenceRequest.model_validate(body)  # what we send is KServe's too
        answer = m.InferenceResponse.model_validate(_post(f"{base}/v2/models/{MLR}/infer", body))
        assert answer.id == body.get("id", answer.id) and answer.model_name == MLR
        got = np.asarray(answer.outputs[0].data, dtype=np.float32)
        np.testing.assert_array_equal(got, predictor.predict(rows))


def test_kserve_rest_client(server, predictor):
    k = kserve()

    async def run():
        client = k.InferenceRESTClient(k.RESTConfig(protocol="v2", retries=0))
        try:
            assert await client.is_server_live(server.url)
            assert await client.is_server_ready(server.url)
            assert await client.is_model_ready(server.url, MLR)
            answers = []
            for binary in (False, True):
                inp = k.InferInput("features", list(X.shape), "FP32")
                inp.set_data_from_numpy(X, binary_data=binary)
                request = k.InferRequest(MLR, [inp], request_id=f"r{binary}")
                answers.append(await client.infer(server.url, request, model_name=MLR))
            return answers
        finally:
            await client.close()

    for answer in asyncio.run(run()):
        assert answer.id.startswith("r") and answer.model_name == MLR
        np.testing.assert_array_equal(answer.outputs[0].as_numpy(), predictor.predict(X))


# --- tritonclient ----------------------------------------------------------------------
def test_tritonclient_http_config_statistics_and_compression(server, predictor):
    httpclient = pytest.importorskip("tritonclient.http", reason="needs tritonclient[http]")
    client = httpclient.InferenceServerClient(url=server.url.removeprefix("http://"))
    try:
        config = client.get_model_config(MLR)
        assert config["name"] == MLR and config["max_batch_size"] == 0
        assert [(t["name"], t["data_type"], t["dims"]) for t in config["input"]] == [
            ("features", "TYPE_FP32", [-1, 3])
        ]
        meta = client.get_model_metadata(MLR)
        assert [o["name"] for o in config["output"]] == [o["name"] for o in meta["outputs"]]
        before = client.get_inference_statistics(MLR)["model_stats"][0]["inference_count"]
        for algorithm in (None, "gzip", "deflate"):
            inp = httpclient.InferInput("features", list(X.shape), "FP32")
            inp.set_data_from_numpy(X)
            result = client.infer(
                MLR,
                [inp],
                request_compression_algorithm=algorithm,
                response_compression_algorithm=algorithm,
            )
            np.testing.assert_array_equal(result.as_numpy("prediction"), predictor.predict(X))
        stats = client.get_inference_statistics(MLR)["model_stats"][0]
        assert stats["name"] == MLR and stats["inference_count"] - before == 3 * len(X)
        assert stats["inference_stats"]["success"]["count"] >= 3
        assert {s["name"] for s in client.get_inference_statistics()["model_stats"]} >= {MLR}
        assert client.get_model_config(MLR, model_version=meta["versions"][0])["name"] == MLR
        with pytest.raises(Exception, match="not supported"):
            client.get_log_settings()
    finally:
        client.close()


def test_tritonclient_aio(server, predictor):
    pytest.importorskip("aiohttp", reason="tritonclient.http.aio needs aiohttp")
    aio = pytest.importorskip("tritonclient.http.aio", reason="needs tritonclient[http]")

    async def run():
        client = aio.InferenceServerClient(url=server.url.removeprefix("http://"))
        try:
            assert await client.is_server_ready()
            config = await client.get_model_config(MLR)
            stats = await client.get_inference_statistics(MLR)
            inp = aio.InferInput("features", list(X.shape), "FP32")
            inp.set_data_from_numpy(X)
            out = aio.InferRequestedOutput("prediction", binary_data=False)
            result = await client.infer(
                MLR, [inp], outputs=[out], request_compression_algorithm="gzip"
            )
            return config, stats, result.as_numpy("prediction")
        finally:
            await client.close()

    config, stats, y = asyncio.run(run())
    assert config["name"] == MLR and stats["model_stats"][0]["name"] == MLR
    np.testing.assert_array_equal(y, predictor.predict(X))


# --- MLflow's client --------------------------------------------------------------------
def test_mlflow_scoring_server_client(server, model_copies):
    pytest.importorskip("mlflow", reason="needs mlflow-skinny (the mlflow extra)")
    pd = pytest.importorskip("pandas")
    from mlflow.pyfunc.scoring_server.client import ScoringServerClient

    host, port = server.url.removeprefix("http://").split(":")
    client = ScoringServerClient(host, int(port))
    client.wait_server_ready(timeout=30)
    assert client.get_version() == "0.1.0"
    lr = Predictor.load(model_copies / "plant_richness_lr")
    frame = pd.DataFrame({"area": X[:, 0].astype(np.float64), "region": "north"})
    answer = client.invoke(frame)  # the first model; a column it does not read
    np.testing.assert_array_equal(
        np.asarray(answer["predictions"], dtype=np.float32), lr.predict(X[:, :1])
    )
    answer = client.invoke(frame[["area"]], params={"interval": "prediction", "level": 0.9})
    want = lr.predict(X[:, :1], interval="prediction", level=0.9)
    np.testing.assert_allclose(answer.get_predictions()["lower"], want.lower, rtol=1e-12)
    with pytest.raises(Exception, match="error code 400") as caught:
        client.invoke(pd.DataFrame({"area": [1.0, np.nan]}))  # written as NaN by MLflow
    assert "row 1, column 'area'" in str(caught.value)


# --- OpenAPI ---------------------------------------------------------------------------
def test_openapi_spec_validator_on_the_served_document(server):
    validator = pytest.importorskip(
        "openapi_spec_validator", reason="needs openapi-spec-validator (the serve-test extra)"
    )
    doc = _get(server.url + "/openapi.json")
    validator.validate(doc)
    assert doc["openapi"] == "3.0.3"
    assert f"/v2/models/{MLR}/versions/{{version}}/infer" in doc["paths"]
