"""Broken, tampered and malicious model files are refused with ``ModelLoadError``.

Each case is tried on a model directory (manifest, sha256 and sizes checked) and,
where it applies, on a bare ``.onnx`` file. Where the file must be refused before
ONNX Runtime parses it, ``onnxruntime.InferenceSession`` is replaced by a spy
that fails the test if it is called. A last group proves the inference package
never unpickles and never loads TorchScript.
"""

from __future__ import annotations

import ast
import json
import os
import pickle
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from inference import InputError, Manifest, ModelLoadError, Predictor
from inference.manifest import MAX_MANIFEST_BYTES, file_digest
from inference.onnx_check import MAX_ELEMENTS
from inference.predictor import MAX_ONNX_BYTES

ROOT = Path(__file__).resolve().parents[2]
ROWS = np.array([[3.0, 42.0, 10.0], [1.5, 41.1, 0.3], [4.2, 44.9, 40.0]])


# --------------------------------------------------------------------------------------
# Fixtures and helpers
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def models(exported) -> dict[str, Path]:
    return {
        "mlr": exported("plant_richness_mlr", "float32")[1],
        "mlr64": exported("plant_richness_mlr", "float64")[1],
        "lr": exported("plant_richness_lr", "float32")[1],
    }


@pytest.fixture
def model_dir(models, tmp_path) -> Path:
    """A fresh copy of the float32 three-feature model directory."""
    return Path(shutil.copytree(models["mlr"], tmp_path / "model"))


@pytest.fixture
def no_ort(monkeypatch) -> list:
    """Fail when onnxruntime is asked to build a session (the file must be refused first)."""
    import onnxruntime

    calls: list = []

    def spy(*args, **kwargs):
        calls.append(args)
        raise AssertionError("onnxruntime.InferenceSession was called on a file to refuse")

    monkeypatch.setattr(onnxruntime, "InferenceSession", spy)
    return calls


def read_manifest(directory: Path) -> dict:
    return json.loads((directory / "manifest.json").read_text())


def write_manifest(directory: Path, data: dict) -> None:
    (directory / "manifest.json").write_text(json.dumps(data))


def rehash(directory: Path, name: str = "model.onnx") -> None:
    """Record the current size and sha256 of ``name``: an attacker who also rewrote the
    manifest, so that only the checks past the hashes can catch the file."""
    data = read_manifest(directory)
    data["artifacts"][name] = file_digest(directory / name)
    write_manifest(directory, data)


def refuse(path: Path, match: str | None = None) -> ModelLoadError:
    with pytest.raises(ModelLoadError, match=match) as info:
        Predictor.load(path, providers="cpu")
    return info.value


def onnx_bytes(directory: Path) -> bytes:
    return (directory / "model.onnx").read_bytes()


# --------------------------------------------------------------------------------------
# Truncated, bit-flipped and swapped files
# --------------------------------------------------------------------------------------


