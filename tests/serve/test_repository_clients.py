"""``tritonclient.http`` and ``tritonclient.grpc``, unchanged, against a real server of a
model repository: the index, load, unload, readiness of a version, and inference on a
named version with binary and JSON data (over gRPC: raw contents, as tritonclient
sends them, and typed contents through the generated messages).

The repository holds the two bundled models as versions 1 (three features) and 2
(one feature) of one model, with the policy ``all``; every answer is compared with
``Predictor.load`` of the version's own directory.
"""

from __future__ import annotations

import json
import shutil
import time

import numpy as np
import pytest

from inference import Predictor
from tests.serve.conftest import BUNDLED, free_port, needs_serve

pytestmark = [needs_serve, pytest.mark.slow]
pytest.importorskip("grpc")
triton_http = pytest.importorskip("tritonclient.http")
triton_grpc = pytest.importorskip("tritonclient.grpc")
from tritonclient.utils import InferenceServerException  # noqa: E402

VERSIONS = {"1": BUNDLED / "plant_richness_mlr", "2": BUNDLED / "plant_richness_lr"}
TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    root = tmp_path_factory.mktemp("repo")
    for version, source in VERSIONS.items():
        shutil.copytree(source, root / "plants" / version)
    (root / "plants" / "config.json").write_text(json.dumps({"version_policy": {"all": {}}}))
    shutil.copytree(BUNDLED / "plant_richness_lr", root / "other" / "1")
    return root


@pytest.fixture
def served(start_server, repo, tmp_path):
    grpc_port = free_port()
    token = tmp_path / "token"
    token.write_text(TOKEN)
    args = ["--model-repository", str(repo), "--grpc-port", str(grpc_port)]
    args += ["--model-control-mode", "explicit", "--load-model", "plants"]
    srv = start_server([*args, "--token-file", str(token)])
    srv.wait_ready()
    return srv, f"127.0.0.1:{grpc_port}"


def rows(version: str, n: int = 4) -> np.ndarray:
    k = len(Predictor.load(VERSIONS[version]).features)
    return np.random.default_rng(int(version)).uniform(1, 100, size=(n, k)).astype(np.float32)


def clients(srv, grpc_address):
    auth = {"authorization": f"Bearer {TOKEN}"}
    return [
        (triton_http, triton_http.InferenceServerClient(srv.url.removeprefix("http://")), auth),
        (triton_grpc, triton_grpc.InferenceServerClient(grpc_address), auth),
    ]


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_tritonclient_drives_the_repository(served, protocol):
    srv, grpc_address = served
    module, client, auth = clients(srv, grpc_address)[protocol == "grpc"]
    ready = client.is_server_ready(headers=auth)
    assert ready

    def index() -> dict[tuple[str, str], tuple[str, str]]:
        got = client.get_model_repository_index(headers=auth)
        entries = got if protocol == "http" else json_of(got)
        return {(e["name"], e["version"]): (e["state"], e.get("reason", "")) for e in entries}

    assert index() == {
        ("plants", "1"): ("READY", ""),
        ("plants", "2"): ("READY", ""),
        ("other", "1"): ("UNAVAILABLE", "not loaded"),
    }
    assert client.is_model_ready("plants", "2", headers=auth)
    assert not client.is_model_ready("other", headers=auth)
    client.load_model("other", headers=auth)
    assert client.is_model_ready("other", "1", headers=auth)
    client.unload_model("plants", headers=auth)
    assert not client.is_model_ready("plants", "2", headers=auth)
    assert index()[("plants", "2")] == ("UNAVAILABLE", "unloaded")
    client.load_model("plants", headers=auth)
    assert client.is_model_ready("plants", "2", headers=auth)
    assert set(
        client.get_model_metadata("plants", headers=auth, **as_json(protocol))["versions"]
    ) == {
        "1",
        "2",
    }
    with pytest.raises(InferenceServerException):
        client.get_model_repository_index()  # no token


def json_of(message) -> list[dict]:
    from google.protobuf.json_format import MessageToDict

    return MessageToDict(message, preserving_proto_field_name=True).get("models", [])


def as_json(protocol: str) -> dict:
    return {} if protocol == "http" else {"as_json": True}


