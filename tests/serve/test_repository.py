"""The model repository in-process: Triton's layout, version policies, and the order of
changes (a new version is loaded and verified before the old one goes; a failed load
leaves the old one serving and says why; polling goes on after a failure).

The versions are copies of the bundled models; a corrupt version is a copy with one
changed byte in ``model.onnx`` (its sha256 no longer matches the manifest). Each
answer is compared with ``Predictor.load`` of the version's own directory.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from inference import Predictor
from inference.errors import ModelLoadError
from tests.serve.conftest import BUNDLED

pytest.importorskip("onnxruntime")
from inference.serve import models as models_module  # noqa: E402
from inference.serve.models import ModelRegistry  # noqa: E402
from inference.serve.registry import ModelNotFound, ModelNotReady  # noqa: E402
from inference.serve.repository import (  # noqa: E402
    VersionPolicy,
    read_policy,
    scan_repository,
    version_dirs,
)

MLR = BUNDLED / "plant_richness_mlr"
ROW = {"area": 3.2, "latitude": 41.5, "dist_mainland": 120.0}


def add_version(repo: Path, version: int | str, source: Path = MLR, corrupt: bool = False) -> Path:
    """Copy ``source`` in as a version, atomically (a hidden name, then a rename)."""
    tmp = repo / "plants" / f".incoming-{version}"
    shutil.copytree(source, tmp)
    if corrupt:
        onnx = bytearray((tmp / "model.onnx").read_bytes())
        onnx[-20] ^= 0x01
        (tmp / "model.onnx").write_bytes(bytes(onnx))
    final = repo / "plants" / str(version)
    tmp.rename(final)
    return final


def registry_of(repo: Path, **kwargs) -> ModelRegistry:
    return ModelRegistry(
        list(scan_repository(repo).values()), threads=1, root=repo, poll_new=True, **kwargs
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "plants").mkdir()
    add_version(tmp_path, 1)
    return tmp_path


def test_policies_choose_versions_as_triton_does(tmp_path):
    assert VersionPolicy().select([1, 3, 2]) == [3]
    assert VersionPolicy("latest", num_versions=2).select([1, 3, 2]) == [3, 2]
    assert VersionPolicy("all").select([1, 3, 2]) == [3, 2, 1]
    assert VersionPolicy("specific", versions=(1, 7)).select([1, 3, 2]) == [1]
    config = tmp_path / "config.json"
    assert read_policy(tmp_path) == VersionPolicy()
    config.write_text(json.dumps({"version_policy": {"latest": {"num_versions": 2}}}))
    assert read_policy(tmp_path) == VersionPolicy("latest", num_versions=2)
    config.write_text(json.dumps({"version_policy": {"specific": {"versions": ["1", 3]}}}))
    assert read_policy(tmp_path) == VersionPolicy("specific", versions=(1, 3))
    config.write_text(json.dumps({"platform": "onnxruntime_onnx", "version_policy": {"all": {}}}))
    assert read_policy(tmp_path) == VersionPolicy("all")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"version_policy": {"newest": {}}}', "unknown policy 'newest'"),
        ('{"version_policy": {"latest": {"num_versions": 0}}}', "num_versions is 0"),
        ('{"version_policy": {"specific": {"versions": [-1]}}}', "-1 is not a non-negative"),
        ('{"version_policy":\n  [1]}', "expected one of"),
        ('{"version_policy": {"all": {}}', "line 1, column"),
    ],
)
def test_a_bad_config_says_what_and_where(tmp_path, text, message):
    (tmp_path / "config.json").write_text(text)
    with pytest.raises(ModelLoadError, match="config.json") as err:
        read_policy(tmp_path)
    assert message in str(err.value)


def test_only_integer_folders_are_versions(tmp_path):
    for name in ("1", "20", "007", "-3", "v2", "0"):
        (tmp_path / name).mkdir()
    (tmp_path / "5").write_text("a file, not a folder")
    assert sorted(version_dirs(tmp_path)) == [0, 1, 20]


def test_a_new_version_is_ready_before_the_old_one_goes(repo, monkeypatch):
    registry = registry_of(repo)
    registry.load_now()
    first = registry.resolve("plants")
    assert first.version == "1" and registry.ready()
    seen_during_load = []
    real = models_module.load_version

    def watching(path, **kwargs):
        # what a request for the default version gets while version 2 loads
        seen_during_load.append(registry.resolve("plants").version)
        return real(path, **kwargs)

    monkeypatch.setattr(models_module, "load_version", watching)
    v2 = add_version(repo, 2)
    events, failures = registry.sync("plants")
    assert failures == [] and seen_during_load == ["1"]
    assert [(name, result) for _, name, result in events] == [
        ("plants", "loaded"),
        ("plants", "unloaded"),
    ]
    model = registry.resolve("plants")
    assert model.version == "2" and model.path == v2 and registry.versions("plants") == ["2"]
    X = np.array([list(ROW.values())], dtype=np.float32)
    assert np.array_equal(model.predictor.predict(X), Predictor.load(v2).predict(X))
    with pytest.raises(ModelNotReady, match="not in the version policy"):
        registry.resolve("plants", "1")
    with pytest.raises(ModelNotFound, match="no version '9'"):
        registry.resolve("plants", "9")
    with pytest.raises(ModelNotFound, match="no model 'trees'"):
        registry.resolve("trees")


def test_a_corrupt_version_leaves_the_old_one_serving_and_polling_goes_on(repo, monkeypatch):
    registry = registry_of(repo)
    registry.load_now()
    add_version(repo, 3, corrupt=True)
    events, failures = registry.sync("plants")
    assert len(failures) == 1 and "version 3" in failures[0] and "sha256" in failures[0]
    assert [result for _, _, result in events] == ["refused"]
    assert registry.resolve("plants").version == "1"
    index = {e["version"]: e for e in registry.index()}
    assert index["1"]["state"] == "READY"
    assert index["3"]["state"] == "UNAVAILABLE" and "sha256" in index["3"]["reason"]
    # the same files are not loaded again on the next poll ...
    calls = []
    real = models_module.load_version
    monkeypatch.setattr(
        models_module, "load_version", lambda path, **kw: calls.append(path) or real(path, **kw)
    )
    asyncio.run(registry.check())
    assert calls == []
    # ... but polling goes on: a good version 4 replaces version 1
    add_version(repo, 4)
    asyncio.run(registry.check())
    assert registry.resolve("plants").version == "4" and registry.versions("plants") == ["4"]
    # and corrected files of version 3 are loaded (the policy wants 4 now, so not served)
    shutil.rmtree(repo / "plants" / "3")
    add_version(repo, 3)
    asyncio.run(registry.check())
    index = {e["version"]: e for e in registry.index()}
    assert index["3"]["state"] == "UNAVAILABLE" and "version policy" in index["3"]["reason"]


def test_a_policy_of_all_and_a_bad_config_that_keeps_what_serves(repo):
    add_version(repo, 2)
    config = repo / "plants" / "config.json"
    config.write_text(json.dumps({"version_policy": {"all": {}}}))
    registry = registry_of(repo)
    registry.load_now()
    assert registry.versions("plants") == ["2", "1"]
    config.write_text("{not json")
    _, failures = registry.sync("plants")
    assert failures and "config.json" in failures[0]
    assert registry.versions("plants") == ["2", "1"]  # still serving


def test_explicit_control_loads_and_unloads(repo):
    (repo / "empty").mkdir()
    registry = registry_of(repo, wanted=set())
    registry.load_now()
    assert registry.ready()  # nothing to load at start
    with pytest.raises(ModelNotReady, match="not loaded"):
        registry.resolve("plants")
    index = registry.index()
    empty = {"name": "empty", "version": "", "state": "UNAVAILABLE"}
    assert {**empty, "reason": "no version folder (an integer)"} in index
    assert {
        "name": "plants",
        "version": "1",
        "state": "UNAVAILABLE",
        "reason": "not loaded",
    } in index
    asyncio.run(registry.load("plants"))
    assert registry.resolve("plants", "1").version == "1"
    asyncio.run(registry.unload("plants"))
    with pytest.raises(ModelNotReady):
        registry.resolve("plants", "1")
    assert registry.index(ready_only=True) == []
    with pytest.raises(ModelLoadError, match="no version folder"):
        asyncio.run(registry.load("empty"))
    with pytest.raises(ModelNotFound):
        asyncio.run(registry.load("nothing"))


def test_readiness_waits_for_start_up(repo):
    registry = registry_of(repo)
    assert not registry.ready()
    with pytest.raises(ModelNotReady, match="loading"):
        registry.resolve("plants")
    asyncio.run(registry.start())
    assert registry.ready()


def test_a_model_folder_that_appears_or_goes_while_polling(repo):
    registry = registry_of(repo)
    registry.load_now()
    other = repo / "trees"
    other.mkdir()
    shutil.copytree(MLR, other / "1")
    asyncio.run(registry.check())
    assert registry.resolve("trees").version == "1"
    shutil.rmtree(other)
    asyncio.run(registry.check())
    with pytest.raises(ModelNotFound):
        registry.resolve("trees")


def test_grpc_is_imported_only_for_a_grpc_port():
    """An HTTP-only server never imports grpcio or protobuf (--grpc-port does, lazily)."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import inference.serve.app, linreg.serve\n"
        "loaded = [m for m in sys.modules if m.split('.')[0] in ('grpc', 'google')]\n"
        "assert not loaded, loaded\n"
        "assert 'inference.serve.grpc_server' not in sys.modules\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


def test_the_index_body_and_model_control_off():
    from types import SimpleNamespace

    from inference.serve.control import change, ready_only
    from inference.serve.responses import ApiError

    assert ready_only(b"") is False and ready_only(b" \n") is False
    assert ready_only(b'{"ready": true}') is True and ready_only(b"{}") is False
    with pytest.raises(ApiError, match="expected true or false"):
        ready_only(b'{"ready": "yes"}')
    with pytest.raises(ApiError, match="expected an object"):
        ready_only(b"[1]")
    server = SimpleNamespace(settings=SimpleNamespace(model_control_mode="none"))
    with pytest.raises(ApiError, match="model control is off") as err:
        asyncio.run(change(server, "plants", "load"))
    assert err.value.status == 400