def test_truncated_onnx_in_a_directory_is_refused_before_onnxruntime(model_dir, no_ort):
    data = onnx_bytes(model_dir)
    cuts = sorted(
        {0, 1, len(data) // 2, len(data) - 1, *random.Random(1).sample(range(len(data)), 12)}
    )
    for cut in cuts:
        (model_dir / "model.onnx").write_bytes(data[:cut])
        refuse(model_dir, r"model\.onnx: size is \d+ bytes, the manifest says")
    assert not no_ort


def test_truncated_manifest_and_other_artifacts_are_refused(model_dir, no_ort):
    manifest = (model_dir / "manifest.json").read_bytes()
    for cut in (0, 1, len(manifest) // 3, len(manifest) - 2):
        (model_dir / "manifest.json").write_bytes(manifest[:cut])
        refuse(model_dir, "not valid JSON")
    (model_dir / "manifest.json").write_bytes(manifest)
    pt = (model_dir / "model.pt").read_bytes()
    (model_dir / "model.pt").write_bytes(pt[:-10])
    refuse(model_dir, r"model\.pt: size is")
    assert not no_ort


def test_every_truncation_of_a_bare_onnx_file_is_refused_or_harmless(models, tmp_path):
    """A bare .onnx file has no hash to check: a cut at a field boundary can leave a
    valid, smaller model (losing its metadata). It must then still compute the same."""
    data = onnx_bytes(models["mlr"])
    reference = Predictor.load(models["mlr"]).predict(ROWS)
    path = tmp_path / "cut.onnx"
    loaded = 0
    for cut in range(len(data)):
        path.write_bytes(data[:cut])
        try:
            p = Predictor.load(path, providers="cpu")
        except ModelLoadError:
            continue
        loaded += 1
        np.testing.assert_array_equal(p.predict(ROWS), reference)
    assert loaded < 10  # nearly every cut is refused


def test_bit_flips_in_artifacts_are_refused_before_onnxruntime(model_dir, no_ort):
    rng = random.Random(7)
    for name in ("model.onnx", "model.pt", "loss.png"):
        original = (model_dir / name).read_bytes()
        for _ in range(20):
            flipped = bytearray(original)
            flipped[rng.randrange(len(flipped))] ^= 1 << rng.randrange(8)
            (model_dir / name).write_bytes(bytes(flipped))
            refuse(model_dir, rf"{re.escape(name)}: sha256 [0-9a-f]+ does not match")
        (model_dir / name).write_bytes(original)
    assert not no_ort


def test_bit_flips_in_the_manifest_are_refused_or_leave_the_model_intact(models, model_dir):
    """The manifest is the root of trust and carries no checksum of itself: a flip
    that keeps it valid JSON in a field no check reads (a metric, a date) is not
    noticed (SECURITY.md). Whatever loads still runs the genuine, hash-checked ONNX."""
    reference = Predictor.load(models["mlr"]).predict(ROWS)
    original = (model_dir / "manifest.json").read_bytes()
    rng = random.Random(11)
    refused = 0
    for _ in range(60):
        flipped = bytearray(original)
        flipped[rng.randrange(len(flipped))] ^= 1 << rng.randrange(8)
        (model_dir / "manifest.json").write_bytes(bytes(flipped))
        try:
            p = Predictor.load(model_dir, providers="cpu")
        except ModelLoadError:
            refused += 1
            continue
        np.testing.assert_array_equal(p.predict(ROWS), reference)
    assert refused >= 30


def test_every_bit_flip_of_a_bare_onnx_file_is_refused_or_runs(models, tmp_path):
    """All 8 x size single-bit flips: ModelLoadError, or a model that scores like any
    model does (a finite prediction or InputError); never another exception."""
    data = onnx_bytes(models["mlr"])
    path = tmp_path / "flipped.onnx"
    outcomes = {"refused": 0, "loaded": 0}
    for i in range(len(data)):
        for bit in range(8):
            flipped = bytearray(data)
            flipped[i] ^= 1 << bit
            path.write_bytes(bytes(flipped))
            try:
                p = Predictor.load(path, providers="cpu")
            except ModelLoadError:
                outcomes["refused"] += 1
                continue
            outcomes["loaded"] += 1
            X = np.ones((5, p.n_features_in_))
            try:
                y = p.predict(X)
            except InputError:  # weights flipped to NaN or inf: the documented error
                continue
            assert y.shape == (5,) and np.isfinite(y).all()
    assert outcomes["refused"] > outcomes["loaded"] > 0  # bare files: see SECURITY.md


def test_swapped_onnx_is_refused(models, model_dir, no_ort):
    # another model's ONNX under the right name: the hash catches it before onnxruntime
    shutil.copy(models["lr"] / "model.onnx", model_dir / "model.onnx")
    refuse(model_dir, r"model\.onnx: size is|sha256")
    assert not no_ort


@pytest.mark.parametrize(
    ("other", "match"),
    [
        ("lr", r"its metadata names features \['area'\], the manifest \['area', 'latitude'"),
        ("mlr64", "dtype float64, the manifest says float32"),
        ("lr-no-metadata", "3 feature names for an input of 1 columns"),
        ("renamed-input", "input/output names 'x'/'prediction' differ from the manifest"),
    ],
)
def test_swapped_onnx_with_a_rewritten_manifest_is_refused(models, model_dir, other, match):
    """Past the hashes (manifest rewritten too), the signature and metadata still disagree."""
    import onnx

    if other in ("lr", "mlr64"):
        shutil.copy(models[other] / "model.onnx", model_dir / "model.onnx")
    else:
        m = onnx.load(models["lr" if other == "lr-no-metadata" else "mlr"] / "model.onnx")
        if other == "lr-no-metadata":
            del m.metadata_props[:]
        else:
            m.graph.input[0].name = "x"
            m.graph.node[0].input[1] = "x"
        (model_dir / "model.onnx").write_bytes(m.SerializeToString())
    rehash(model_dir)
    refuse(model_dir, match)


def test_graph_that_cannot_run_is_refused_at_load(models, tmp_path):
    """A bit-flipped bare file can parse but fail when run (a broken Reshape, a wrong
    weight shape) or return (n, 1): refused at load, not at the first predict."""
    import onnx
    from onnx import helper, numpy_helper

    base = onnx.load(models["mlr"] / "model.onnx")
    cases = {}
    wrong_weight = onnx.ModelProto()
    wrong_weight.CopyFrom(base)
    w = next(t for t in wrong_weight.graph.initializer if t.name == "weight")
    w.CopyFrom(numpy_helper.from_array(np.ones((4, 3), np.float32), "weight"))
    cases["weight (4, 3)"] = (wrong_weight, r"returns shape \(4,\), not \(1,\)|cannot run it")
    column = onnx.ModelProto()
    column.CopyFrom(base)
    shape = next(t for t in column.graph.initializer if t.name == "flat_shape")
    shape.CopyFrom(numpy_helper.from_array(np.array([-1, 1], np.int64), "flat_shape"))
    column.graph.output[0].CopyFrom(
        helper.make_tensor_value_info("prediction", onnx.TensorProto.FLOAT, ["batch", 1])
    )
    cases["(n, 1) output"] = (column, r"returns shape \(1, 1\)")
    for name, (model, match) in cases.items():
        path = tmp_path / f"{name}.onnx"
        path.write_bytes(model.SerializeToString())
        refuse(path, match)


def test_invalid_utf8_names_are_refused(models, tmp_path):
    data = onnx_bytes(models["mlr"])
    at = data.index(b"batch")
    path = tmp_path / "utf8.onnx"
    path.write_bytes(data[:at] + b"\xff" + data[at + 1 :])
    refuse(path, "not valid UTF-8|onnxruntime cannot load it")


# --------------------------------------------------------------------------------------
# External data and oversize tensors
# --------------------------------------------------------------------------------------


def external_model(directory: Path, location: str, target: Path) -> bytes:
    """The model with its weight moved to external data at ``location``, the weight's
    bytes really written at ``target`` (so only the check stands in the way)."""
    import onnx
    from onnx import numpy_helper

    m = onnx.load(directory / "model.onnx")
    weight = next(t for t in m.graph.initializer if t.name == "weight")
    raw = numpy_helper.to_array(weight).tobytes()
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(raw)
    weight.ClearField("raw_data")
    weight.ClearField("float_data")
    weight.data_location = onnx.TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", str(len(raw)))):
        entry = weight.external_data.add()
        entry.key, entry.value = key, value
    return m.SerializeToString()


@pytest.mark.parametrize(
    "location",
    ["../secret.bin", "../../etc/secret.bin", "ABSOLUTE", "weights.bin", "sub/../../secret.bin"],
)
def test_external_data_is_refused_before_onnxruntime(models, model_dir, tmp_path, no_ort, location):
    target = {
        "../secret.bin": tmp_path / "secret.bin",
        "../../etc/secret.bin": tmp_path.parent / "etc" / "secret.bin",
        "ABSOLUTE": tmp_path / "abs" / "secret.bin",
        "weights.bin": model_dir / "weights.bin",
        "sub/../../secret.bin": tmp_path / "secret.bin",
    }[location]
    if location == "ABSOLUTE":
        location = str(target)
    data = external_model(models["mlr"], location, target)
    (model_dir / "model.onnx").write_bytes(data)
    rehash(model_dir)
    refuse(model_dir, rf"refers to external data \(location {location!r}\)")
    bare = model_dir / "bare.onnx"
    bare.write_bytes(data)
    refuse(bare, "refers to external data")
    assert not no_ort


@pytest.mark.parametrize(
    ("dims", "match"),
    [
        ([10**9], r"declares dims \[1000000000\] of FLOAT .* but has only 12 bytes"),
        ([2**20, 2**20, 2**20], rf"more than {MAX_ELEMENTS} \(2\*\*40\) elements"),
        ([3, -1], "negative dimension"),
        ([2**62, 2**62], r"more than .* \(2\*\*40\) elements"),
    ],
)
def test_a_declared_tensor_far_larger_than_the_file_is_refused(
    models, model_dir, no_ort, dims, match
):
    import onnx

    m = onnx.load(models["mlr"] / "model.onnx")
    weight = next(t for t in m.graph.initializer if t.name == "weight")
    del weight.dims[:]
    weight.dims.extend(dims)
    data = m.SerializeToString()
    assert len(data) < 1000  # the file is tiny; the declared tensor is not
    (model_dir / "model.onnx").write_bytes(data)
    rehash(model_dir)
    refuse(model_dir, match)
    (model_dir / "bare.onnx").write_bytes(data)
    refuse(model_dir / "bare.onnx", match)
    assert not no_ort


def test_a_file_beyond_the_size_limit_is_not_read(tmp_path, no_ort):
    big = tmp_path / "big.onnx"
    with open(big, "wb") as f:  # sparse: takes no disk
        f.truncate(MAX_ONNX_BYTES + 1)
    refuse(big, "byte limit")
    assert not no_ort


# --------------------------------------------------------------------------------------
# Manifests
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [0, 2, 99, -1, "1", 1.0, True, None, [1], {"v": 1}])
def test_unknown_format_version_is_refused(model_dir, no_ort, version):
    data = read_manifest(model_dir)
    data["format_version"] = version
    write_manifest(model_dir, data)
    refuse(model_dir, "format_version")
    assert not no_ort


REQUIRED = [
    "format_version",
    "name",
    "created_at",
    "features",
    "target",
    "dtype",
    "onnx",
    "artifacts",
    "training",
    "metrics",
    "statistics",
    "versions",
    "onnx.file",
    "onnx.input",
    "onnx.output",
]


@pytest.mark.parametrize("field", REQUIRED)
def test_a_missing_field_is_refused(model_dir, no_ort, field):
    data = read_manifest(model_dir)
    parent, _, key = field.rpartition(".")
    del (data[parent] if parent else data)[key]
    write_manifest(model_dir, data)
    refuse(model_dir, "missing field|no 'format_version'")
    assert not no_ort


BAD_FIELDS = {
    "features": [[], "area", [1, 2, 3], ["area", "area", "x"], [""], None],
    "dtype": ["float16", "int64", None, 32],
    "onnx.file": ["../model.onnx", "/etc/passwd", "sub/model.onnx", "..", ".", "", "a\\b", "m\x00"],
    "onnx.input": ["features", {}, {"name": 5}, []],
    "onnx.output": [None, {"shape": []}],
    "statistics.covariance": [[[1.0]], "x", None, [[1, 2, 3, 4]] * 4 + [[0] * 4]],
    "statistics.df_resid": ["18", -1, 0, 1.5, True],
    "statistics.residual_variance": [-1.0, "x", [1]],
    "statistics.t_quantiles": [[1, 2], {"0.95": "x"}],
    "artifacts": [[], {"model.onnx": "abc"}, {"../model.onnx": {"size": 1, "sha256": "0" * 64}}],
    "artifacts.model.onnx": [{"size": -1, "sha256": "0" * 64}, {"size": 528}, {"sha256": "x"}],
}
BAD_CASES = [(f, v) for f, values in BAD_FIELDS.items() for v in values]


@pytest.mark.parametrize(("field", "value"), BAD_CASES, ids=[f"{f}={v!r}" for f, v in BAD_CASES])
def test_a_malformed_field_is_refused(model_dir, no_ort, field, value):
    data = read_manifest(model_dir)
    if field.startswith("artifacts.model.onnx"):
        data["artifacts"]["model.onnx"] = value
    else:
        parent, _, key = field.rpartition(".")
        (data[parent] if parent else data)[key] = value
    write_manifest(model_dir, data)
    refuse(model_dir)
    assert not no_ort


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
        (b'{"format_version": ' + b"1" * 5000 + b"}", "not valid JSON"),
        (b'{"name": "\xe9"}', "not valid JSON"),
        (b"\xff\xfe{\x00}\x00", "not valid JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (b'"manifest"', "expected a JSON object"),
        (b"", "not valid JSON"),
        (b" " * (MAX_MANIFEST_BYTES + 1), "larger than any real one|more than any real one"),
    ],
    ids=["deep", "5000-digits", "latin-1", "utf-16", "array", "string", "empty", "oversize"],
)
def test_a_manifest_that_is_not_json_is_refused(model_dir, no_ort, content, match):
    (model_dir / "manifest.json").write_bytes(content)
    refuse(model_dir, match)
    assert not no_ort


