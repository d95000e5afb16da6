"""A model repository served with trusted keys: only versions signed by them load.

In-process (the registry ``linreg serve --model-repository DIR --trusted-key K`` builds):
version 1 signed by the trusted key serves; version 2 signed by another key and
version 3 unsigned are refused with the reason in the repository index, and version 1
goes on answering, its predictions those of ``Predictor.load`` on its own directory.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from inference import Predictor
from inference.signing import sign_directory
from tests.serve.conftest import BUNDLED
from tests.signing.conftest import make_keys

pytest.importorskip("onnxruntime")
from inference.serve.models import ModelRegistry  # noqa: E402
from inference.serve.repository import scan_repository  # noqa: E402

MLR = BUNDLED / "plant_richness_mlr"
ROW = np.array([[3.2, 41.5, 120.0]], dtype=np.float32)


def _version(repo: Path, version: int, key: Path | None) -> Path:
    tmp = repo / "plants" / f".incoming-{version}"
    shutil.copytree(MLR, tmp)
    if key is not None:
        sign_directory(tmp, key)
    final = repo / "plants" / str(version)
    tmp.rename(final)
    return final


def test_only_versions_signed_by_a_trusted_key_are_served(tmp_path: Path) -> None:
    trusted_private, trusted_public = make_keys(tmp_path, "trusted")
    other_private, _ = make_keys(tmp_path, "other")
    repo = tmp_path / "repo"
    (repo / "plants").mkdir(parents=True)
    first = _version(repo, 1, trusted_private)
    registry = ModelRegistry(
        list(scan_repository(repo).values()),
        threads=1,
        root=repo,
        poll_new=True,
        trusted_keys=[str(trusted_public)],
    )
    registry.load_now()
    assert registry.resolve("plants").version == "1"
    want = Predictor.load(first).predict(ROW)

    for version, key, why in ((2, other_private, "not trusted"), (3, None, "not signed")):
        _version(repo, version, key)
        _, failures = registry.sync("plants")
        assert len(failures) == 1 and why in failures[0], failures
        assert registry.resolve("plants").version == "1"
        states = {row["version"]: row for row in registry.index()}
        assert states[str(version)]["state"] != "READY"
        assert why in states[str(version)]["reason"]
        served = registry.resolve("plants").predictor.predict(ROW)
        np.testing.assert_array_equal(served, want)

    _version(repo, 4, trusted_private)
    _, failures = registry.sync("plants")
    assert failures == [] and registry.resolve("plants").version == "4"
