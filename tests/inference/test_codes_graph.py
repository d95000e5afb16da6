"""inference.codes_graph: a design model's graph with its LabelEncoders removed, checked
with the onnx package (valid, the same nodes otherwise) and run by ONNX Runtime on level
codes against the original graph on text: bit for bit the same predictions."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pd = pytest.importorskip("pandas")

from inference.codes_graph import codes_graph  # noqa: E402
from inference.errors import ModelLoadError  # noqa: E402
from training.export.design_graph import build_design_onnx  # noqa: E402
from training.formula import design_table  # noqa: E402


@pytest.fixture(scope="module", params=["float32", "float64"])
def model(request):
    rng = np.random.default_rng(5)
    n = 500
    frame = pd.DataFrame(
        {
            "x1": rng.normal(size=n),
            "region": rng.choice(["north", "south", "east", "west"], size=n),
            "flag": rng.random(n) < 0.5,
            "cyl": rng.choice([4, 6, 8], size=n),
        }
    )
    frame["y"] = 1 + frame.x1 + rng.normal(size=n)
    dt = design_table(frame, "y ~ x1 * C(region) + flag + C(cyl) + C(region):flag")
    Z = np.column_stack([np.ones(n), dt.Z])
    beta = np.linalg.lstsq(Z, dt.y, rcond=None)[0]
    proto = build_design_onnx(dt.design, beta[1:], beta[0], target="y", dtype=request.param)
    return frame, dt.design, proto, request.param


def test_codes_in_give_the_same_predictions_as_text_in(model):
    frame, design, proto, dtype = model
    stripped = codes_graph(proto.SerializeToString(), design)
    checked = onnx.load_from_string(stripped)
    onnx.checker.check_model(checked, full_check=True)
    assert [n.op_type for n in checked.graph.node] == [
        n.op_type for n in proto.graph.node if n.op_type != "LabelEncoder"
    ]
    assert {i.name: i.type.tensor_type.elem_type for i in checked.graph.input} == {
        "x1": onnx.TensorProto.FLOAT if dtype == "float32" else onnx.TensorProto.DOUBLE,
        "region": onnx.TensorProto.INT64,
        "flag": onnx.TensorProto.INT64,
        "cyl": onnx.TensorProto.INT64,
    }
    text = {
        "x1": frame.x1.to_numpy(dtype=dtype),
        "region": frame.region.to_numpy(dtype=object),
        "flag": frame.flag.astype(str).to_numpy(dtype=object),
        "cyl": frame.cyl.to_numpy(dtype=np.int64),
    }
    codes = {
        name: design.factor_codes(name, frame[name]) if name != "x1" else values
        for name, values in text.items()
    }
    providers = ["CPUExecutionProvider"]
    on_text = ort.InferenceSession(proto.SerializeToString(), providers=providers).run(None, text)
    on_codes = ort.InferenceSession(stripped, providers=providers).run(None, codes)
    np.testing.assert_array_equal(on_codes[0], on_text[0])


def test_an_encoder_of_other_levels_is_refused(model):
    _, design, proto, _ = model
    tampered = onnx.ModelProto()
    tampered.CopyFrom(proto)
    for node in tampered.graph.node:
        if node.op_type == "LabelEncoder" and node.input[0] == "region":
            for attr in node.attribute:
                if attr.name == "keys_strings":
                    attr.strings[0], attr.strings[1] = attr.strings[1], attr.strings[0]
    with pytest.raises(ModelLoadError, match="LabelEncoder of 'region'"):
        codes_graph(tampered.SerializeToString(), design)


def test_a_graph_without_the_encoder_is_refused(model):
    _, design, proto, _ = model
    tampered = onnx.ModelProto()
    tampered.CopyFrom(proto)
    keep = [
        n for n in tampered.graph.node if not (n.op_type == "LabelEncoder" and n.input[0] == "cyl")
    ]
    del tampered.graph.node[:]
    tampered.graph.node.extend(keep)
    with pytest.raises(ModelLoadError, match=r"does not encode factor\(s\) \['cyl'\]"):
        codes_graph(tampered.SerializeToString(), design)