def test_special_files_in_place_of_artifacts_are_refused_without_hanging(
    models, model_dir, tmp_path, no_ort
):
    # a FIFO would block a read forever; a directory fails to open; a symlink could point
    # anywhere (here at a perfectly valid model outside the directory)
    data = read_manifest(model_dir)
    os.remove(model_dir / "model.pt")
    os.mkfifo(model_dir / "model.pt")
    data["artifacts"]["model.pt"] = {"size": 0, "sha256": "0" * 64}
    write_manifest(model_dir, data)
    refuse(model_dir, r"model\.pt: is not a regular file")
    os.remove(model_dir / "model.pt")
    os.mkdir(model_dir / "model.pt")
    data["artifacts"]["model.pt"] = {
        "size": os.stat(model_dir / "model.pt").st_size,
        "sha256": "0" * 64,
    }
    write_manifest(model_dir, data)
    refuse(model_dir, r"model\.pt: is not a regular file")
    os.rmdir(model_dir / "model.pt")
    shutil.copy(models["mlr"] / "model.pt", model_dir / "model.pt")
    write_manifest(model_dir, read_manifest(models["mlr"]))
    outside = tmp_path / "elsewhere.onnx"
    shutil.copy(model_dir / "model.onnx", outside)
    os.remove(model_dir / "model.onnx")
    os.symlink(outside, model_dir / "model.onnx")
    refuse(model_dir, "symbolic link")
    os.remove(model_dir / "model.onnx")
    refuse(model_dir, "listed in the manifest but missing")
    shutil.copy(outside, model_dir / "model.onnx")
    manifest = (model_dir / "manifest.json").read_bytes()
    os.remove(model_dir / "manifest.json")
    os.mkfifo(model_dir / "manifest.json")
    refuse(model_dir, "not a regular file")
    os.remove(model_dir / "manifest.json")
    os.mkdir(model_dir / "manifest.json")
    refuse(model_dir, "not a regular file")
    os.rmdir(model_dir / "manifest.json")
    os.remove(model_dir / "model.onnx")
    os.mkfifo(model_dir / "model.onnx")
    refuse(model_dir / "model.onnx", "no such model directory or .onnx file")
    assert not no_ort
    os.remove(model_dir / "model.onnx")
    shutil.copy(outside, model_dir / "model.onnx")
    (model_dir / "manifest.json").write_bytes(manifest)
    Manifest.read(model_dir).verify_artifacts(model_dir)  # the repaired directory verifies


