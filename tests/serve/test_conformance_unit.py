"""The parts of protocol conformance (issue 27) that need no server process:
decompression, JSON with non-finite tokens, datatypes of V2 JSON data, MLflow's
error codes, the statistics' arithmetic and the OpenAPI document (built from the
routes of an application made in this process, checked by openapi-spec-validator).

References: zlib and gzip (compression), Python's json module (NaN tokens), numpy's
own casts and limits (datatypes), MLflow's ErrorCode enum, the validator.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import math
import time
import zlib

import numpy as np
import pytest

from tests.serve.conftest import BUNDLED, needs_serve

pytestmark = needs_serve


def _error(call, *args, **kwargs):
    from inference.serve.responses import ApiError

    with pytest.raises(ApiError) as caught:
        call(*args, **kwargs)
    return caught.value


# --- compression ----------------------------------------------------------------
BODY = json.dumps({"area": list(np.linspace(0, 50, 2000))}).encode()


@pytest.mark.parametrize(
    ("coding", "compress"),
    [
        ("gzip", gzip.compress),
        ("x-gzip", gzip.compress),
        ("deflate", zlib.compress),  # HTTP's deflate: the zlib format
        ("deflate", lambda b: zlib.compress(b)[2:-4]),  # raw deflate, as some clients send
        ("gzip", lambda b: gzip.compress(b[:100]) + gzip.compress(b[100:])),  # two members
    ],
)
def test_decompress_gives_the_original_bytes(coding, compress):
    from inference.serve.body import content_codings, decompress

    codings = content_codings(f"{coding}, identity")
    assert bytes(decompress(compress(BODY), codings, limit=len(BODY), flag="f")) == BODY


def test_a_decompression_bomb_is_413_without_inflating_it():
    from inference.serve.body import decompress

    bomb = gzip.compress(b"0" * (64 << 20))  # 64 MiB of zeros in about 64 KiB
    assert len(bomb) < 100_000
    error = _error(decompress, bomb, ["gzip"], limit=1 << 20, flag="--max-body-bytes")
    assert error.status == 413 and "once decompressed (--max-body-bytes)" in error.message


@pytest.mark.parametrize(
    ("data", "coding", "words"),
    [
        (b"not gzip", "gzip", "not valid gzip data"),
        (gzip.compress(BODY)[:-10], "gzip", "truncated"),
        (zlib.compress(BODY) + b"junk", "deflate", "4 bytes after the end"),
    ],
)
def test_corrupt_compressed_bodies_are_400(data, coding, words):
    from inference.serve.body import decompress

    error = _error(decompress, data, [coding], limit=1 << 20, flag="f")
    assert error.status == 400 and words in error.message


@pytest.mark.parametrize("header", ["br", "zstd", "gzip, compress"])
def test_other_codings_are_415(header):
    from inference.serve.body import content_codings

    error = _error(content_codings, header)
    assert error.status == 415 and repr(header) in error.message


# --- JSON with NaN and Infinity ---------------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        '{"a": [1.5, NaN, 2]}',
        "[Infinity, -Infinity, 0.25]",
        '{"dataframe_split": {"columns": ["x"], "data": [[NaN], [1e3]]}}',
    ],
)
def test_non_finite_tokens_parse_as_python_json_parses_them(text):
    from inference.serve.responses import loads

    got, want = loads(text.encode()), json.loads(text)
    assert json.dumps(got) == json.dumps(want)  # NaN != NaN: compare the written form


@pytest.mark.parametrize("text", ['{"a": "NaN"', "[NaN", '{"NaN": nope}', "NaNa"])
def test_invalid_json_with_such_a_token_is_still_400(text):
    from inference.serve.responses import loads

    error = _error(loads, text.encode())
    assert error.status == 400 and "not valid JSON" in error.message


# --- MLflow's error codes ------------------------------------------------------
@pytest.mark.skipif(importlib.util.find_spec("mlflow") is None, reason="needs mlflow")
def test_mlflow_error_codes_are_mlflows_own_names_of_the_same_class():
    from mlflow.exceptions import ERROR_CODE_TO_HTTP_STATUS
    from mlflow.protos.databricks_pb2 import ErrorCode

    from inference.serve.responses import MLFLOW_ERROR_CODES, mlflow_code

    for status in [*MLFLOW_ERROR_CODES, 402, 418, 500, 502]:
        code = mlflow_code(status)
        assert ErrorCode.Name(ErrorCode.Value(code)) == code
        theirs = ERROR_CODE_TO_HTTP_STATUS.get(code)
        assert theirs is not None and theirs // 100 == status // 100, (status, code, theirs)


# --- datatypes of V2 JSON data ---------------------------------------------------
def _read(datatype: str, data: list, shape: list[int] | None = None) -> np.ndarray:
    from inference.serve.tensors import read_tensor

    spec = {"name": "x", "datatype": datatype, "shape": shape or [len(data), 1], "data": [*data]}
    arr, _ = read_tensor(spec, 0, memoryview(b""), 0, ["a"], 1000)  # empties spec["data"]
    return arr


@pytest.mark.parametrize(
    ("datatype", "data"),
    [
        ("INT64", [2, 40, -100]),
        ("INT8", [-128, 127]),
        ("UINT8", [0, 255.0]),
        ("UINT64", [2**64 - 1]),
        ("INT32", [3.0, -7.0]),
        ("FP16", [0.1, 65504.0]),
        ("FP32", [0.1, 3.4e38]),
        ("FP64", [0.1, 1e300]),
    ],
)
def test_json_data_becomes_the_declared_datatype(datatype, data):
    from inference.serve.tensors import DATATYPES

    got = _read(datatype, data)
    want = np.asarray(data).astype(DATATYPES[datatype]).reshape(-1, 1)
    assert got.dtype == DATATYPES[datatype]
    np.testing.assert_array_equal(got, want)
    # the values are exactly representable, or (floats) rounded as numpy rounds them
    assert all(math.isfinite(v) for v in got.ravel().astype(np.float64))


@pytest.mark.parametrize(
    ("datatype", "data", "words"),
    [
        ("INT64", [2.5, 40, 100], "2.5 at index 0 is not an integer"),
        ("UINT8", [1, 300], "300 at index 1 is out of the range of UINT8 [0, 255]"),
        ("UINT8", [-1], "out of the range of UINT8"),
        ("INT8", [128], "out of the range of INT8 [-128, 127]"),
        ("INT64", [2.0**63], "out of the range of INT64"),
        ("INT32", [float("nan")], "is not an integer"),
        ("FP16", [70000.0], "beyond the range of FP16"),
        ("FP32", [1e300], "beyond the range of FP32"),
        ("FP32", [1.0, True], "a boolean at index 1"),
        ("FP32", [1.0, None], "a missing value (null) at index 1"),
        ("FP32", ["1.0"], "'1.0' at index 0 is not a number"),
    ],
)
def test_json_data_the_datatype_cannot_hold_is_400(datatype, data, words):
    error = _error(_read, datatype, data)
    assert error.status == 400 and words in error.message and "input 'x'" in error.message


# --- statistics -----------------------------------------------------------------------
class _Model:
    name, version = "m", "v1"


def _timing(rows: int, run_ns: int = -1):
    from inference.serve.metrics import Timing

    t = Timing(_Model())  # type: ignore[arg-type]
    t.rows, t.parsed_at = rows, t.start + 1_000
    t.ran_at, t.run_ns = t.parsed_at + 3_000, run_ns
    t.answered_at = t.ran_at + 500
    return t


def test_statistics_add_up():
    from inference.serve.metrics import Metrics, Timing

    m = Metrics()
    m.finish(_timing(5), 200, 10_000)  # a run of its own: one execution of 5 rows
    m.finish(_timing(2, run_ns=1_000), 200, 20_000)  # waited 2 µs for a micro-batch
    m.finish(Timing(_Model()), 400, 2_000)  # type: ignore[arg-type]  # failed early
    stats = m.model_stats("m", "v1").as_json("m", "v1")
    inf = stats["inference_stats"]
    assert stats["inference_count"] == 7 and stats["execution_count"] == 1
    assert inf["success"] == {"count": 2, "ns": 30_000}
    assert inf["fail"] == {"count": 1, "ns": 2_000}
    assert inf["compute_input"] == {"count": 2, "ns": 2_000}
    assert inf["compute_infer"] == {"count": 2, "ns": 3_000 + 1_000}
    assert inf["queue"] == {"count": 2, "ns": 2_000}
    assert inf["compute_output"] == {"count": 2, "ns": 1_000}
    runs = {"count": 1, "ns": 3_000}
    assert stats["batch_stats"] == [{"batch_size": 5, "compute_infer": runs}]
    assert abs(stats["last_inference"] - time.time() * 1000) < 60_000
    m.observe_run(_Model(), 2, 1_000)  # type: ignore[arg-type]  # the micro-batch's run
    assert m.model_stats("m", "v1").execution_count == 2


# --- the OpenAPI document ---------------------------------------------------------
@pytest.fixture(scope="module")
def app():
    from inference.serve.app import create_app
    from inference.serve.settings import Settings

    dirs = [str(BUNDLED / "plant_richness_lr"), str(BUNDLED / "plant_richness_mlr")]
    return create_app(Settings(model_dirs=dirs, reload_interval=0))


def _validate(doc: dict) -> None:
    validator = pytest.importorskip(
        "openapi_spec_validator", reason="needs openapi-spec-validator (the serve-test extra)"
    )
    validator.validate(json.loads(json.dumps(doc)))  # as a client reads it


@pytest.mark.parametrize(("token", "strict"), [(False, False), (True, True)])
def test_openapi_document_is_valid(app, token, strict):
    from inference.serve.openapi import build_document

    doc = build_document(app.registry.models, app.app.routes, token=token, strict=strict)
    assert doc["openapi"] == "3.0.3"
    _validate(doc)


def test_openapi_document_has_every_route_content_type_and_answer(app):
    from starlette.routing import Route

    from inference.serve.openapi import build_document

    doc = build_document(app.registry.models, app.app.routes)
    paths = doc["paths"]
    names = list(app.registry.models)
    for route in app.app.routes:
        if not isinstance(route, Route):
            continue
        template = route.path.replace(":path}", "}")
        expanded = [template.replace("{name}", n) for n in names]
        assert template in paths or all(p in paths for p in expanded), route.path
        item = paths[template] if template in paths else paths[expanded[0]]
        for method in (route.methods or set()) - {"HEAD"}:
            assert method.lower() in item, (route.path, method)
    invocations = paths["/invocations"]["post"]
    assert set(invocations["requestBody"]["content"]) == {
        "application/json",
        "text/csv",
        "application/vnd.apache.parquet",
    }
    infer = paths["/v2/models/plant_richness_mlr/infer"]["post"]
    assert "application/octet-stream" in infer["requestBody"]["content"]
    assert "application/octet-stream" in infer["responses"]["200"]["content"]
    assert "/v2/models/plant_richness_mlr/versions/{version}/infer" in paths
    # each operation lists its own answers, not one list for all
    assert set(paths["/v2/health/live"]["get"]["responses"]) == {"200"}
    assert "503" in paths["/v2/health/ready"]["get"]["responses"]
    assert {"400", "404", "413", "415"} <= set(infer["responses"])
    assert set(paths["/v2/logging"]["get"]["responses"]) == {"501"}
    mlflow_error = invocations["responses"]["400"]["content"]["application/json"]["schema"]
    assert mlflow_error == {"$ref": "#/components/schemas/MlflowError"}


def test_routes_added_later_are_in_the_document(app):
    """Routes another module adds (versioned routes, say) appear without a change to the
    document's code, and the document stays valid."""
    from starlette.responses import Response
    from starlette.routing import Route

    from inference.serve.openapi import build_document

    async def endpoint(request):
        """Unload a model version."""
        return Response(b"")

    extra = [
        Route("/v2/models/{name}/versions/{version}/unload", endpoint, methods=["POST"]),
        Route("/v2/models/{name}/versions/{version}/config", endpoint, methods=["GET"]),
    ]
    doc = build_document(app.registry.models, [*extra, *app.app.routes])
    op = doc["paths"]["/v2/models/{name}/versions/{version}/unload"]["post"]
    assert op["summary"] == "Unload a model version."
    assert [p["name"] for p in op["parameters"]] == ["name", "version"]
    assert "/v2/models/plant_richness_lr/versions/{version}/config" in doc["paths"]
    _validate(doc)


def test_a_model_fitted_on_raw_columns_loads():
    """A design model (text factors: penguins) was refused at load before the server read
    raw columns; now it loads, with one V2 input per raw column (tests/serve/
    test_design_unit.py and test_design_serving.py test how it is served)."""
    from inference.predictor import Predictor
    from inference.serve.registry import load_version
    from inference.serve.v2 import model_metadata

    path = BUNDLED / "penguins"
    loaded = load_version(path, name="penguins", version=None, threads=1)
    assert loaded.predictor.design is not None
    names = [t["name"] for t in model_metadata(loaded)["inputs"]]
    assert names == Predictor.load(path).features
