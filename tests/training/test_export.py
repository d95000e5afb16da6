"""Export: artifacts proven equal to the eager model, atomic, self-describing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx.reference import ReferenceEvaluator

from inference import ModelLoadError, Predictor
from inference.io.atomic import host_tag
from inference.manifest import FORMAT_VERSION, MLFLOW_FILES, Manifest, file_digest
from training.data import load_dataset
from training.export import ExportError, export_model
from training.export import exporter as export_mod
from training.export import publish as publish_mod
from training.export.graph import graph_description
from training.pipeline import train

DATASETS = ["plant_richness_lr", "plant_richness_mlr"]
DTYPES = ["float32", "float64"]

# A fresh interpreter in which the project cannot be imported: only torch loads the file.
JIT_LOAD = """
import sys
for name in ("training", "inference"):
    sys.modules[name] = None
import numpy as np, torch
m = torch.jit.load(sys.argv[1])
x = torch.from_numpy(np.load(sys.argv[2]))
with torch.no_grad():
    np.save(sys.argv[3], m(x).numpy())
"""


def eager(run, X):
    module = run.estimator.module_
    with torch.no_grad():
        return module(torch.from_numpy(np.asarray(X)).to(module.weight.dtype)).numpy().reshape(-1)


def rel_err(a, b):
    return float(np.abs(np.asarray(a, float) - np.asarray(b, float)).max() / np.abs(b).max())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dataset", DATASETS)
def test_round_trip(exported, tmp_path, dataset, dtype):
    run, out = exported(dataset, dtype)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["loss.png", "manifest.json", "model.onnx", "model.pt", "regression.png", *MLFLOW_FILES]
    )
    rng = np.random.default_rng(1)
    X = np.vstack(
        [run.X_train, run.X_train.mean(0) + rng.standard_normal((500, run.X_train.shape[1]))]
    )
    expected = eager(run, X)
    p = Predictor.load(out, providers="cpu")
    assert p.dtype == np.dtype(dtype) and p.features == run.features
    got = p.predict(X)
    assert got.dtype == np.dtype(dtype) and got.shape == (len(X),)
    assert rel_err(got, expected) <= 1e-5
    # dynamic batch axis: 1 row and N rows
    assert rel_err(p.predict(X[:1]), expected[:1]) <= 1e-5
    assert rel_err(p.predict(X[:7]), expected[:7]) <= 1e-5
    # TorchScript in a fresh process without the project
    np.save(tmp_path / "x.npy", X.astype(dtype))
    subprocess.run(
        [
            sys.executable,
            "-c",
            JIT_LOAD,
            str(out / "model.pt"),
            str(tmp_path / "x.npy"),
            str(tmp_path / "y.npy"),
        ],
        check=True,
        cwd=tmp_path,
        timeout=120,
    )
    ts = np.load(tmp_path / "y.npy")
    assert ts.shape == (len(X), 1) and ts.dtype == np.dtype(dtype)
    assert rel_err(ts.reshape(-1), expected) <= 1e-5


@pytest.mark.parametrize("dataset", DATASETS)
def test_onnx_file_is_valid_and_self_describing(exported, dataset):
    run, out = exported(dataset, "float32")
    model = onnx.load(out / "model.onnx")
    onnx.checker.check_model(model, full_check=True)
    meta = {p.key: p.value for p in model.metadata_props}
    assert json.loads(meta["linreg.features"]) == run.features
    assert meta["linreg.target"] == "ntv_rich" and meta["linreg.dtype"] == "float32"
    (inp,), (outp,) = model.graph.input, model.graph.output
    assert [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim] == [
        "batch",
        len(run.features),
    ]
    assert [d.dim_param for d in outp.type.tensor_type.shape.dim] == ["batch"]
    assert model.opset_import[0].version <= 20  # onnxruntime 1.17 runs up to opset 20
    # a bare model.onnx describes itself to the loader
    bare = Predictor.load(out / "model.onnx")
    assert bare.features == run.features and bare.target == "ntv_rich" and bare.manifest is None


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    ("dataset", "ops"),
    [("plant_richness_lr", ["Reshape", "Mul", "Add"]), ("plant_richness_mlr", ["Gemm", "Reshape"])],
)
def test_reference_evaluator_agrees_with_onnxruntime(exported, dtype, dataset, ops):
    run, out = exported(dataset, dtype)
    model = onnx.load(out / "model.onnx")
    assert [n.op_type for n in model.graph.node] == ops  # one feature: elementwise
    assert Manifest.read(out).data["onnx"]["graph"] == graph_description(len(run.features))
    scale, shift = ([1, 2, 10], [2, 42, 15]) if len(run.features) == 3 else ([1], [2])
    X = np.random.default_rng(2).normal(size=(64, len(run.features))) * scale + shift
    X = X.astype(dtype)
    ref = ReferenceEvaluator(str(out / "model.onnx")).run(None, {"features": X})[0]
    ort = Predictor.load(out).predict(X)
    np.testing.assert_allclose(ort, ref, rtol=1e-6 if dtype == "float32" else 1e-12)
    # and both are the fitted model: independent numpy computation
    np.testing.assert_allclose(
        ref, X.astype(float) @ run.estimator.coef_ + run.estimator.intercept_, rtol=1e-5
    )


def test_manifest_holds_the_contract(exported):
    run, out = exported("plant_richness_mlr", "float64")
    m = Manifest.read(out)
    d = m.data
    assert d["format_version"] == FORMAT_VERSION and d["name"] == "model"
    assert d["features"] == ["area", "latitude", "dist_mainland"] and d["target"] == "ntv_rich"
    assert d["dtype"] == "float64" and d["created_at"].endswith("Z")
    for name, entry in d["artifacts"].items():
        assert entry == file_digest(out / name)
    assert set(d["artifacts"]) == {"model.onnx", "model.pt", "regression.png", "loss.png"} | set(
        MLFLOW_FILES
    )
    tr = d["training"]
    assert tr["converged"] is True and tr["epochs_run"] == run.estimator.n_epochs_
    assert tr["lr_used"] == pytest.approx(run.estimator.lr_) and tr["seed"] == 0
    st = d["statistics"]
    assert np.array(st["covariance"]).shape == (4, 4)
    np.testing.assert_allclose(st["covariance"], run.statistics.covariance)
    assert st["df_resid"] == 18 and set(st["t_quantiles"]) == {"0.90", "0.95", "0.99"}
    assert d["metrics"]["train"]["r2"] == pytest.approx(run.statistics.r2)
    assert set(d["versions"]) == {"torch", "onnx", "onnxruntime", "numpy", "linreg"}
    assert d["verification"]["max_relative_error"]["onnx"] <= 1e-5
    assert d["verification"]["rows"] == {"training rows": 22, "10000 random rows": 10000}


def test_tampered_artifact_is_detected(exported, tmp_path):
    _, out = exported("plant_richness_lr", "float32")
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    data = bytearray((copy / "model.onnx").read_bytes())
    data[len(data) // 2] ^= 0x01
    (copy / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match=r"model\.onnx: sha256 .* does not match the manifest"):
        Predictor.load(copy)


def _snapshot(directory):
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def test_broken_export_fails_and_leaves_destination_untouched(tmp_path, monkeypatch):
    run = train(load_dataset("plant_richness_lr"), progress=False)
    dest = tmp_path / "model"
    export_model(run, dest)
    before = _snapshot(dest)
    real = export_mod.build_onnx

    def patched(coef, intercept, **kw):  # a graph that disagrees with the model
        return real(np.asarray(coef) * 1.001, intercept, **kw)

    monkeypatch.setattr(export_mod, "build_onnx", patched)
    with pytest.raises(
        ExportError,
        match=r"the onnx artifact differs from the eager model on the training rows by "
        r"[\d.e-]+ \(relative\), above the tolerance 1e-05",
    ):
        export_model(run, dest, overwrite=True)
    assert _snapshot(dest) == before
    fresh = tmp_path / "fresh"
    with pytest.raises(ExportError):
        export_model(run, fresh)
    assert not fresh.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no temporary left


def test_replacing_needs_the_flag(tmp_path):
    run = train(load_dataset("plant_richness_lr"), progress=False)
    dest = export_model(run, tmp_path / "m")
    with pytest.raises(ExportError, match="already exists; pass overwrite=True"):
        export_model(run, dest)
    other = train(
        load_dataset("plant_richness_lr"), preset="tutorial", max_epochs=50, progress=False
    )
    export_model(other, dest, overwrite=True, allow_unconverged=True)  # 50 epochs: unconverged
    assert Predictor.load(dest).manifest.data["training"]["preset"] == "tutorial"
    (tmp_path / "notamodel").mkdir()
    with pytest.raises(ExportError, match="is not a model directory"):
        export_model(run, tmp_path / "notamodel", overwrite=True)


def test_same_seed_same_bytes(tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    outs = []
    for i in range(2):
        run = train(load_dataset("plant_richness_mlr"), progress=False, seed=7)
        outs.append(export_model(run, tmp_path / f"m{i}", name="same"))
    a, b = (_snapshot(o) for o in outs)
    assert a["model.onnx"] == b["model.onnx"]
    assert a["model.pt"] == b["model.pt"]
    assert a["regression.png"] == b["regression.png"] and a["loss.png"] == b["loss.png"]
    assert a["manifest.json"] == b["manifest.json"]
    assert json.loads(a["manifest.json"])["created_at"] == "2023-11-14T22:13:20Z"


def _dead_pid():
    """The id of a process that has exited and been reaped."""
    proc = subprocess.Popen([sys.executable, "-c", ""])
    proc.wait()
    return proc.pid


def _beside(dest):
    return sorted(p.name for p in dest.parent.iterdir() if p.name != dest.name)


@pytest.mark.slow
@pytest.mark.skipif(os.name != "posix", reason="process ids are probed with os.kill(pid, 0)")
def test_leftovers_of_dead_writers_are_removed_those_of_live_ones_kept(tmp_path):
    run = train(load_dataset("plant_richness_lr"), progress=False)
    dest = export_model(run, tmp_path / "m")
    host = host_tag()
    other_host = f"{int(host, 16) ^ 1:08x}"
    dead, live = f"{host}-{_dead_pid()}", f"{host}-{os.getpid()}"
    removed = [f".m.tmp-{dead}-abc_123x", f".m.old-{dead}-0badcafe"]
    kept = [
        f".m.tmp-{live}-abcdefgh",  # a live writer's staging directory
        f".m.old-{live}-0badcafe",
        f".m.tmp-{other_host}-{dead.split('-')[1]}-abcdefgh",  # another host's
        ".m.tmp-k2x9_q0z",  # not <host>-<pid>-<random>: not ours to judge
        f".m.old-{dead}",
        f".m.tmp-{host}-{10**30}-abcdefgh",
        f".mm.tmp-{dead}-abcdefgh",  # another destination's
        f".m.tmp-{dead}-ab.cd",
    ]
    for name in removed + kept:
        (tmp_path / name).mkdir()
        (tmp_path / name / "model.onnx").write_bytes(b"partial")
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "data").write_text("keep")
    (tmp_path / f".m.tmp-{dead}-symlink0").symlink_to(precious)  # never followed
    kept += [f".m.tmp-{dead}-symlink0", "precious"]
    export_model(run, dest, overwrite=True)
    assert _beside(dest) == sorted(kept)
    assert (precious / "data").read_text() == "keep"
    Predictor.load(dest)


@pytest.mark.slow
@pytest.mark.skipif(os.name != "posix", reason="process ids are probed with os.kill(pid, 0)")
def test_missing_model_is_restored_from_a_dead_writers_old_copy(tmp_path):
    """A writer without renameat2 killed between its two renames: the model is complete
    under ``.m.old-<host>-<pid>-*``, the new one under ``.m.tmp-<host>-<pid>-*``, nothing
    at ``m``."""
    run = train(load_dataset("plant_richness_lr"), progress=False)
    dest = export_model(run, tmp_path / "m")
    before = _snapshot(dest)
    writer = f"{host_tag()}-{_dead_pid()}"
    shutil.copytree(dest, tmp_path / f".m.tmp-{writer}-abcdefgh")
    dest.rename(tmp_path / f".m.old-{writer}-0badcafe")
    # the export restores the old model before it looks at the destination
    with pytest.raises(ExportError, match="already exists; pass overwrite=True"):
        export_model(run, dest)
    assert _snapshot(dest) == before and _beside(dest) == []
    # an incomplete copy (an artifact changed after export) is not restored, but removed
    dest.rename(tmp_path / f".m.old-{writer}-0badcafe")
    (tmp_path / f".m.old-{writer}-0badcafe" / "loss.png").write_bytes(b"truncated")
    other = train(load_dataset("plant_richness_lr"), max_epochs=50, progress=False)
    export_model(other, dest)
    assert Predictor.load(dest).manifest.data["training"]["max_epochs"] == 50
    assert _beside(dest) == []


def test_fallback_puts_the_old_model_back_when_the_new_one_cannot_move_in(tmp_path, monkeypatch):
    run = train(load_dataset("plant_richness_lr"), progress=False)
    dest = export_model(run, tmp_path / "m")
    before = _snapshot(dest)
    real_rename = os.rename

    def rename(src, dst):
        if Path(src).name.startswith(".m.tmp-"):
            raise OSError(28, "No space left on device")
        real_rename(src, dst)

    monkeypatch.setattr(publish_mod, "exchange", lambda a, b: False)
    monkeypatch.setattr(export_mod.os, "rename", rename)
    with pytest.raises(OSError, match="No space left"):
        export_model(run, dest, overwrite=True)
    monkeypatch.undo()
    assert _snapshot(dest) == before and _beside(dest) == []


@pytest.mark.skipif(sys.platform != "linux", reason="renameat2 is Linux")
def test_exchange_raises_on_errors_other_than_unsupported(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "x").write_text("a")
    if not publish_mod.exchange(a, b):
        pytest.skip("this file system refuses RENAME_EXCHANGE")
    assert (b / "x").read_text() == "a" and not (a / "x").exists()
    with pytest.raises(FileNotFoundError, match="RENAME_EXCHANGE"):
        publish_mod.exchange(tmp_path / "missing", b)


# Trains plant_richness_lr and exports it twice: with SOURCE_DATE_EPOCH, then without.
EXPORT_IN_A_FRESH_PROCESS = """
import os, sys
import torch
from training.data import load_dataset
from training.export import export_model
from training.pipeline import train

