"""A model fitted on raw columns (text factors, a formula, gaps), served by a real
``linreg serve`` process: predictions through V2 JSON (BYTES as strings), V2 binary
BYTES through ``tritonclient.http``, gRPC through ``tritonclient.grpc``,
``/invocations`` (JSON formats and CSV) and ``/predict`` equal statsmodels' formula
OLS fitted values on the same table and formula (float32 export: 1e-6 relative to the
largest prediction; float64: 1e-12), intervals equal statsmodels' too; an unseen
level or a missing value is a 400 (``/predict``: 422) naming the row, the column and
the value; metadata, model configuration and OpenAPI describe the raw columns.
"""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request
import warnings

import numpy as np
import pytest

from tests.serve.conftest import ServerProcess, free_port, needs_serve

pytestmark = [needs_serve, pytest.mark.slow]
pytest.importorskip("torch")
pd = pytest.importorskip("pandas")
smf = pytest.importorskip("statsmodels.formula.api")

FORMULA = "y ~ x1 * C(region) + C(grp) + np.log(x2)"
RTOL = {"f32": 1e-6, "f64": 1e-12}
COLUMNS = ["x1", "region", "grp", "x2"]
ROWS = 40


def _table() -> pd.DataFrame:
    """A generated table: a numeric target, two numbers, two text factors and gaps."""
    rng = np.random.default_rng(23)
    n = 150
    region = rng.choice(["north", "south", "east"], size=n).astype(object)
    grp = rng.choice(["a", "b"], size=n)
    x1, x2 = rng.normal(size=n), rng.uniform(1, 6, size=n)
    effect = pd.Series(region).map({"north": 1.0, "south": -1.5, "east": 0.0}).to_numpy()
    y = 3 + 2 * x1 + effect + (grp == "b") * 0.7 + np.log(x2) + 0.5 * x1 * (region == "north")
    y = y + rng.normal(0, 0.3, size=n)
    frame = pd.DataFrame({"y": y, "x1": x1, "region": region, "grp": grp, "x2": x2})
    frame.loc[[3, 17], "x2"] = np.nan
    frame.loc[9, "region"] = None
    return frame


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """The table, statsmodels' fit, and the exported models' directory (f32, f64)."""
    from training.export import export_model
    from training.pipeline import train

    frame = _table()
    root = tmp_path_factory.mktemp("design_models")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = train(frame, formula=FORMULA, progress=False)
        for name, dtype in (("f32", "float32"), ("f64", "float64")):
            export_model(run, root / name, dtype=dtype, plots=False)
    ols = smf.ols(FORMULA, frame).fit()
    assert run.design.rows_dropped == len(frame) - int(ols.nobs) == 3
    used = frame.loc[ols.fittedvalues.index[:ROWS]]
    return frame, ols, used, root


@pytest.fixture(scope="module")
def served(fitted, tmp_path_factory):
    _, _, _, root = fitted
    grpc_port = free_port()
    log = tmp_path_factory.mktemp("design_server") / "server.log"
    args = [str(root / "f32"), str(root / "f64"), "--grpc-port", str(grpc_port)]
    proc = ServerProcess(args, log=log)
    yield proc, f"127.0.0.1:{grpc_port}"
    proc.stop(timeout=15)


def _expected(fitted):
    _, ols, used, _ = fitted
    return ols.fittedvalues.iloc[: len(used)].to_numpy()


def _close(got, fitted, model: str) -> None:
    expected = _expected(fitted)
    rtol = RTOL[model]
    got = np.asarray(got, dtype=np.float64)
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=rtol * np.abs(expected).max())


def _post(url: str, body: bytes, ctype: str = "application/json") -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": ctype})
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.loads(r.read())  # type: ignore[no-any-return]


def _v2_json(used, dtype: str = "FP64") -> list[dict]:
    return [
        {
            "name": c,
            "shape": [len(used)],
            "datatype": dtype if pd.api.types.is_numeric_dtype(used[c]) else "BYTES",
            "data": used[c].tolist(),
        }
        for c in COLUMNS
    ]


@pytest.mark.parametrize("model", ["f32", "f64"])
def test_v2_json_predictions_and_intervals_equal_statsmodels(served, fitted, model):
    proc, _ = served
    _, ols, used, _ = fitted
    url = f"{proc.url}/v2/models/{model}/infer"
    status, answer = _post(url, json.dumps({"inputs": _v2_json(used)}).encode())
    assert status == 200, answer
    _close(answer["outputs"][0]["data"], fitted, model)
    body = {"inputs": _v2_json(used), "parameters": {"interval": "prediction", "level": 0.9}}
    status, answer = _post(url, json.dumps(body).encode())
    assert status == 200, answer
    out = {o["name"]: np.asarray(o["data"]) for o in answer["outputs"]}
    theirs = ols.get_prediction(used).summary_frame(alpha=0.1)
    scale = RTOL[model] * np.abs(_expected(fitted)).max()
    rtol = max(RTOL[model], 1e-10)
    np.testing.assert_allclose(out["lower"], theirs.obs_ci_lower, rtol=rtol, atol=scale)
    np.testing.assert_allclose(out["upper"], theirs.obs_ci_upper, rtol=rtol, atol=scale)


