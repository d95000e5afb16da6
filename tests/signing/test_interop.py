"""Interoperability with OpenSSF model signing (``model-signing``, sigstore/model-transparency).

Both ways, with the real package: ``model_signing verify key`` (its Python API and its
command line) accepts the bundles :func:`inference.signing.sign_directory` writes, on
every curve; :func:`verify_directory` and ``Predictor.load`` accept a bundle that
``model_signing sign key`` made, and both tools refuse the same tampering. Skipped
without ``model-signing`` and ``pyopenssl`` (extra ``signing-test``; model-signing
imports pyopenssl without declaring it).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from inference import Predictor
from inference.errors import SignatureError
from inference.signing import SIGNATURE_NAME, sign_directory, verify_directory
from tests.signing.conftest import make_keys

MISSING = [m for m in ("model_signing", "OpenSSL") if importlib.util.find_spec(m) is None]
pytestmark = pytest.mark.skipif(
    bool(MISSING), reason=f"interop tests need {MISSING} (extra 'signing-test')"
)


def _their_verify(model: Path, public: Path) -> None:
    """model_signing's Python API; raises ValueError when it refuses."""
    from model_signing import verifying

    verifying.Config().use_elliptic_key_verifier(public_key=public).verify(
        model, model / SIGNATURE_NAME
    )


def _their_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "model_signing", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("curve", ["P-256", "P-384", "P-521"])
def test_model_signing_accepts_our_bundle(model: Path, tmp_path: Path, curve: str) -> None:
    private, public = make_keys(tmp_path, curve, curve)
    sign_directory(model, private)
    _their_verify(model, public)
    if curve == "P-256":  # the command line too (a process each: once is enough)
        done = _their_cli(
            "verify", "key", "--public_key", public, "--signature", model / SIGNATURE_NAME, model
        )
        assert done.returncode == 0, done.stderr
        assert "Verification succeeded" in done.stdout


def test_model_signing_refuses_what_we_refuse(signed: Path, keys, other_keys) -> None:
    with pytest.raises(ValueError):
        _their_verify(signed, other_keys[1])
    (signed / "model.pt").write_bytes(b"changed")
    with pytest.raises(ValueError, match="model.pt"):
        _their_verify(signed, keys[1])
    with pytest.raises(SignatureError, match="model.pt"):
        verify_directory(signed, [keys[1]])


def _their_sign(model: Path, private: Path) -> None:
    from model_signing import hashing, signing

    signing.Config().use_elliptic_key_signer(private_key=private).set_hashing_config(
        hashing.Config().set_ignored_paths(paths=[SIGNATURE_NAME])
    ).sign(model, model / SIGNATURE_NAME)


@pytest.mark.parametrize("curve", ["P-256", "P-521"])
def test_we_accept_model_signings_bundle(model: Path, tmp_path: Path, curve: str) -> None:
    private, public = make_keys(tmp_path, curve, curve)
    _their_sign(model, private)
    verified = verify_directory(model, [public])
    assert set(verified.files) == {p.name for p in model.iterdir()} - {SIGNATURE_NAME}
    X = np.random.default_rng(1).normal(size=(20, 3))
    assert np.array_equal(
        Predictor.load(model, trusted_keys=[public]).predict(X), Predictor.load(model).predict(X)
    )


def test_we_accept_the_command_lines_bundle_and_refuse_it_tampered(
    model: Path, keys, other_keys
) -> None:
    done = _their_cli(
        "sign", "key", "--private_key", keys[0], "--signature", model / SIGNATURE_NAME, model
    )
    assert done.returncode == 0, done.stderr
    assert verify_directory(model, [keys[1]])
    with pytest.raises(SignatureError, match="not trusted"):
        verify_directory(model, [other_keys[1]])
    (model / "extra.onnx").write_bytes(b"x")
    with pytest.raises(SignatureError, match="extra.onnx: not signed"):
        Predictor.load(model, trusted_keys=[keys[1]])
    (model / "extra.onnx").unlink()
    (model / "loss.png").unlink()
    with pytest.raises(SignatureError, match="loss.png: signed but missing"):
        Predictor.load(model, trusted_keys=[keys[1]])


def test_nested_files_as_model_signing_lists_them(tmp_path: Path) -> None:
    """model_signing signs subdirectories' files by relative POSIX path, in path order."""
    private, public = make_keys(tmp_path, "k")
    root = tmp_path / "m"
    for name in ("a.txt", "a/b.bin", "a/c/d.bin", "a-b", "z"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(name)
    _their_sign(root, private)
    assert set(verify_directory(root, [public]).files) == {
        "a.txt",
        "a/b.bin",
        "a/c/d.bin",
        "a-b",
        "z",
    }
    sign_directory(root, private)
    _their_verify(root, public)
