"""Serving a model fitted on raw columns (the bundled penguins: text factors species,
island, sex and three numbers), in this process: Triton's serialized BYTES (against
tritonclient's own serializer and a hand-written encoding), V2 requests in JSON and
binary, MLflow and /predict bodies, the errors of each, micro-batching of raw columns,
the OpenAPI document (openapi-spec-validator) and the model page's HTML.

Predictions are compared with ``Predictor.predict`` of a pandas DataFrame (the
Predictor's own tests compare it with statsmodels; tests/serve/test_design_serving.py
compares a served model with statsmodels directly).
"""

from __future__ import annotations

import asyncio
import json
import struct

import numpy as np
import pytest

from tests.serve.conftest import BUNDLED, needs_serve

pytestmark = needs_serve
pd = pytest.importorskip("pandas")

ROWS = {
    "species": ["Adelie", "Gentoo", "Chinstrap", "Gentoo"],
    "island": ["Torgersen", "Biscoe", "Dream", "Biscoe"],
    "bill_length_mm": [39.1, 47.5, 49.0, 50.2],
    "bill_depth_mm": [18.7, 15.0, 18.5, 14.3],
    "flipper_length_mm": [181.0, 215.0, 195.0, 220.0],
    "sex": ["male", "female", "male", "female"],
}


def _bytes(values: list[str]) -> bytes:
    """Triton's BYTES layout, written here: a uint32 little-endian length, the bytes."""
    out = b""
    for v in values:
        raw = v.encode()
        out += struct.pack("<I", len(raw)) + raw
    return out


@pytest.fixture(scope="module")
def predictor():
    from inference import Predictor

    return Predictor.load(BUNDLED / "penguins")


@pytest.fixture(scope="module")
def expected(predictor):
    return predictor.predict(pd.DataFrame(ROWS))


@pytest.fixture(scope="module")
def app():
    from inference.serve.app import create_app
    from inference.serve.settings import Settings

    dirs = [str(BUNDLED / "penguins"), str(BUNDLED / "plant_richness_mlr")]
    return create_app(Settings(model_dirs=dirs, reload_interval=0))


@pytest.fixture(scope="module")
def model(app):
    return app.registry.get("penguins")


def _error(call, *args, **kwargs):
    from inference.serve.responses import ApiError

    with pytest.raises(ApiError) as caught:
        call(*args, **kwargs)
    return caught.value


# --- BYTES ---------------------------------------------------------------------------
def test_bytes_elements_read_what_tritonclient_writes():
    from inference.serve.design_tensors import bytes_elements

    values = ["Adelie", "", "Gentoo", "été", "x" * 300]
    assert bytes_elements(_bytes(values), 5, "in").tolist() == values
    utils = pytest.importorskip("tritonclient.utils", reason="needs tritonclient")
    serialized = utils.serialize_byte_tensor(np.array(values, dtype=np.object_))
    assert bytes_elements(serialized.item(), 5, "in").tolist() == values  # a 0-d array of bytes


@pytest.mark.parametrize(
    ("raw", "count", "message"),
    [
        (_bytes(["ab"])[:-1], 1, "element 0 says 2 bytes, 1 are left"),
        (_bytes(["ab"]), 2, "end before element 1 of 2"),
        (_bytes(["ab"]) + b"\0", 1, "1 bytes after the 1 elements"),
        (struct.pack("<I", 2) + b"\xff\xfe", 1, "element 0 is not UTF-8"),
    ],
)
def test_bytes_elements_refuse_what_does_not_add_up(raw, count, message):
    from inference.serve.design_tensors import bytes_elements

    error = _error(bytes_elements, raw, count, "input 'species'")
    assert error.status == 400 and message in error.message


# --- V2 ------------------------------------------------------------------------------
def _json_inputs(rows=ROWS):
    return [
        {
            "name": name,
            "shape": [len(values)],
            "datatype": "BYTES" if isinstance(values[0], str) else "FP64",
            "data": values,
        }
        for name, values in rows.items()
    ]


def _binary_body(rows=ROWS) -> tuple[bytes, str]:
    """A V2 request with every input as binary data (Triton's extension)."""
    specs, blobs = [], []
    for name, values in rows.items():
        if isinstance(values[0], str):
            raw, datatype = _bytes(values), "BYTES"
        else:
            raw, datatype = np.asarray(values, "<f4").tobytes(), "FP32"
        specs.append(
            {
                "name": name,
                "shape": [len(values)],
                "datatype": datatype,
                "parameters": {"binary_data_size": len(raw)},
            }
        )
        blobs.append(raw)
    header = json.dumps({"inputs": specs}).encode()
    return header + b"".join(blobs), str(len(header))


