"""Protocol conformance of a model repository server (``--model-repository``), against a
real process: Triton's model configuration and statistics per version with
``tritonclient.http`` and ``tritonclient.grpc`` (statistics count HTTP and gRPC
inference alike), no redirects on the versioned and repository routes, V2 error
statuses and KServe's pydantic models on the versioned routes, and
openapi-spec-validator on ``/openapi.json`` with the repository's routes, with
versions and with no model loaded yet.

The repository holds the two bundled models as versions 1 (three features) and 2 (one
feature) of ``plants`` (policy ``all``), and ``other``; every prediction is compared
with ``Predictor.load`` of the version's own directory.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import requests

from inference import Predictor
from tests.serve.conftest import BUNDLED, free_port, needs_serve
from tests.serve.test_clients import kserve

pytestmark = [needs_serve, pytest.mark.slow]

VERSIONS = {"1": BUNDLED / "plant_richness_mlr", "2": BUNDLED / "plant_richness_lr"}


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    root = tmp_path_factory.mktemp("repo")
    for version, source in VERSIONS.items():
        shutil.copytree(source, root / "plants" / version)
    (root / "plants" / "config.json").write_text(json.dumps({"version_policy": {"all": {}}}))
    shutil.copytree(BUNDLED / "plant_richness_lr", root / "other" / "1")
    return root


@pytest.fixture
def served(start_server, repo):
    grpc_port = free_port()
    srv = start_server(["--model-repository", str(repo), "--grpc-port", str(grpc_port)])
    srv.wait_ready()
    return srv, f"127.0.0.1:{grpc_port}"


def rows(version: str, n: int = 5) -> np.ndarray:
    k = len(Predictor.load(VERSIONS[version]).features)
    return np.random.default_rng(int(version)).uniform(1, 100, size=(n, k)).astype(np.float32)


def test_config_and_statistics_per_version_over_http_and_grpc(served):
    triton_http = pytest.importorskip("tritonclient.http", reason="needs tritonclient[http]")
    triton_grpc = pytest.importorskip("tritonclient.grpc", reason="needs tritonclient[grpc]")
    srv, grpc_address = served
    clients = [
        (triton_http, triton_http.InferenceServerClient(srv.url.removeprefix("http://"))),
        (triton_grpc, triton_grpc.InferenceServerClient(grpc_address)),
    ]
    for module, client in clients:
        for version, source in VERSIONS.items():
            X = rows(version)
            inp = module.InferInput("features", list(X.shape), "FP32")
            inp.set_data_from_numpy(X)
            result = client.infer("plants", [inp], model_version=version)
            want = Predictor.load(source).predict(X)
            np.testing.assert_array_equal(result.as_numpy("prediction"), want)
    for module, client in clients:
        as_json = {"as_json": True} if module is triton_grpc else {}
        for version, source in VERSIONS.items():
            config = client.get_model_config("plants", model_version=version, **as_json)
            config = config.get("config", config)  # gRPC's answer wraps it
            k = len(Predictor.load(source).features)
            assert config["name"] == "plants"
            assert config["version_policy"] == {"all": {}}
            (inp,) = config["input"]
            assert (inp["data_type"], [int(d) for d in inp["dims"]]) == ("TYPE_FP32", [-1, k])
            meta = client.get_model_metadata("plants", model_version=version, **as_json)
            assert [o["name"] for o in config["output"]] == [o["name"] for o in meta["outputs"]]
        stats = client.get_inference_statistics("plants", **as_json)["model_stats"]
        by_version = {s["version"]: s for s in stats}
        assert set(by_version) == {"1", "2"}
        for s in by_version.values():  # one request per version over each protocol
            assert int(s["inference_count"]) == 2 * 5
            assert int(s["inference_stats"]["success"]["count"]) == 2
            assert int(s["inference_stats"]["compute_infer"]["count"]) == 2
        (one,) = client.get_inference_statistics("plants", "2", **as_json)["model_stats"]
        assert one["version"] == "2" and int(one["inference_count"]) == 10
        every = client.get_inference_statistics(**as_json)["model_stats"]
        assert {(s["name"], s["version"]) for s in every} == {
            ("plants", "1"),
            ("plants", "2"),
            ("other", "1"),
        }
    for _, client in clients:
        client.close()


def test_grpc_config_and_statistics_errors(served):
    triton_grpc = pytest.importorskip("tritonclient.grpc", reason="needs tritonclient[grpc]")
    from tritonclient.utils import InferenceServerException

    srv, grpc_address = served
    client = triton_grpc.InferenceServerClient(grpc_address)
    try:
        for call in (client.get_model_config, client.get_inference_statistics):
            with pytest.raises(InferenceServerException, match="no model 'nope'") as caught:
                call("nope")
            assert caught.value.status() == "StatusCode.NOT_FOUND"
        with pytest.raises(InferenceServerException, match="no version '9'") as caught:
            client.get_model_config("plants", "9")
        assert caught.value.status() == "StatusCode.NOT_FOUND"
        assert {"model_configuration", "statistics", "model_repository"} <= set(
            client.get_server_metadata(as_json=True)["extensions"]
        )
    finally:
        client.close()


def test_versioned_and_repository_routes_answer_without_redirects(served):
    srv, _ = served
    with requests.Session() as http:
        for path in (
            "/v2/models/plants/versions/1/",
            "/v2/models/plants/versions/1/ready/",
            "/v2/models/plants/versions/2/config/",
            "/v2/models/plants/versions/2/stats/",
            "/v2/models/stats/",
        ):
            r = http.get(srv.url + path, allow_redirects=False)
            assert r.status_code == 200, (path, r.status_code, r.text)
        r = http.post(srv.url + "/v2/repository/index/", allow_redirects=False)
        assert r.status_code == 200
        assert {(e["name"], e["version"], e["state"]) for e in r.json()} == {
            ("plants", "1", "READY"),
            ("plants", "2", "READY"),
            ("other", "1", "READY"),
        }
        X = rows("1", 3)
        body = {"inputs": [{"name": "x", "shape": [3, 3], "datatype": "FP32", "data": X.tolist()}]}
        r = http.post(
            srv.url + "/v2/models/plants/versions/1/infer/", json=body, allow_redirects=False
        )
        assert r.status_code == 200
        got = np.asarray(r.json()["outputs"][0]["data"], dtype=np.float32)
        np.testing.assert_array_equal(got, Predictor.load(VERSIONS["1"]).predict(X))


def test_versioned_infer_statuses_and_kserve_models(served):
    models = kserve().models
    srv, _ = served
    url = srv.url + "/v2/models/plants/versions/{}/infer"
    X = rows("2", 4)
    with requests.Session() as http:
        body = {
            "inputs": [{"name": "area", "shape": [4], "datatype": "FP64", "data": X[:, 0].tolist()}]
        }
        r = http.post(url.format("2"), json=body)
        answer = models.InferenceResponse.model_validate(r.json())  # id generated
        assert answer.id and answer.model_version == "2"
        want = Predictor.load(VERSIONS["2"]).predict(X)
        np.testing.assert_array_equal(np.asarray(answer.outputs[0].data, np.float32), want)
        r = http.post(url.format("1"), json=body)  # version 1 reads three features
        assert r.status_code == 400 and "expected [n, 3]" in r.json()["error"]
        r = http.post(url.format("9"), json=body)
        assert r.status_code == 404 and "no version '9'" in r.json()["error"]
        r = http.post(url.format("2"), json={**body, "outputs": [{"name": "nope"}]})
        assert r.status_code == 404 and "no output 'nope'" in r.json()["error"]
        ints = {"inputs": [{**body["inputs"][0], "datatype": "UINT8", "data": [1, 2, 300, 4]}]}
        assert http.post(url.format("2"), json=ints).status_code == 400


@pytest.mark.parametrize("loaded", [True, False])
def test_openapi_of_a_repository_is_valid(start_server, repo, loaded):
    validator = pytest.importorskip(
        "openapi_spec_validator", reason="needs openapi-spec-validator (the serve-test extra)"
    )
    args = ["--model-repository", str(repo), "--model-control-mode", "explicit"]
    if loaded:
        args += ["--load-model", "plants"]
    srv = start_server(args)
    srv.wait_ready()
    doc = requests.get(srv.url + "/openapi.json", timeout=30).json()
    validator.validate(doc)
    paths = doc["paths"]
    assert "post" in paths["/v2/repository/index"]
    assert "post" in paths["/v2/repository/models/{name}/load"]
    if loaded:
        infer = paths["/v2/models/plants/versions/{version}/infer"]["post"]
        assert {"400", "404", "503"} <= set(infer["responses"])
        assert "application/octet-stream" in infer["requestBody"]["content"]
    else:  # no model to describe: the routes are there all the same
        assert "post" in paths["/v2/models/{name}/versions/{version}/infer"]