# --------------------------------------------------------------------------------------
# Never unpickle, never load TorchScript
# --------------------------------------------------------------------------------------


class _Exploit:
    """Unpickling this runs ``open(marker, "w")``: proof that something unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickles_and_torchscript_under_the_model_name_are_refused(
    models, model_dir, tmp_path, no_ort
):
    marker = tmp_path / "unpickled"
    payloads = {
        "pickle": pickle.dumps(_Exploit(marker)),
        "pickle-protocol-0": pickle.dumps(_Exploit(marker), protocol=0),
        "torchscript": (models["mlr"] / "model.pt").read_bytes(),
        "numpy-object-array": _npy_with_pickle(marker),
    }
    for name, payload in payloads.items():
        bare = tmp_path / f"{name}.onnx"
        bare.write_bytes(payload)
        refuse(bare, "not an ONNX model")
        (model_dir / "model.onnx").write_bytes(payload)
        rehash(model_dir)
        refuse(model_dir, "not an ONNX model")
    # the manifest pointing the runtime at the TorchScript file (its hash is genuine)
    shutil.copy(models["mlr"] / "model.onnx", model_dir / "model.onnx")
    data = read_manifest(models["mlr"])
    data["onnx"]["file"] = "model.pt"
    write_manifest(model_dir, data)
    refuse(model_dir, r"model\.pt: not an ONNX model")
    refuse(model_dir / "model.pt", "not an ONNX model")
    assert not marker.exists() and not no_ort


def _npy_with_pickle(marker: Path) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, np.array([_Exploit(marker)], dtype=object), allow_pickle=True)
    return buf.getvalue()


FORBIDDEN_MODULES = {
    "pickle",
    "_pickle",
    "cPickle",
    "dill",
    "cloudpickle",
    "joblib",
    "shelve",
    "marshal",
    "torch",
}


def test_inference_source_never_imports_unpicklers_or_torch():
    """Every module of the inference package, read as code (not text: messages may say
    "cannot be pickled")."""
    files = sorted((ROOT / "inference").glob("*.py"))
    assert len(files) >= 8
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [(node.module or "").split(".")[0]]
            else:
                names = []
            assert not FORBIDDEN_MODULES & set(names), f"{path.name}:{node.lineno} imports {names}"
            if isinstance(node, ast.Attribute):
                assert node.attr not in ("jit", "Unpickler"), f"{path.name}:{node.lineno}"
                assert not (
                    node.attr in ("load", "loads") and _name(node.value) in FORBIDDEN_MODULES
                )
            if isinstance(node, ast.keyword) and node.arg == "allow_pickle":
                assert isinstance(node.value, ast.Constant) and node.value.value is False
            if isinstance(node, ast.Call) and _name(node.func) in ("eval", "exec", "__import__"):
                raise AssertionError(f"{path.name}:{node.lineno} calls {_name(node.func)}")


def _name(node: ast.AST) -> str:
    return node.id if isinstance(node, ast.Name) else ""


@pytest.mark.slow
def test_loading_and_predicting_neither_unpickles_nor_imports_torch(models):
    """In a fresh interpreter where ``import torch`` fails and every unpickling entry
    point raises: load a directory and a bare file, predict with arrays, a DataFrame,
    records, intervals and predict_one."""
    code = f"""
import sys, pickle, io
sys.modules["torch"] = None
def forbidden(*a, **k):
    raise AssertionError("something unpickled")
pickle.load = pickle.loads = forbidden
pickle.Unpickler = forbidden
import numpy as np
np.load = forbidden
import pandas as pd
import inference
d = inference.Predictor.load({str(models["mlr"])!r})
b = inference.Predictor.load({str(models["mlr"] / "model.onnx")!r})
X = np.array([[3.0, 42.0, 10.0], [1.5, 41.1, 0.3]])
for p in (d, b):
    p.predict(X); p.predict(pd.DataFrame(X, columns=p.features))
    p.predict([dict(zip(p.features, r)) for r in X.tolist()])
    p.predict_one(area=3.0, latitude=42.0, dist_mainland=10.0)
d.predict(X, interval="prediction")
loaded = [m for m, v in sys.modules.items() if v is not None]
assert not [m for m in loaded if m == "torch" or m.startswith("torch.")], "torch loaded"
assert "training" not in sys.modules
print("ok")
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("ok")