def test_v2_json_and_binary_bytes_give_the_predictors_predictions(model, predictor, expected):
    from inference.serve.v2 import parse_request

    X, _ = parse_request(json.dumps({"inputs": _json_inputs()}).encode(), None, model, 100)
    np.testing.assert_array_equal(predictor.predict(X), expected)
    body, length = _binary_body()
    X, _ = parse_request(body, length, model, 100)
    assert X.shape == (4, 6) and X["species"].tolist() == ROWS["species"]
    np.testing.assert_array_equal(predictor.predict(X), expected)
    nested = _json_inputs()
    for tensor in nested:  # [n, 1], data nested by rows
        tensor["shape"] = [4, 1]
        tensor["data"] = [[v] for v in tensor["data"]]
    X, _ = parse_request(json.dumps({"inputs": nested}).encode(), None, model, 100)
    np.testing.assert_array_equal(predictor.predict(X), expected)


def _with(name: str, **changes):
    inputs = _json_inputs()
    for tensor in inputs:
        if tensor["name"] == name:
            tensor.update(changes)
    return inputs


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        (_with("species", datatype="FP32", data=[1, 2, 3, 4]), "is a factor"),
        (_with("bill_length_mm", datatype="BYTES", data=["1"] * 4), "numeric in the model"),
        (_json_inputs()[:5], "missing input(s) ['sex']"),
        ([*_json_inputs(), _json_inputs()[0]], "given twice"),
        (
            [*_json_inputs(), {"name": "body", "shape": [4], "datatype": "FP32", "data": [1] * 4}],
            "no input 'body'",
        ),
        (_with("sex", shape=[3], data=["male"] * 3), "different lengths"),
        (_with("species", shape=[2, 2], data=["Adelie"] * 4), "one tensor per column"),
        (_with("species", data=["Adelie", 3, "Gentoo", "Gentoo"]), "3 at index 1 is not a string"),
        (
            _with("bill_depth_mm", datatype="INT64", data=[18, None, 18, 14]),
            "datatype INT64 cannot hold one",
        ),
        (
            [{"name": "features", "shape": [4, 6], "datatype": "FP32", "data": [1.0] * 24}],
            "one tensor per column",
        ),
    ],
)
def test_v2_requests_that_do_not_fit_the_raw_columns_are_400(model, inputs, message):
    from inference.serve.v2 import parse_request

    error = _error(parse_request, json.dumps({"inputs": inputs}).encode(), None, model, 100)
    assert error.status == 400 and message in error.message


def test_v2_null_number_is_a_missing_value_the_predictor_names(model, predictor):
    from inference.errors import InputError
    from inference.serve.v2 import parse_request

    inputs = _with("bill_length_mm", data=[39.1, None, 49.0, 50.2])
    X, _ = parse_request(json.dumps({"inputs": inputs}).encode(), None, model, 100)
    assert np.isnan(X["bill_length_mm"][1])
    with pytest.raises(InputError, match=r"row 2, column 'bill_length_mm': a missing value"):
        predictor.predict(X)


def test_metadata_and_config_list_one_input_per_raw_column(app, model, predictor):
    from inference.serve.triton import config_of
    from inference.serve.v2 import model_metadata

    meta = model_metadata(model)
    assert [(t["name"], t["datatype"], t["shape"]) for t in meta["inputs"]] == [
        (s.name, "BYTES" if s.kind == "factor" else "FP32", [-1]) for s in predictor.design.inputs
    ]
    assert meta["parameters"]["levels"]["island"] == ["Biscoe", "Dream", "Torgersen"]
    config = config_of(app, model)
    assert [(t["name"], t["data_type"], t["dims"]) for t in config["input"]] == [
        (s.name, "TYPE_STRING" if s.kind == "factor" else "TYPE_FP32", [-1])
        for s in predictor.design.inputs
    ]


# --- MLflow and /predict ---------------------------------------------------------------
def test_mlflow_bodies_with_text_columns(model, predictor, expected):
    from inference.serve.mlflow import decode

    records = [dict(zip(ROWS, row, strict=True)) for row in zip(*ROWS.values(), strict=True)]
    split = {"columns": [*ROWS, "extra"], "data": [[*r.values(), 0] for r in records]}
    csv = pd.DataFrame(ROWS).to_csv(index=False).encode()
    bodies = [
        (json.dumps({"dataframe_split": split}).encode(), "application/json"),
        (json.dumps({"dataframe_records": records}).encode(), "application/json"),
        (json.dumps({"inputs": ROWS}).encode(), "application/json"),
        (json.dumps({"instances": records}).encode(), "application/json"),
        (csv, "text/csv"),
    ]
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    sink = pa.BufferOutputStream()
    table = pa.table(ROWS)
    table = table.set_column(0, "species", table.column("species").dictionary_encode())
    pq.write_table(table, sink)
    bodies.append((sink.getvalue().to_pybytes(), "application/vnd.apache.parquet"))
    for body, ctype in bodies:
        X, _ = decode(body, ctype, model, 100)
        np.testing.assert_array_equal(predictor.predict(X), expected)
    with pytest.raises(Exception, match=r"unknown \['extra'\]"):
        decode(
            json.dumps({"dataframe_split": split}).encode(), "application/json", model, 100, True
        )


