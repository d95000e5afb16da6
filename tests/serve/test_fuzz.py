"""Hypothesis fuzzing of every POST endpoint: no 5xx, no crash, always a JSON error.

Bodies come in three families: arbitrary JSON; bodies shaped like the OpenAPI
document's request schemas (``/openapi.json``) with hostile values (huge, tiny,
wrong types, wrong names, wrong shapes); and V2 binary requests with random
header lengths and byte counts. Bounded example counts; the server is a real
process, checked alive at the end.
"""

from __future__ import annotations

import json

import pytest

from tests.serve.conftest import needs_serve

pytestmark = [needs_serve, pytest.mark.slow]
requests = pytest.importorskip("requests")
hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

FUZZ = settings(max_examples=60)  # the rest: the suite's profile (tests/conftest.py)
OK = {200, 400, 404, 413, 415, 422}
POSTS = [
    "/predict",
    "/models/plant_richness_mlr/predict",
    "/v2/models/plant_richness_lr/infer",
    "/v2/models/plant_richness_mlr/infer",
    "/invocations",
]
FEATURES = ["area", "latitude", "dist_mainland", "aera", "", "inputs"]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=25,
)
numbers = st.integers(min_value=-(2**66), max_value=2**66) | st.floats(
    allow_nan=False, allow_infinity=False
)
cells = numbers | scalars
record = st.dictionaries(st.sampled_from(FEATURES), cells, max_size=4)
rows = st.lists(st.lists(cells, max_size=4), max_size=4)
inputs = (
    record
    | st.lists(record, max_size=4)
    | rows
    | st.dictionaries(st.sampled_from(FEATURES), st.lists(cells, max_size=4), max_size=4)
)
tensor = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["features", *FEATURES]),
        "shape": st.lists(st.integers(min_value=-2, max_value=6), max_size=3),
        "datatype": st.sampled_from(["FP32", "FP64", "INT64", "UINT8", "BOOL", "BYTES", "FP16"]),
    },
    optional={"data": st.lists(cells, max_size=8) | json_values, "parameters": json_values},
)
shaped = st.one_of(
    inputs,
    st.fixed_dictionaries(
        {"inputs": inputs},
        optional={
            "interval": scalars | st.sampled_from(["prediction", "confidence"]),
            "level": cells,
        },
    ),
    st.fixed_dictionaries(
        {"inputs": st.lists(tensor, max_size=3)},
        optional={"outputs": json_values, "parameters": json_values, "id": json_values},
    ),
    st.dictionaries(
        st.sampled_from(["dataframe_split", "dataframe_records", "instances", "inputs", "params"]),
        json_values | inputs,
        max_size=2,
    ),
    st.fixed_dictionaries(
        {
            "dataframe_split": st.fixed_dictionaries(
                {"columns": st.lists(st.sampled_from(FEATURES)), "data": rows}
            )
        }
    ),
)


@pytest.fixture(scope="module")
def http():
    with requests.Session() as session:
        yield session


def _check(r) -> None:
    assert r.status_code in OK, (r.status_code, r.text[:300])
    if r.status_code != 200:
        body = r.json()
        assert "error" in body or "message" in body
        assert "Traceback" not in r.text


@FUZZ
@given(path=st.sampled_from(POSTS), body=json_values | shaped)
def test_json_bodies(server, http, path, body):
    _check(http.post(server.url + path, data=json.dumps(body), timeout=30))


@FUZZ
@given(
    path=st.sampled_from(POSTS[2:4]),
    header=st.fixed_dictionaries({"inputs": st.lists(tensor, min_size=1, max_size=2)}),
    sizes=st.lists(st.integers(min_value=-1, max_value=64), min_size=1, max_size=2),
    blob=st.binary(max_size=64),
    extra=st.integers(min_value=-10, max_value=10),
)
def test_binary_bodies(server, http, path, header, sizes, blob, extra):
    for spec, size in zip(header["inputs"], sizes, strict=False):
        spec.setdefault("parameters", {})
        if isinstance(spec["parameters"], dict):
            spec["parameters"]["binary_data_size"] = size
    head = json.dumps(header).encode()
    r = http.post(
        server.url + path,
        data=head + blob,
        headers={"Inference-Header-Content-Length": str(len(head) + extra)},
        timeout=30,
    )
    _check(r)


@FUZZ
@given(body=st.binary(max_size=200), ctype=st.sampled_from(["text/csv", "application/json", "x/y"]))
def test_raw_bodies(server, http, body, ctype):
    for path in ("/invocations", "/predict"):
        _check(http.post(server.url + path, data=body, headers={"Content-Type": ctype}, timeout=30))


def test_server_survived(server, http):
    assert server.proc.poll() is None
    assert http.get(server.url + "/v2/health/ready").status_code == 200
    metrics = http.get(server.url + "/metrics").text
    assert 'status="500"' not in metrics