if sys.argv[2] == "after-another-linear":  # as `linreg regenerate` does before its 2nd model
    torch.jit.script(torch.nn.Linear(3, 1))
run = train(load_dataset("plant_richness_lr"), progress=False, seed=0)
export_model(run, sys.argv[1] + "/epoch", name="same")
del os.environ["SOURCE_DATE_EPOCH"]
export_model(run, sys.argv[1] + "/now", name="same")
"""


def _hash_seed_reordering_a_set():
    """A PYTHONHASHSEED under which a set of two names iterates unlike under seed 0."""
    code = "print(list({'in_features', 'out_features'}))"

    def order(seed):
        env = {**os.environ, "PYTHONHASHSEED": str(seed)}
        return subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        ).stdout

    return next(seed for seed in range(1, 64) if order(seed) != order(0))


@pytest.mark.slow
def test_same_seed_same_bytes_in_two_processes(tmp_path):
    """The README's claim, across processes: every file the same with SOURCE_DATE_EPOCH;
    without it, the manifest differs only in ``created_at``.

    The two processes differ in their string hash seed (TorchScript collected
    ``nn.Linear``'s constants in a set) and in whether another ``nn.Linear`` was
    scripted first (TorchScript then mangled the class name).
    """
    root = Path(__file__).resolve().parents[2]
    procs = []
    for i, (seed, first) in enumerate(
        [(0, "nothing"), (_hash_seed_reordering_a_set(), "after-another-linear")]
    ):
        env = {
            **os.environ,
            "PYTHONPATH": str(root),
            "PYTHONHASHSEED": str(seed),
            "SOURCE_DATE_EPOCH": "1700000000",
        }
        out = tmp_path / f"process{i}"
        cmd = [sys.executable, "-c", EXPORT_IN_A_FRESH_PROCESS, str(out), first]
        procs.append((out, subprocess.Popen(cmd, cwd=tmp_path, env=env, stderr=subprocess.PIPE)))
    for _, proc in procs:
        assert proc.wait(timeout=120) == 0, proc.stderr.read().decode()
    (a, _), (b, _) = procs
    files = ["loss.png", "manifest.json", "model.onnx", "model.pt", "regression.png"]
    files = sorted([*files, *MLFLOW_FILES])
    assert sorted(p.name for p in (a / "epoch").iterdir()) == files
    for name in sorted(files, key=lambda n: n == "manifest.json"):  # it holds the others' sha256
        assert (a / "epoch" / name).read_bytes() == (b / "epoch" / name).read_bytes(), name
    for name in ("loss.png", "model.onnx", "model.pt", "regression.png"):
        assert (a / "epoch" / name).read_bytes() == (b / "now" / name).read_bytes(), name
    epoch, now = (json.loads((d / "manifest.json").read_text()) for d in (a / "epoch", b / "now"))
    assert epoch.pop("created_at") == "2023-11-14T22:13:20Z"
    now.pop("created_at")
    assert epoch == now
    # and the deterministic TorchScript is still the fitted nn.Linear to torch.jit.load
    scripted = torch.jit.load(str(b / "epoch" / "model.pt"))
    assert scripted.original_name == "Linear"
    assert (scripted.in_features, scripted.out_features) == (1, 1)


def test_committed_models_match_a_fresh_regeneration(tmp_path):
    committed = Path(__file__).resolve().parents[2] / "exported_models"
    for name in DATASETS:
        run = train(load_dataset(name), progress=False, seed=0)
        fresh = export_model(run, tmp_path / name, name=name)
        old, new = Predictor.load(committed / name), Predictor.load(fresh)
        X = run.X_train
        np.testing.assert_array_equal(old.predict(X), new.predict(X))
        assert (committed / name / "model.onnx").read_bytes() == (fresh / "model.onnx").read_bytes()


def test_float64_end_to_end(exported):
    run, out = exported("plant_richness_lr", "float64")
    assert run.estimator.module_.weight.dtype == torch.float64
    p = Predictor.load(out)
    y = p.predict(np.array([[3.0]]))
    assert y.dtype == np.float64
    assert y[0] == pytest.approx(2.4032664, abs=1e-6)
    assert os.path.getsize(out / "model.onnx") > 0