@pytest.mark.parametrize("model", ["f32", "f64"])
@pytest.mark.parametrize("binary", [True, False])
def test_tritonclient_http_bytes_tensors(served, fitted, model, binary):
    httpclient = pytest.importorskip("tritonclient.http", reason="needs tritonclient[http]")
    proc, _ = served
    _, _, used, _ = fitted
    client = httpclient.InferenceServerClient(url=proc.url.removeprefix("http://"))
    try:
        meta = client.get_model_metadata(model)
        inputs = []
        for tensor in meta["inputs"]:  # as the metadata says: names, datatypes, order
            values = used[tensor["name"]].to_numpy()
            if tensor["datatype"] == "BYTES":
                values = values.astype(np.object_)
            else:
                values = values.astype(np.float32 if tensor["datatype"] == "FP32" else np.float64)
            inp = httpclient.InferInput(tensor["name"], [len(values)], tensor["datatype"])
            inp.set_data_from_numpy(values, binary_data=binary)
            inputs.append(inp)
        result = client.infer(model, inputs)
        _close(result.as_numpy("prediction"), fitted, model)
        config = client.get_model_config(model)
        assert [(t["name"], t["data_type"], t["dims"]) for t in config["input"]] == [
            (
                t["name"],
                "TYPE_STRING" if t["datatype"] == "BYTES" else "TYPE_" + t["datatype"],
                [-1],
            )
            for t in meta["inputs"]
        ]
    finally:
        client.close()


@pytest.mark.parametrize("model", ["f32", "f64"])
def test_tritonclient_grpc_bytes_tensors(served, fitted, model):
    pytest.importorskip("grpc")
    grpcclient = pytest.importorskip("tritonclient.grpc", reason="needs tritonclient[grpc]")
    _, address = served
    _, _, used, _ = fitted
    client = grpcclient.InferenceServerClient(address)
    try:
        meta = client.get_model_metadata(model, as_json=True)
        inputs = []
        for tensor in meta["inputs"]:
            values = used[tensor["name"]].to_numpy()
            if tensor["datatype"] == "BYTES":
                values = values.astype(np.object_)
            else:
                values = values.astype(np.float32 if tensor["datatype"] == "FP32" else np.float64)
            inp = grpcclient.InferInput(tensor["name"], [len(values)], tensor["datatype"])
            inp.set_data_from_numpy(values)
            inputs.append(inp)
        _close(client.infer(model, inputs).as_numpy("prediction"), fitted, model)
        bad = used["region"].to_numpy().astype(np.object_)
        bad[4] = "west"
        inputs[[t["name"] for t in meta["inputs"]].index("region")].set_data_from_numpy(bad)
        with pytest.raises(Exception, match=r"row 5, column 'region': the value 'west'") as e:
            client.infer(model, inputs)
        assert "INVALID_ARGUMENT" in str(e.value) or "StatusCode.INVALID_ARGUMENT" in repr(e.value)
    finally:
        client.close()


@pytest.mark.parametrize("model", ["f32", "f64"])
def test_invocations_json_and_csv(served, fitted, model):
    proc, _ = served
    _, _, used, _ = fitted
    url = f"{proc.url}/invocations?model={model}"
    frame = used[COLUMNS].astype(object).where(used[COLUMNS].notna(), None)
    records = frame.to_dict(orient="records")
    bodies = [
        {"dataframe_split": {"columns": COLUMNS, "data": frame.to_numpy().tolist()}},
        {"dataframe_records": [{**r, "y": 0.0} for r in records]},  # a column it does not read
        {"inputs": {c: frame[c].tolist() for c in COLUMNS}},
        {"instances": records},
    ]
    for body in bodies:
        status, answer = _post(url, json.dumps(body).encode())
        assert status == 200, (body.keys(), answer)
        _close(answer["predictions"], fitted, model)
    text = io.StringIO()
    used[["y", *COLUMNS]].to_csv(text, index=False)
    status, answer = _post(url, text.getvalue().encode(), "text/csv")
    assert status == 200, answer
    _close(answer["predictions"], fitted, model)


@pytest.mark.parametrize("model", ["f32", "f64"])
def test_predict_records_and_one_record(served, fitted, model):
    proc, _ = served
    _, _, used, _ = fitted
    url = f"{proc.url}/models/{model}/predict"
    records = used[COLUMNS].to_dict(orient="records")
    status, answer = _post(url, json.dumps(records).encode())
    assert status == 200, answer
    _close(answer["predictions"], fitted, model)
    one = [_post(url, json.dumps(r).encode())[1]["predictions"][0] for r in records[:5]]
    expected = _expected(fitted)[:5]
    rtol = RTOL[model]
    np.testing.assert_allclose(
        one, expected, rtol=rtol, atol=rtol * np.abs(_expected(fitted)).max()
    )