def test_mlflow_rows_without_names_and_a_text_number_are_refused(model):
    from inference.errors import InputError
    from inference.serve.mlflow import decode

    with pytest.raises(InputError, match="reads its columns by name"):
        decode(json.dumps({"instances": [[1, 2, 3, 4, 5, 6]]}).encode(), "", model, 100)
    rows = {**ROWS, "bill_depth_mm": [18.7, "deep", 18.5, 14.3]}
    with pytest.raises(InputError, match=r"row 2, column 'bill_depth_mm': 'deep' is not a number"):
        decode(json.dumps({"inputs": rows}).encode(), "", model, 100)
    record = {name: values[0] for name, values in ROWS.items()}
    for value in ({"a": 1}, ["Adelie"]):  # the Predictor would not hash them: refused here
        body = json.dumps({"dataframe_records": [record, {**record, "species": value}]})
        with pytest.raises(InputError, match=r"row 2, column 'species': .* is not a level"):
            decode(body.encode(), "", model, 100)
    csv = ",".join(ROWS).encode() + b"\nAdelie,Dream,x,1,1,male\n"
    with pytest.raises(InputError, match=r"CSV line 2, column 'bill_length_mm': 'x' is not a"):
        decode(csv, "text/csv", model, 100)


def test_predict_body_one_record_takes_the_one_row_path(model, predictor, expected):
    from inference.serve.plain import decode

    record = {name: values[1] for name, values in ROWS.items()}
    inputs, X, _, _ = decode(json.dumps(record).encode(), model, 100, one_row=True)
    assert X is None and predictor.predict_one(inputs) == pytest.approx(float(expected[1]))
    _, X, _, _ = decode(json.dumps({"inputs": ROWS}).encode(), model, 100, one_row=True)
    np.testing.assert_array_equal(predictor.predict(X), expected)


# --- micro-batching ----------------------------------------------------------------------
def test_micro_batching_merges_raw_columns_and_fails_a_bad_request_alone(model, expected):
    from inference.errors import InputError
    from inference.serve.batching import Runner
    from inference.serve.design_body import from_json

    runs: list[int] = []
    runner = Runner(
        max_batch_rows=1000,
        max_batch_delay_us=3_600_000_000,
        inflight=lambda: 3,
        observe_batch=lambda name, rows: runs.append(rows),
    )
    design = model.predictor.design
    good = [from_json({k: v[:2] for k, v in ROWS.items()}, design)]
    good.append(from_json({k: v[2:] for k, v in ROWS.items()}, design))
    bad = from_json({**{k: v[:1] for k, v in ROWS.items()}, "species": ["Emperor"]}, design)

    async def main():
        calls = [runner.predict(model, X) for X in [*good, bad]]
        return await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 60)

    first, second, error = asyncio.run(main())
    np.testing.assert_array_equal(np.concatenate([first, second]), expected)
    assert isinstance(error, InputError) and "'Emperor'" in str(error)
    assert runs[0] == 5  # merged, then each request alone after the bad row


# --- OpenAPI and the page ----------------------------------------------------------------
@pytest.mark.parametrize(("token", "strict"), [(False, False), (True, True)])
def test_openapi_document_is_valid_with_a_design_model(app, token, strict):
    validator = pytest.importorskip(
        "openapi_spec_validator", reason="needs openapi-spec-validator (the serve-test extra)"
    )
    from inference.serve.openapi import build_document

    doc = build_document(app.registry.models, app.app.routes, token=token, strict=strict)
    validator.validate(json.loads(json.dumps(doc)))
    body = doc["paths"]["/invocations"]["post"]["requestBody"]["content"]["application/json"]
    record = body["schema"]["properties"]["dataframe_records"]["items"]
    assert record["properties"]["species"]["enum"] == ["Adelie", "Chinstrap", "Gentoo"]
    assert record["properties"]["bill_depth_mm"] == {"type": "number", "format": "float"}
    assert record.get("additionalProperties", True) is not strict
    summary = doc["paths"]["/v2/models/penguins/infer"]["post"]["summary"]
    assert "species BYTES [n]" in summary and "bill_length_mm FP32 [n]" in summary


