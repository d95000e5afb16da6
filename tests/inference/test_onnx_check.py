"""Tests of inference.onnx_check: the wire-format safety check of ONNX bytes.

The ``onnx`` package is used here only to build models; the module under test
must not need it.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inference.errors import ModelLoadError
from inference.onnx_check import MAX_DEPTH, check_onnx_bytes

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

SRC = "model.onnx"
OPSET = [helper.make_opsetid("", 17)]


# --------------------------------------------------------------------------------------
# Model builders
# --------------------------------------------------------------------------------------


def _gemm_model(n_features: int = 3, dtype: type = np.float32) -> onnx.ModelProto:
    """y = x @ W + B, a linear regression as served by the runtime."""
    elem = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.normal(size=(n_features, 1)).astype(dtype), "W")
    b = numpy_helper.from_array(np.array([0.5], dtype=dtype), "B")
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["features", "W", "B"], ["prediction"], name="gemm")],
        "linreg",
        [helper.make_tensor_value_info("features", elem, ["batch", n_features])],
        [helper.make_tensor_value_info("prediction", elem, ["batch", 1])],
        [w, b],
    )
    return helper.make_model(graph, opset_imports=OPSET)


def _constant_model() -> onnx.ModelProto:
    """A Constant node whose tensor attribute uses float_data (typed, not raw)."""
    value = helper.make_tensor("c", TensorProto.FLOAT, [2, 2], [1.0, 2.0, 3.0, 4.0])
    shape = helper.make_tensor("s", TensorProto.INT64, [2], [4, 1])
    graph = helper.make_graph(
        [
            helper.make_node("Constant", [], ["c"], value=value, name="const"),
            helper.make_node("Constant", [], ["s"], value=shape, name="shape"),
            helper.make_node("Reshape", ["c", "s"], ["r"]),
            helper.make_node("Add", ["x", "r"], ["y"]),
        ],
        "const",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 1])],
    )
    return helper.make_model(graph, opset_imports=OPSET)


def _branch(name: str, value: float) -> onnx.GraphProto:
    init = numpy_helper.from_array(np.full((2,), value, dtype=np.float32), f"{name}_w")
    return helper.make_graph(
        [helper.make_node("Add", ["x", f"{name}_w"], [f"{name}_out"])],
        name,
        [],
        [helper.make_tensor_value_info(f"{name}_out", TensorProto.FLOAT, [2])],
        [init],
    )


def _if_model() -> onnx.ModelProto:
    """An If node whose then/else branches each carry an initializer."""
    graph = helper.make_graph(
        [
            helper.make_node(
                "If",
                ["cond"],
                ["y"],
                name="if0",
                then_branch=_branch("then", 1.0),
                else_branch=_branch("else", -1.0),
            )
        ],
        "if_graph",
        [
            helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [2]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
    )
    return helper.make_model(graph, opset_imports=OPSET)


VALID_MODELS: dict[str, Callable[[], onnx.ModelProto]] = {
    "gemm_float32": _gemm_model,
    "gemm_float64": lambda: _gemm_model(3, np.float64),
    "constant": _constant_model,
    "if_subgraph": _if_model,
    "gemm_16_features": lambda: _gemm_model(16),
}


def _make_external(tensor: onnx.TensorProto, location: str) -> None:
    """Turn ``tensor`` into an external-data reference to ``location`` by hand."""
    size = len(tensor.raw_data) or 4
    tensor.ClearField("raw_data")
    tensor.ClearField("float_data")
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", str(size))):
        entry = tensor.external_data.add()
        entry.key = key
        entry.value = value


# Raw wire-format encoders, for bytes that onnx itself would never write.


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _ld(field: int, payload: bytes) -> bytes:
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


# --------------------------------------------------------------------------------------
# Valid models pass
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(VALID_MODELS))
def test_valid_models_pass(name: str) -> None:
    check_onnx_bytes(VALID_MODELS[name]().SerializeToString(), source=SRC)


@pytest.mark.parametrize("name", sorted(VALID_MODELS))
def test_valid_fixtures_pass_onnx_checker(name: str) -> None:
    onnx.checker.check_model(VALID_MODELS[name](), full_check=True)


def test_saved_16_feature_model_passes(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    onnx.save_model(_gemm_model(16), path)
    data = path.read_bytes()
    check_onnx_bytes(data, source=str(path))
    onnx.checker.check_model(str(path))


def test_if_model_subgraphs_really_hold_initializers() -> None:
    model = onnx.ModelProto.FromString(_if_model().SerializeToString())
    attrs = {a.name: a.g for a in model.graph.node[0].attribute}
    assert [t.name for t in attrs["then_branch"].initializer] == ["then_w"]
    assert [t.name for t in attrs["else_branch"].initializer] == ["else_w"]


def test_valid_models_run_in_onnxruntime() -> None:
    ort = pytest.importorskip("onnxruntime")
    data = _gemm_model(16).SerializeToString()
    check_onnx_bytes(data, source=SRC)
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {"features": np.ones((2, 16), dtype=np.float32)})
    assert out.shape == (2, 1)


def test_typed_data_of_every_kind_passes() -> None:
    tensors = [
        helper.make_tensor("f", TensorProto.FLOAT, [2], [1.0, 2.0]),
        helper.make_tensor("d", TensorProto.DOUBLE, [2], [1.0, 2.0]),
        helper.make_tensor("i32", TensorProto.INT32, [3], [1, -2, 3]),
        helper.make_tensor("i64", TensorProto.INT64, [2], [-(2**40), 2**40]),
        helper.make_tensor("u8", TensorProto.UINT8, [2], [0, 255]),
        helper.make_tensor("b", TensorProto.BOOL, [2], [True, False]),
        helper.make_tensor("u64", TensorProto.UINT64, [2], [0, 2**64 - 1]),
        helper.make_tensor("u32", TensorProto.UINT32, [1], [7]),
        helper.make_tensor("c64", TensorProto.COMPLEX64, [2], [1 + 2j, 3 - 4j]),
        helper.make_tensor("c128", TensorProto.COMPLEX128, [1], [1 + 2j]),
        helper.make_tensor("h", TensorProto.FLOAT16, [2], np.array([1, 2], np.float16)),
        helper.make_tensor("s", TensorProto.STRING, [2], [b"a", b"b"]),
        helper.make_tensor("empty", TensorProto.FLOAT, [0, 5], []),
        numpy_helper.from_array(np.arange(6, dtype=np.int16).reshape(2, 3), "raw16"),
    ]
    graph = helper.make_graph([], "typed", [], [], tensors)
    check_onnx_bytes(helper.make_model(graph).SerializeToString(), source=SRC)


def test_unknown_fields_are_skipped() -> None:
    data = _gemm_model().SerializeToString()
    extra = _ld(999, b"anything") + _varint(1000 << 3 | 5) + b"\x00\x00\x00\x00"
    check_onnx_bytes(data + extra, source=SRC)


def test_moderate_subgraph_nesting_passes() -> None:
    check_onnx_bytes(_nested_if_model(5).SerializeToString(), source=SRC)


# --------------------------------------------------------------------------------------
# Not an ONNX model
# --------------------------------------------------------------------------------------


def test_truncated_bytes_refused() -> None:
    data = _gemm_model().SerializeToString()
    with pytest.raises(ModelLoadError, match=r"^model\.onnx: not an ONNX model"):
        check_onnx_bytes(data[: len(data) // 2], source=SRC)


def test_random_garbage_refused() -> None:
    garbage = np.random.default_rng(1).integers(0, 256, size=4096, dtype=np.uint8).tobytes()
    with pytest.raises(ModelLoadError, match=r"^model\.onnx: not an ONNX model"):
        check_onnx_bytes(garbage, source=SRC)


def test_empty_bytes_refused() -> None:
    with pytest.raises(ModelLoadError, match=r"^model\.onnx: not an ONNX model.*no graph"):
        check_onnx_bytes(b"", source=SRC)


def test_model_without_graph_refused() -> None:
    data = helper.make_model(helper.make_graph([], "g", [], [])).SerializeToString()
    model = onnx.ModelProto.FromString(data)
    model.ClearField("graph")
    with pytest.raises(ModelLoadError, match=r"^model\.onnx: not an ONNX model.*no graph"):
        check_onnx_bytes(model.SerializeToString(), source=SRC)


@pytest.mark.parametrize(
    ("data", "what"),
    [
        (b"\x0b\x0c", "group"),  # field 1, wire type 3 (start group)
        (b"\x0c", "group"),  # wire type 4 (end group)
        (b"\x0e", "invalid wire type 6"),
        (b"\x08\xff\xff", "truncated varint"),
        (b"\x08" + b"\xff" * 10 + b"\x01", "longer than 10 bytes"),
        (b"\x08" + b"\xff" * 9 + b"\x7f", "overflows 64 bits"),
        (b"\x3a\x05ab", "declares 5 bytes but only 2 remain"),
        (b"\x09\x00\x00", "truncated fixed64"),
        (b"\x00\x00", "invalid field number 0"),
        (b"\x38\x01", "graph .*wire type 0"),  # graph (field 7) as a varint
    ],
)
def test_bad_wire_format_refused(data: bytes, what: str) -> None:
    with pytest.raises(ModelLoadError, match=rf"^model\.onnx: not an ONNX model.*{what}"):
        check_onnx_bytes(data, source=SRC)


def _nested_if_model(levels: int) -> onnx.ModelProto:
    inner = _branch("leaf", 1.0)
    for i in range(levels):
        node = helper.make_node(
            "If", ["cond"], [f"o{i}"], then_branch=inner, else_branch=_branch(f"e{i}", 0.0)
        )
        inner = helper.make_graph(
            [node], f"level{i}", [], [helper.make_tensor_value_info(f"o{i}", 1, [2])]
        )
    return helper.make_model(inner, opset_imports=OPSET)


def test_too_deep_nesting_refused() -> None:
    data = _nested_if_model(MAX_DEPTH // 3 + 2).SerializeToString()
    with pytest.raises(ModelLoadError, match=r"^model\.onnx: not an ONNX model.*deeper than"):
        check_onnx_bytes(data, source=SRC)


# --------------------------------------------------------------------------------------
# External data
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("location", ["../../etc/passwd", "/etc/passwd", "weights.bin"])
def test_external_initializer_refused(location: str) -> None:
    model = _gemm_model()
    _make_external(model.graph.initializer[0], location)
    pattern = (
        rf"^model\.onnx: tensor 'W' .*external data \(location '{location}'\).*"
        r"only self-contained models.*'\.\./', absolute paths"
    )
    with pytest.raises(ModelLoadError, match=pattern):
        check_onnx_bytes(model.SerializeToString(), source=SRC)


def test_data_location_external_alone_refused() -> None:
    model = _gemm_model()
    tensor = model.graph.initializer[1]
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    with pytest.raises(ModelLoadError, match=r"tensor 'B' .*external data \(no location"):
        check_onnx_bytes(model.SerializeToString(), source=SRC)


def test_external_data_entries_without_flag_refused() -> None:
    model = _gemm_model()
    entry = model.graph.initializer[0].external_data.add()
    entry.key, entry.value = "location", "w.bin"
    with pytest.raises(ModelLoadError, match=r"tensor 'W' .*location 'w\.bin'"):
        check_onnx_bytes(model.SerializeToString(), source=SRC)


def test_external_data_inside_if_branch_refused() -> None:
    model = _if_model()
    else_branch = next(a.g for a in model.graph.node[0].attribute if a.name == "else_branch")
    _make_external(else_branch.initializer[0], "../../etc/passwd")
    with pytest.raises(
        ModelLoadError, match=r"^model\.onnx: tensor 'else_w' \(at .*else_branch.*etc/passwd"
    ):
        check_onnx_bytes(model.SerializeToString(), source=SRC)


def test_external_data_inside_constant_attribute_refused() -> None:
    model = _constant_model()
    _make_external(model.graph.node[0].attribute[0].t, "/etc/passwd")
    with pytest.raises(
        ModelLoadError, match=r"^model\.onnx: tensor 'c' \(at .*Constant.*'/etc/passwd'"
    ):
        check_onnx_bytes(model.SerializeToString(), source=SRC)


def test_external_data_in_sparse_initializer_refused() -> None:
    values = helper.make_tensor("sv", TensorProto.FLOAT, [2], [1.0, 2.0])
    indices = helper.make_tensor("si", TensorProto.INT64, [2], [0, 3])
    sparse = helper.make_sparse_tensor(values, indices, [5])
    graph = helper.make_graph([], "g", [], [], sparse_initializer=[sparse])
    model = helper.make_model(graph)
    check_onnx_bytes(model.SerializeToString(), source=SRC)
    _make_external(model.graph.sparse_initializer[0].values, "vals.bin")
    with pytest.raises(ModelLoadError, match=r"tensor 'sv' .*sparse_initializer.*vals\.bin"):
        check_onnx_bytes(model.SerializeToString(), source=SRC)


def test_external_data_in_function_refused() -> None:
    value = helper.make_tensor("fc", TensorProto.FLOAT, [1], [1.0])
    function = helper.make_function(
        "custom",
        "AddOne",
        ["x"],
        ["y"],
        [
            helper.make_node("Constant", [], ["one"], value=value),
            helper.make_node("Add", ["x", "one"], ["y"]),
        ],
        OPSET,
    )
    model = _gemm_model()
    model.functions.append(function)
    check_onnx_bytes(model.SerializeToString(), source=SRC)
    _make_external(model.functions[0].node[0].attribute[0].t, "f.bin")
    with pytest.raises(ModelLoadError, match=r"tensor 'fc' \(at model > functions\[0\]"):
        check_onnx_bytes(model.SerializeToString(), source=SRC)


def test_external_data_in_attribute_tensor_list_refused() -> None:
    model = _gemm_model()
    tensor = helper.make_tensor("listed", TensorProto.FLOAT, [1], [1.0])
    model.graph.node[0].attribute.append(helper.make_attribute("extra", [tensor]))
    check_onnx_bytes(model.SerializeToString(), source=SRC)
    _make_external(model.graph.node[0].attribute[-1].tensors[0], "l.bin")
    with pytest.raises(ModelLoadError, match=r"tensor 'listed' .*tensors\[0\]"):
        check_onnx_bytes(model.SerializeToString(), source=SRC)


# --------------------------------------------------------------------------------------
# Declared size versus data present
# --------------------------------------------------------------------------------------


def _model_with_initializer(tensor: onnx.TensorProto) -> bytes:
    graph = helper.make_graph([], "g", [], [], [tensor])
    return helper.make_model(graph, opset_imports=OPSET).SerializeToString()


def test_huge_dims_with_tiny_raw_data_refused() -> None:
    tensor = TensorProto(name="big", data_type=TensorProto.FLOAT, dims=[10**9])
    tensor.raw_data = b"\x00" * 4
    pattern = (
        r"^model\.onnx: tensor 'big' .*dims \[1000000000\] of FLOAT.*"
        r"4000000000 bytes declared.*4 bytes present"
    )
    with pytest.raises(ModelLoadError, match=pattern):
        check_onnx_bytes(_model_with_initializer(tensor), source=SRC)


def test_tensor_without_data_refused() -> None:
    tensor = TensorProto(name="hollow", data_type=TensorProto.DOUBLE, dims=[3])
    with pytest.raises(ModelLoadError, match=r"tensor 'hollow' .*no data at all"):
        check_onnx_bytes(_model_with_initializer(tensor), source=SRC)


def test_short_typed_data_refused() -> None:
    tensor = helper.make_tensor("short", TensorProto.FLOAT, [2], [1.0, 2.0])
    tensor.dims[0] = 3
    with pytest.raises(ModelLoadError, match=r"tensor 'short' .*8 bytes of data in float_data"):
        check_onnx_bytes(_model_with_initializer(tensor), source=SRC)


def test_short_complex_data_refused() -> None:
    tensor = helper.make_tensor("z", TensorProto.COMPLEX64, [1], [1 + 1j])
    tensor.float_data.pop()  # half an element
    with pytest.raises(ModelLoadError, match=r"tensor 'z' .*COMPLEX64"):
        check_onnx_bytes(_model_with_initializer(tensor), source=SRC)


def test_negative_dim_refused() -> None:
    tensor = TensorProto(name="neg", data_type=TensorProto.FLOAT, dims=[-1])
    tensor.raw_data = b"\x00" * 4
    with pytest.raises(ModelLoadError, match=r"tensor 'neg' .*negative dimension.*\[-1\]"):
        check_onnx_bytes(_model_with_initializer(tensor), source=SRC)


def test_element_count_bound_refused_even_for_strings() -> None:
    tensor = TensorProto(name="many", data_type=TensorProto.STRING, dims=[2**21, 2**21])
    with pytest.raises(ModelLoadError, match=r"tensor 'many' .*more than \d+ \(2\*\*40\)"):
        check_onnx_bytes(_model_with_initializer(tensor), source=SRC)


def test_split_tensor_is_merged_like_protobuf() -> None:
    """Two occurrences of a singular tensor field merge: dims add up, raw_data is the last."""
    half = TensorProto(name="t", data_type=TensorProto.FLOAT, dims=[1000])
    half.raw_data = b"\x00" * 4000
    half_bytes = half.SerializeToString()
    attr = helper.make_attribute("value", half)
    attr_bytes = attr.SerializeToString() + _ld(5, half_bytes)
    node = helper.make_node("Constant", [], ["c"])
    node_bytes = node.SerializeToString() + _ld(5, attr_bytes)
    base = helper.make_model(helper.make_graph([], "g", [], []), opset_imports=OPSET)
    data = base.SerializeToString() + _ld(7, _ld(1, node_bytes))

    merged = onnx.ModelProto.FromString(data).graph.node[0].attribute[0].t
    assert list(merged.dims) == [1000, 1000]
    assert len(merged.raw_data) == 4000

    single = base.SerializeToString() + _ld(
        7, _ld(1, node.SerializeToString() + _ld(5, attr.SerializeToString()))
    )
    check_onnx_bytes(single, source=SRC)
    with pytest.raises(ModelLoadError, match=r"tensor 't' .*\[1000, 1000\].*4000 bytes present"):
        check_onnx_bytes(data, source=SRC)


def test_packed_and_unpacked_dims_both_read() -> None:
    tensor = TensorProto(name="p", data_type=TensorProto.UINT8, dims=[2, 3])
    tensor.raw_data = b"\x00" * 5
    data = tensor.SerializeToString()
    assert data.startswith(b"\x08\x02\x08\x03")  # dims unpacked: one varint field each
    repacked = b"\x0a\x02\x02\x03" + data[4:]  # the same dims packed (field 1, wire type 2)
    for tensor_bytes in (data, repacked):
        assert list(TensorProto.FromString(tensor_bytes).dims) == [2, 3]
        graph = _ld(5, tensor_bytes)
        with pytest.raises(ModelLoadError, match=r"tensor 'p' .*\[2, 3\] of UINT8.*5 bytes"):
            check_onnx_bytes(_ld(7, graph), source=SRC)


# --------------------------------------------------------------------------------------
# Fuzzing: only ModelLoadError, never anything else
# --------------------------------------------------------------------------------------

_FUZZ_BASE = _if_model()
_FUZZ_BASE.graph.node.append(_constant_model().graph.node[0])
_FUZZ_BYTES = _FUZZ_BASE.SerializeToString()


def _pass_or_refuse(data: bytes) -> None:
    try:
        check_onnx_bytes(data, source=SRC)
    except ModelLoadError as exc:
        assert str(exc).startswith(f"{SRC}: ")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=512))
def test_fuzz_random_bytes(data: bytes) -> None:
    _pass_or_refuse(data)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, len(_FUZZ_BYTES) - 1), st.integers(0, 255))
def test_fuzz_single_byte_corruption(index: int, byte: int) -> None:
    corrupted = bytearray(_FUZZ_BYTES)
    corrupted[index] = byte
    _pass_or_refuse(bytes(corrupted))


@settings(max_examples=200, deadline=None)
@given(st.integers(0, len(_FUZZ_BYTES)))
def test_fuzz_truncation(length: int) -> None:
    _pass_or_refuse(_FUZZ_BYTES[:length])


def test_fuzz_base_is_valid() -> None:
    check_onnx_bytes(_FUZZ_BYTES, source=SRC)


# --------------------------------------------------------------------------------------
# Dependencies
# --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_module_does_not_import_onnx_or_torch() -> None:
    code = (
        "import sys, inference.onnx_check\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('onnx', 'torch'))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