@pytest.mark.parametrize("version", ["1", "2"])
@pytest.mark.parametrize(
    ("protocol", "binary"),
    # tritonclient.grpc sends raw contents only; typed contents: the next test
    [("http", True), ("http", False), ("grpc", True)],
)
def test_tritonclient_infers_on_a_version(served, protocol, version, binary):
    srv, grpc_address = served
    module, client, auth = clients(srv, grpc_address)[protocol == "grpc"]
    X = rows(version)
    tensor = module.InferInput("features", list(X.shape), "FP32")
    if protocol == "http":
        tensor.set_data_from_numpy(X, binary_data=binary)
    else:
        tensor.set_data_from_numpy(X)
    result = client.infer("plants", [tensor], model_version=version, headers=auth)
    expected = Predictor.load(VERSIONS[version]).predict(X)
    assert np.array_equal(result.as_numpy("prediction"), expected)
    response = result.get_response(**as_json(protocol))
    assert response["model_version"] == version and response["model_name"] == "plants"


def test_grpc_typed_contents_and_errors(served):
    """The generated messages over a plain channel: typed contents per feature, then
    the errors a client gets (wrong shape, unknown version, no token)."""
    import grpc

    from inference.serve.proto import grpc_service_pb2 as pb

    srv, grpc_address = served
    X = rows("1").astype(np.float64)
    features = Predictor.load(VERSIONS["1"]).features
    request = pb.ModelInferRequest(model_name="plants", model_version="1", id="req-7")
    for j, name in enumerate(features):
        tensor = request.inputs.add(name=name, datatype="FP64", shape=[len(X)])
        tensor.contents.fp64_contents.extend(X[:, j].tolist())
    metadata = (("authorization", f"Bearer {TOKEN}"),)
    with grpc.insecure_channel(grpc_address) as channel:
        infer = channel.unary_unary(
            "/inference.GRPCInferenceService/ModelInfer",
            request_serializer=pb.ModelInferRequest.SerializeToString,
            response_deserializer=pb.ModelInferResponse.FromString,
        )
        response = infer(request, metadata=metadata, timeout=30)
        y = np.frombuffer(response.raw_output_contents[0], dtype="<f4")
        assert response.id == "req-7" and list(response.outputs[0].shape) == [len(X)]
        predictor = Predictor.load(VERSIONS["1"])
        assert np.array_equal(y, predictor.predict(X))
        request.parameters["interval"].string_param = "prediction"
        request.parameters["level"].double_param = 0.9
        response = infer(request, metadata=metadata, timeout=30)
        got = {
            o.name: np.frombuffer(raw, dtype="<f8" if o.datatype == "FP64" else "<f4")
            for o, raw in zip(response.outputs, response.raw_output_contents, strict=True)
        }
        want = predictor.predict(X, interval="prediction", level=0.9)
        assert np.array_equal(got["prediction"], want.prediction)
        assert np.array_equal(got["lower"], want.lower) and np.array_equal(got["upper"], want.upper)
        bad = pb.ModelInferRequest(model_name="plants", model_version="1")
        bad.inputs.add(name="features", datatype="FP32", shape=[2, 5])
        bad.raw_input_contents.append(b"\0" * 40)
        for req, code, text in [
            (bad, grpc.StatusCode.INVALID_ARGUMENT, "X has 5 features"),
            (
                pb.ModelInferRequest(model_name="plants", model_version="9"),
                grpc.StatusCode.NOT_FOUND,
                "no version '9'",
            ),
        ]:
            with pytest.raises(grpc.RpcError) as err:
                infer(req, metadata=metadata, timeout=30)
            assert err.value.code() == code and text in err.value.details()
        with pytest.raises(grpc.RpcError) as err:
            infer(request, timeout=30)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    deadline = time.monotonic() + 10  # access lines are written every 50 ms
    while '"grpc_status":"UNAUTHENTICATED"' not in srv.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    lines = [json.loads(line) for line in srv.log().splitlines() if '"GRPC"' in line]
    assert {(x["status"], x["grpc_status"]) for x in lines if x["endpoint"] == "grpc_infer"} == {
        (200, "OK"),
        (422, "INVALID_ARGUMENT"),
        (404, "NOT_FOUND"),
        (401, "UNAUTHENTICATED"),
    }
    ok = next(x for x in lines if x["status"] == 200 and x["endpoint"] == "grpc_infer")
    assert ok["model"] == "plants" and ok["version"] == "1" and ok["rows"] == len(X)
    import requests

    metrics = requests.get(srv.url + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).text
    assert 'linreg_requests_total{endpoint="grpc_infer",method="GRPC",status="200"}' in metrics
    assert 'linreg_request_errors_total{endpoint="grpc_infer",status="401"}' in metrics


def test_the_generated_messages_and_tritonclient_load_in_one_process():
    import subprocess
    import sys

    code = (
        "import inference.serve.proto.grpc_service_pb2 as ours\n"
        "import tritonclient.grpc.service_pb2 as theirs\n"
        "assert ours.DESCRIPTOR.serialized_pb == theirs.DESCRIPTOR.serialized_pb\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