def test_page_html_has_a_select_per_factor_and_groups_levels(model):
    from inference.serve.page import render

    html = render({"penguins": model})
    for name in ("species", "island", "sex"):
        assert f'<select data-feature="{name}" data-kind="factor"' in html
    assert '<option value="Torgersen">Torgersen</option>' in html
    assert '<input type="number" step="any" required value="1" data-feature="bill_depth_mm"' in html
    assert html.count('<tr class="term">') == 3
    assert "species (reference Adelie)" in html and "11 dropped for a missing value" in html


# --- gRPC ---------------------------------------------------------------------------------
def test_grpc_bytes_in_typed_contents_and_raw_contents(model, predictor, expected):
    pytest.importorskip("grpc")
    from inference.serve.grpc_tensors import request_matrix
    from inference.serve.proto import grpc_service_pb2 as pb

    typed = pb.ModelInferRequest(model_name="penguins")
    raw = pb.ModelInferRequest(model_name="penguins")
    for name, values in ROWS.items():
        text = isinstance(values[0], str)
        datatype = "BYTES" if text else "FP64"
        tensor = typed.inputs.add(name=name, datatype=datatype, shape=[len(values)])
        if text:
            tensor.contents.bytes_contents.extend(v.encode() for v in values)
        else:
            tensor.contents.fp64_contents.extend(values)
        raw.inputs.add(name=name, datatype=datatype, shape=[len(values)])
        raw.raw_input_contents.append(
            _bytes(values) if text else np.asarray(values, "<f8").tobytes()
        )
    for request in (typed, raw):
        X = request_matrix(request, model, 100)
        np.testing.assert_array_equal(predictor.predict(X), expected)
    raw.raw_input_contents[0] = _bytes(["Adelie"])  # one element for shape [4]
    error = _error(request_matrix, raw, model, 100)
    assert error.status == 400 and "end before element 1 of 4" in error.message


# --- hostile values: never a 5xx -----------------------------------------------------------
def test_hostile_values_in_every_column_get_4xx_never_5xx(app):
    """Hypothesis: any JSON value in any column of a design model's record, on /predict,
    /invocations and V2 JSON (each column's tensor as BYTES or FP32) is answered 200 or
    a JSON 4xx, never a 5xx (the Predictor would not hash a list; a dict is no level)."""
    hypothesis = pytest.importorskip("hypothesis")
    from hypothesis import strategies as st
    from starlette.testclient import TestClient

    client = TestClient(app, raise_server_exceptions=False)
    scalars = (
        st.none()
        | st.booleans()
        | st.integers(min_value=-(2**70), max_value=2**70)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=8)
        | st.sampled_from(["Adelie", "Dream", "male", ""])
    )
    values = st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=2)
        ),
        max_leaves=6,
    )
    record = {name: v[0] for name, v in ROWS.items()}

    @hypothesis.settings(max_examples=60, deadline=None)
    @hypothesis.given(st.sampled_from(list(ROWS)), values, st.booleans())
    def check(column, value, text):
        row = {**record, column: value}
        tensors = [
            {
                "name": k,
                "shape": [1],
                "datatype": "BYTES" if (text if k == column else isinstance(v, str)) else "FP32",
                "data": [v],
            }
            for k, v in row.items()
        ]
        for path, body in (
            ("/models/penguins/predict", row),
            ("/models/penguins/predict", [row, record]),
            ("/invocations?model=penguins", {"dataframe_records": [row]}),
            (
                "/invocations?model=penguins",
                {"dataframe_split": {"columns": list(row), "data": [list(row.values())]}},
            ),
            ("/v2/models/penguins/infer", {"inputs": tensors}),
        ):
            r = client.post(path, content=json.dumps(body))
            assert r.status_code in (200, 400, 413, 422), (path, body, r.text)
            assert isinstance(r.json(), dict)

    check()


def test_value_schemas_of_boolean_integer_and_unknown_zero_factors_and_filled_numbers():
    from inference.design import Input
    from inference.serve.openapi_design import value_schema

    number = {"type": "number", "format": "double"}
    flag = Input("flag", "factor", "bool", ("False", "True"), "False")
    size = Input("size", "factor", "int", ("2", "10"), "2")
    free = Input("region", "factor", "str", ("east", "north"), "east", unknown="zero")
    assert value_schema(flag, number) == {"type": "boolean", "enum": [False, True]}
    assert value_schema(size, number) == {"type": "integer", "enum": [2, 10]}
    assert "enum" not in value_schema(free, number)  # any value scores (as no level)
    assert "east, north" in value_schema(free, number)["description"]
    filled = Input("x", "numeric", fill=0.5)
    assert value_schema(filled, number) == {**number, "nullable": True}
    assert value_schema(Input("x", "numeric"), number) == number
