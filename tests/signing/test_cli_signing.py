"""``linreg keygen``, ``sign``, ``verify``, ``predict --trusted-key`` and ``train --sign-key``
(in-process through ``linreg.main.main``), and ``export_model(..., sign_key=...)``."""

from __future__ import annotations

import base64
import csv
import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest

from inference import Predictor
from inference.manifest import Manifest
from inference.signing import SIGNATURE_NAME, verify_directory
from linreg.main import main
from tests.signing.conftest import ROOT

ISLANDS = ROOT / "docs" / "data" / "islands.csv"


def test_keygen_sign_verify(tmp_path: Path, model: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["keygen"]) == 0
    assert stat.S_IMODE((tmp_path / "private.pem").stat().st_mode) == 0o600
    out = capsys.readouterr().out
    assert "public key  public.pem (hint " in out
    assert main(["keygen"]) == 1  # never replaces a key
    assert "already exists" in capsys.readouterr().err
    assert main(["sign", str(model), "--key", "private.pem"]) == 0
    assert (model / SIGNATURE_NAME).is_file()
    assert main(["verify", str(model), "--public-key", "public.pem", "--json"]) == 0
    report = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert report["verified"] and set(report["files"]) == {
        p.name for p in model.iterdir() if p.name != SIGNATURE_NAME
    }
    assert (
        main(["keygen", "--private-key", "b.pem", "--public-key", "b.pub", "--curve", "P-384"]) == 0
    )
    assert main(["verify", str(model), "--public-key", "b.pub"]) == 1
    assert "signed by a key that is not trusted" in capsys.readouterr().err
    assert main(["verify", str(model), "--public-key", "b.pub", "--public-key", "public.pem"]) == 0
    (model / "model.pt").write_bytes(b"x")
    assert main(["verify", str(model), "--public-key", "public.pem"]) == 1
    assert "model.pt: changed since it was signed" in capsys.readouterr().err
    assert main(["verify", str(model)]) == 2  # no key at all: a usage error
    monkeypatch.setenv("LINREG_TRUSTED_KEYS", "public.pem")
    assert main(["verify", str(model)]) == 1


def _scores(path: Path) -> np.ndarray:
    with open(path, newline="") as f:
        return np.array([float(r["prediction"]) for r in csv.DictReader(f)])


def test_predict_with_trusted_key(tmp_path: Path, model: Path, keys, other_keys, capsys) -> None:
    out = tmp_path / "scored.csv"
    args = ["predict", str(model), str(ISLANDS), "-o", str(out), "--no-progress"]
    assert main([*args, "--trusted-key", str(keys[1])]) == 1
    assert "not signed" in capsys.readouterr().err and not out.exists()
    assert main(["sign", str(model), "--key", str(keys[0])]) == 0
    assert main([*args, "--trusted-key", str(other_keys[1])]) == 1
    assert "not trusted" in capsys.readouterr().err and not out.exists()
    assert main([*args, "--trusted-key", str(other_keys[1]), "--trusted-key", str(keys[1])]) == 0
    assert "LINREG_TRUSTED_KEYS" not in os.environ  # only for the job
    with open(ISLANDS, newline="") as f:
        rows = list(csv.DictReader(f))
    params = Manifest.read(model).parameters
    X = np.array([[float(r[c]) for c in ("area", "latitude", "dist_mainland")] for r in rows])
    expected = X @ np.asarray(params["coef"]) + params["intercept"]
    np.testing.assert_allclose(_scores(out), expected, rtol=1e-5, atol=1e-5)


def test_train_sign_key(tmp_path: Path, keys, capsys) -> None:
    pytest.importorskip("torch")
    out = tmp_path / "m"
    base = ["train", "--dataset", "plant_richness_lr", "--no-plots", "--show", "1"]
    assert main([*base, "--sign-key", str(keys[0])]) == 2  # no --out
    assert "--sign-key need --out" in capsys.readouterr().err
    assert main([*base, "--out", str(out), "--sign-key", str(keys[0])]) == 0
    manifest = Manifest.read(out)
    assert SIGNATURE_NAME not in manifest.artifacts
    manifest.verify_artifacts(out)  # the signature broke none of the manifest's hashes
    verified = verify_directory(out, [keys[1]])
    assert set(verified.files) == {"manifest.json", *manifest.artifacts}
    assert json.loads((out / SIGNATURE_NAME).read_text())["dsseEnvelope"]["payload"]
    assert Predictor.load(out, trusted_keys=[keys[1]]).predict_one(area=1.0) == pytest.approx(
        manifest.parameters["coef"][0] + manifest.parameters["intercept"], rel=1e-6
    )


def test_export_model_sign_key(tmp_path: Path, keys) -> None:
    pytest.importorskip("torch")
    from inference.signing import load_private_key
    from training.data import load_dataset
    from training.export import ExportError, export_model
    from training.pipeline import train

    run = train(load_dataset("plant_richness_mlr"), progress=False)
    with pytest.raises(ExportError, match="cannot sign the export"):
        export_model(run, tmp_path / "bad", sign_key=tmp_path / "missing.pem", plots=False)
    assert not (tmp_path / "bad").exists()
    out = export_model(run, tmp_path / "ok", sign_key=load_private_key(keys[0]), plots=False)
    payload = json.loads((out / SIGNATURE_NAME).read_text())["dsseEnvelope"]["payload"]
    statement = json.loads(base64.b64decode(payload))
    assert statement["subject"][0]["name"] == "ok"  # the destination's name, not staging's
    verify_directory(out, [keys[1]])
    Predictor.load(out, trusted_keys=[keys[1]])