def test_unseen_levels_and_missing_values_are_400_naming_row_column_and_value(served, fitted):
    proc, _ = served
    _, _, used, _ = fitted
    frame = used[COLUMNS].head(6).copy()
    frame.loc[frame.index[2], "region"] = "west"
    unseen = r"row 3, column 'region': the value 'west' is not a level this model knows"
    levels = "(levels: ['east', 'north', 'south'])"
    records = frame.to_dict(orient="records")
    cases = [
        ("/v2/models/f64/infer", {"inputs": _v2_json(frame)}, 400, "error"),
        ("/invocations?model=f64", {"dataframe_records": records}, 400, "message"),
        ("/models/f64/predict", records, 422, "error"),
    ]
    for path, body, status, key in cases:
        got, answer = _post(proc.url + path, json.dumps(body).encode())
        assert got == status, (path, answer)
        assert unseen.replace("\\", "") in answer[key] and levels in answer[key], answer
    # a missing value: a null number (V2 JSON), an empty CSV cell, a null factor
    missing = _v2_json(frame.assign(region=used["region"].head(6).to_numpy()))
    missing[0]["data"][1] = None  # x1
    got, answer = _post(f"{proc.url}/v2/models/f32/infer", json.dumps({"inputs": missing}).encode())
    assert got == 400 and "row 2, column 'x1': a missing value" in answer["error"], answer
    text = "x1,region,grp,x2\n0.5,north,a,2.0\n0.1,,b,3.0\n"
    got, answer = _post(f"{proc.url}/invocations?model=f32", text.encode(), "text/csv")
    assert got == 400 and answer["error_code"] == "BAD_REQUEST"
    assert "row 2, column 'region': a missing value" in answer["message"], answer
    record = {"x1": 0.5, "region": None, "grp": "a", "x2": 2.0}
    got, answer = _post(
        f"{proc.url}/invocations?model=f32", json.dumps({"inputs": [record]}).encode()
    )
    assert got == 400 and "row 1, column 'region': a missing value" in answer["message"]


def test_metadata_config_and_openapi_describe_the_raw_columns(served, fitted):
    validator = pytest.importorskip(
        "openapi_spec_validator", reason="needs openapi-spec-validator (the serve-test extra)"
    )
    from inference import Predictor

    proc, _ = served
    _, _, _, root = fitted
    for model, dtype in (("f32", "FP32"), ("f64", "FP64")):
        predictor = Predictor.load(root / model)
        meta = _get(f"{proc.url}/v2/models/{model}")
        kinds = {s.name: s.kind for s in predictor.design.inputs}
        assert [t["name"] for t in meta["inputs"]] == predictor.features
        for t in meta["inputs"]:
            assert t["shape"] == [-1]
            assert t["datatype"] == ("BYTES" if kinds[t["name"]] == "factor" else dtype)
        assert meta["parameters"]["levels"] == {
            "region": ["east", "north", "south"],
            "grp": ["a", "b"],
        }
        config = _get(f"{proc.url}/v2/models/{model}/config")
        assert [t["name"] for t in config["input"]] == predictor.features
    doc = _get(proc.url + "/openapi.json")
    validator.validate(doc)
    schemas = doc["paths"]["/models/f64/predict"]["post"]["requestBody"]["content"]
    record = schemas["application/json"]["schema"]["anyOf"][0]
    assert record["properties"]["region"]["enum"] == ["east", "north", "south"]
    assert record["properties"]["grp"]["enum"] == ["a", "b"]
    assert record["properties"]["x1"]["type"] == "number"
    infer = doc["paths"]["/v2/models/f64/infer"]["post"]["requestBody"]["content"]
    tensors = infer["application/json"]["schema"]["properties"]["inputs"]["items"]["anyOf"]
    region = next(t for t in tensors if t["properties"]["name"]["enum"] == ["region"])
    assert region["properties"]["datatype"]["enum"] == ["BYTES"]
    assert region["properties"]["data"]["items"]["anyOf"][0]["enum"] == ["east", "north", "south"]


def test_kserve_models_and_mlflows_client_with_text_columns(served, fitted):
    """KServe's pydantic models accept the metadata and a BYTES request and its answer;
    MLflow's ScoringServerClient sends a DataFrame with text columns."""
    from tests.serve.test_clients import kserve

    proc, _ = served
    _, _, used, _ = fitted
    k = kserve()
    k.models.ModelMetadataResponse.model_validate(_get(f"{proc.url}/v2/models/f64"))
    body = {"id": "t1", "inputs": _v2_json(used)}
    k.models.InferenceRequest.model_validate(body)
    status, answer = _post(f"{proc.url}/v2/models/f64/infer", json.dumps(body).encode())
    assert status == 200
    response = k.models.InferenceResponse.model_validate(answer)
    _close(response.outputs[0].data, fitted, "f64")
    pytest.importorskip("mlflow", reason="needs mlflow-skinny (the mlflow extra)")
    from mlflow.pyfunc.scoring_server.client import ScoringServerClient

    host, port = proc.url.removeprefix("http://").split(":")
    client = ScoringServerClient(host, int(port))
    _close(client.invoke(used[COLUMNS]).get_predictions().to_numpy().ravel(), fitted, "f32")
