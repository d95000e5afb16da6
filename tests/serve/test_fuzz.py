"""Hypothesis fuzzing of every POST endpoint: no 5xx, no crash, always a JSON error.

Bodies come in these families: arbitrary JSON; bodies shaped like the OpenAPI
document's request schemas (``/openapi.json``) with hostile values (huge, tiny,
wrong types, wrong names, wrong shapes: zero-sized and huge dimensions, names and
requested outputs that are not strings); V2 binary requests with random header
lengths and byte counts; CSV bodies with long fields (past the ``csv`` module's
128 KiB), quotes, line breaks, NUL and bytes that are not UTF-8; and bodies above
64 KiB (checked before parsing and parsed on a worker thread). Bounded example
counts; the server is a real process, checked alive at the end.
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
#: dimensions: small, zero, and past every index type (2**62 held a 500 with a size of 0)
dims = st.integers(min_value=-2, max_value=6) | st.sampled_from([0, 2**31, 2**62, 2**63, 2**64])
names = st.sampled_from(["features", *FEATURES]) | json_values
tensor = st.fixed_dictionaries(
    {
        "name": names,
        "shape": st.lists(dims, max_size=3),
        "datatype": st.sampled_from(["FP32", "FP64", "INT64", "UINT8", "BOOL", "BYTES", "FP16"]),
    },
    optional={
        "data": st.lists(cells, max_size=8) | st.just([]) | json_values,
        "parameters": json_values,
    },
)
outputs = st.lists(
    st.fixed_dictionaries(
        {"name": st.sampled_from(["prediction", "lower", "upper"]) | json_values},
        optional={"parameters": json_values},
    ),
    max_size=3,
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
        optional={
            "outputs": outputs | json_values,
            "parameters": json_values,
            "id": json_values,
        },
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


#: CSV cells: numbers, junk, and fields around the csv module's limit of 131,072
csv_cells = (
    numbers.map(repr)
    | st.sampled_from(["", " ", "x", '"', '""', '"1"', "\x00", "\r", "\n", "1,2", "é"])
    | st.sampled_from([1, 1000, 131_072, 131_073, 300_000]).map(lambda n: "1" * n)
)


@FUZZ
@given(
    header=st.lists(st.sampled_from(FEATURES) | st.text(max_size=4), min_size=1, max_size=4),
    rows=st.lists(st.lists(csv_cells, max_size=4), max_size=4),
    end=st.sampled_from(["\n", "\r\n", "\r", ""]),
    tail=st.binary(max_size=4),
)
def test_csv_bodies(server, http, header, rows, end, tail):
    text = end.join(",".join(r) for r in [header, *rows])
    r = http.post(
        server.url + "/invocations?model=plant_richness_mlr",
        data=text.encode() + tail,
        headers={"Content-Type": "text/csv"},
        timeout=30,
    )
    _check(r)


MLR = ["area", "latitude", "dist_mainland"]
LARGE = {
    "rows": "/models/plant_richness_mlr/predict",
    "records": "/models/plant_richness_mlr/predict",
    "columns": "/models/plant_richness_mlr/predict",
    "split": "/invocations?model=plant_richness_mlr",
    "mlflow records": "/invocations?model=plant_richness_mlr",
    "instances": "/invocations?model=plant_richness_mlr",
    "v2 flat": "/v2/models/plant_richness_mlr/infer",
    "v2 nested": "/v2/models/plant_richness_mlr/infer",
    "csv": "/invocations?model=plant_richness_mlr",
}


def _large_body(fmt: str, X: list, pad: str) -> bytes:
    records = [dict(zip(MLR, r, strict=False)) for r in X]
    columns = {f: [r[j] if j < len(r) else 0 for r in X] for j, f in enumerate(MLR)}
    v2 = {"name": "features", "datatype": "FP64", "shape": [len(X), 3]}
    payload = {
        "rows": {"inputs": X},
        "records": records,
        "columns": columns,
        "split": {"dataframe_split": {"columns": MLR, "data": X}, "params": {"pad": pad}},
        "mlflow records": {"dataframe_records": records},
        "instances": {"instances": X, "params": {"pad": pad}},
        "v2 flat": {"inputs": [{**v2, "data": [v for r in X for v in r]}], "id": pad},
        "v2 nested": {"inputs": [{**v2, "data": X}], "id": pad},
    }.get(fmt)
    if payload is None:
        lines = [",".join(MLR), *(",".join(map(str, r)) for r in X)]
        return ("\n".join(lines) + "\n").encode()
    return json.dumps(payload).encode()


@settings(max_examples=30)
@given(
    fmt=st.sampled_from(list(LARGE)),
    n=st.integers(min_value=3_000, max_value=120_000),
    damage=st.sampled_from([None, "cell", "name", "ragged", "structure in a string"]),
    at=st.floats(min_value=0, max_value=1),
)
def test_large_bodies(server, http, fmt, n, damage, at):
    """Bodies above 64 KiB (checked before they are parsed, parsed on a worker
    thread), on either side of --max-rows (50,000) and --max-body-bytes (2,000,000),
    maybe damaged at one row: more rows than the limit is always 413, an undamaged
    body within both limits is always scored, row for row."""
    X: list = [[i % 7 + 0.5, 41.5, 120.25] for i in range(n)]
    i = min(int(at * n), n - 1)
    pad = ""
    if damage == "cell":
        X[i] = [1.0, "x", 2.0]
    elif damage == "ragged":
        X[i] = [1.0, 2.0]
    elif damage == "structure in a string":
        pad = '[[{,:"' * 2_000
    data = _large_body(fmt, X, pad)
    if damage == "name":
        data = data.replace(b"latitude", b"lattitude", 1)
    ctype = "text/csv" if fmt == "csv" else "application/json"
    r = http.post(server.url + LARGE[fmt], data=data, headers={"Content-Type": ctype}, timeout=60)
    _check(r)
    if n > 50_000:
        assert r.status_code == 413, r.text[:300]
    elif damage in (None, "structure in a string") and len(data) <= 2_000_000:
        assert r.status_code == 200, r.text[:300]
        answer = r.json()
        predictions = answer["outputs"][0]["data"] if "outputs" in answer else answer["predictions"]
        assert len(predictions) == n


def test_server_survived(server, http):
    assert server.proc.poll() is None
    assert http.get(server.url + "/v2/health/ready").status_code == 200
    metrics = http.get(server.url + "/metrics").text
    assert 'status="500"' not in metrics
