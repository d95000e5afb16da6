"""Signing and verifying model directories (inference.signing), checked independently.

The bundle is taken apart here with the standard library and ``cryptography`` only:
the per-file sha256 digests are recomputed with hashlib, the subject digest from
them, DSSE's pre-authentication encoding is rebuilt from the DSSE specification, and
the ECDSA signature is checked with cryptography directly, so a bug shared by
:func:`sign_directory` and :func:`verify_directory` cannot pass unnoticed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest

from inference import Predictor
from inference.errors import ModelLoadError, SignatureError
from inference.signing import (
    SIGNATURE_NAME,
    TRUSTED_KEYS_ENV,
    generate_key_pair,
    sign_directory,
    verify_directory,
)
from tests.signing.conftest import make_keys


def _bundle(directory: Path) -> tuple[dict, dict, bytes]:
    bundle = json.loads((directory / SIGNATURE_NAME).read_text())
    payload = base64.b64decode(bundle["dsseEnvelope"]["payload"])
    return bundle, json.loads(payload), payload


def test_bundle_is_model_signing_key_mode_checked_independently(signed: Path, keys) -> None:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    bundle, statement, payload = _bundle(signed)
    assert bundle["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    assert bundle["verificationMaterial"]["tlogEntries"] == []
    envelope = bundle["dsseEnvelope"]
    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == "https://model_signing/signature/v1.0"
    assert statement["predicate"]["serialization"] == {
        "method": "files",
        "hash_type": "sha256",
        "allow_symlinks": False,
        "ignore_paths": ["model.sig"],
    }
    # every file but the signature, the manifest included, with its sha256 (hashlib)
    files = sorted(p.name for p in signed.iterdir() if p.name != SIGNATURE_NAME)
    assert "manifest.json" in files
    expected = [
        {
            "name": n,
            "algorithm": "sha256",
            "digest": hashlib.sha256((signed / n).read_bytes()).hexdigest(),
        }
        for n in files
    ]
    assert statement["predicate"]["resources"] == expected
    root = hashlib.sha256(b"".join(bytes.fromhex(r["digest"]) for r in expected)).hexdigest()
    assert statement["subject"] == [{"name": "plant", "digest": {"sha256": root}}]
    # the key hint: sha256 of the public key's PEM as written by keygen
    public_pem = keys[1].read_bytes()
    assert (
        bundle["verificationMaterial"]["publicKey"]["hint"]
        == hashlib.sha256(public_pem).hexdigest()
    )
    # the signature: ECDSA P-256 / SHA-256 over PAE (DSSE v1.0 protocol.md)
    kind = b"application/vnd.in-toto+json"
    pae = (
        b"DSSEv1 "
        + str(len(kind)).encode()
        + b" "
        + kind
        + b" "
        + str(len(payload)).encode()
        + b" "
        + payload
    )
    public = serialization.load_pem_public_key(public_pem)
    sig = base64.b64decode(envelope["signatures"][0]["sig"])
    public.verify(sig, pae, ec.ECDSA(hashes.SHA256()))  # raises InvalidSignature if wrong


def test_verify_returns_the_signed_files(signed: Path, keys) -> None:
    verified = verify_directory(signed, [keys[1]])
    for name, digest in verified.files.items():
        data = (signed / name).read_bytes()
        assert (digest.sha256, digest.size) == (hashlib.sha256(data).hexdigest(), len(data))
    assert set(verified.files) == {p.name for p in signed.iterdir()} - {SIGNATURE_NAME}
    assert verified.key.source == str(keys[1])


@pytest.mark.parametrize("curve, hash_name", [("P-384", "SHA384"), ("P-521", "SHA512")])
def test_other_curves(model: Path, tmp_path: Path, curve: str, hash_name: str) -> None:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    private, public = make_keys(tmp_path, curve, curve)
    sign_directory(model, private)
    assert verify_directory(model, [public]).key.source == str(public)
    bundle, _, payload = _bundle(model)
    kind = b"application/vnd.in-toto+json"
    pae = b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)
    key = serialization.load_pem_public_key(public.read_bytes())
    sig = base64.b64decode(bundle["dsseEnvelope"]["signatures"][0]["sig"])
    key.verify(sig, pae, ec.ECDSA(getattr(hashes, hash_name)()))


def test_keygen_writes_private_key_0600_and_never_replaces_one(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    private, public = tmp_path / "k.pem", tmp_path / "k.pub"
    hint = generate_key_pair(private, public)
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert hint == hashlib.sha256(public.read_bytes()).hexdigest()
    key = serialization.load_pem_private_key(private.read_bytes(), None)
    assert (
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        == public.read_bytes()
    )
    before = private.read_bytes()
    with pytest.raises(FileExistsError, match="refusing to replace"):
        generate_key_pair(private, tmp_path / "new.pub")
    assert private.read_bytes() == before
    assert not (tmp_path / "new.pub").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.pem", "k.pub"]  # no temporaries
    generate_key_pair(private, public, overwrite=True, curve="P-384")
    assert private.read_bytes() != before and stat.S_IMODE(private.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    "change, named, says",
    [
        (
            lambda d: (d / "model.pt").write_bytes((d / "model.pt").read_bytes() + b"x"),
            "model.pt",
            "changed",
        ),
        (lambda d: (d / "notes.txt").write_text("hi"), "notes.txt", "added"),
        (lambda d: (d / "loss.png").unlink(), "loss.png", "removed"),
        (
            lambda d: (d / "manifest.json").write_text((d / "manifest.json").read_text() + " "),
            "manifest.json",
            "changed",
        ),
        (
            lambda d: (d / "sub").mkdir() or (d / "sub" / "x.bin").write_bytes(b"1"),
            "sub/x.bin",
            "added",
        ),
        (
            lambda d: (d / "manifest.json").write_text("{not json"),
            "manifest.json",
            "changed",
        ),
    ],
    ids=["changed", "added", "removed", "manifest", "nested", "manifest-not-json"],
)
def test_changed_added_removed_files_are_refused_by_name(
    signed: Path, keys, change, named, says
) -> None:
    change(signed)
    with pytest.raises(SignatureError, match=rf"{named}: .*{says}"):
        verify_directory(signed, [keys[1]])
    with pytest.raises(SignatureError, match=rf"{named}: .*{says}"):
        Predictor.load(signed, trusted_keys=[keys[1]])


def test_symlink_is_refused(signed: Path, keys, tmp_path: Path) -> None:
    (tmp_path / "target").write_text("x")
    os.symlink(tmp_path / "target", signed / "link")
    with pytest.raises(SignatureError, match="link is a symbolic link"):
        verify_directory(signed, [keys[1]])


def test_another_key_is_refused(signed: Path, other_keys) -> None:
    with pytest.raises(SignatureError, match="signed by a key that is not trusted"):
        verify_directory(signed, [other_keys[1]])
    with pytest.raises(SignatureError, match="not trusted"):
        Predictor.load(signed, trusted_keys=[other_keys[1]])
    # any one trusted key is enough
    assert verify_directory(signed, [other_keys[1], signed.parent.parent / "signer.pub.pem"])


def test_a_signature_of_another_key_under_the_right_hint_is_refused(
    signed: Path, keys, other_keys
) -> None:
    """Re-signed by another key but with the trusted key's hint written in."""
    good_hint = json.loads((signed / SIGNATURE_NAME).read_text())["verificationMaterial"]
    sign_directory(signed, other_keys[0])
    bundle = json.loads((signed / SIGNATURE_NAME).read_text())
    bundle["verificationMaterial"] = good_hint
    (signed / SIGNATURE_NAME).write_text(json.dumps(bundle))
    with pytest.raises(SignatureError, match="does not verify"):
        verify_directory(signed, [keys[1]])


def test_a_changed_statement_is_refused(signed: Path, keys) -> None:
    """The statement rewritten to the directory's new files, the old signature kept."""
    (signed / "model.pt").write_bytes(b"not the model")
    bundle, statement, _ = _bundle(signed)
    for r in statement["predicate"]["resources"]:
        r["digest"] = hashlib.sha256((signed / r["name"]).read_bytes()).hexdigest()
    digests = b"".join(bytes.fromhex(r["digest"]) for r in statement["predicate"]["resources"])
    statement["subject"][0]["digest"]["sha256"] = hashlib.sha256(digests).hexdigest()
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    (signed / SIGNATURE_NAME).write_text(json.dumps(bundle))
    with pytest.raises(SignatureError, match="does not verify"):
        verify_directory(signed, [keys[1]])


@pytest.mark.parametrize(
    "damage, says",
    [
        (lambda b: b.update(mediaType="application/json"), "media type"),
        (lambda b: b["verificationMaterial"].update(tlogEntries=[{"logIndex": 1}]), "key mode"),
        (lambda b: b["dsseEnvelope"].update(payloadType="text/plain"), "payload type"),
        (lambda b: b["dsseEnvelope"].update(payload="!!"), "not a Sigstore bundle"),
        (lambda b: b["dsseEnvelope"].update(signatures=[]), "no signature"),
        (lambda b: b.pop("dsseEnvelope"), "not a Sigstore bundle"),
    ],
)
def test_malformed_bundles_are_refused(signed: Path, keys, damage, says) -> None:
    bundle = json.loads((signed / SIGNATURE_NAME).read_text())
    damage(bundle)
    (signed / SIGNATURE_NAME).write_text(json.dumps(bundle))
    with pytest.raises(SignatureError, match=says):
        verify_directory(signed, [keys[1]])


def test_unsigned_directory_and_bare_file_are_refused_with_keys(model: Path, keys) -> None:
    with pytest.raises(SignatureError, match="not signed"):
        Predictor.load(model, trusted_keys=[keys[1]])
    with pytest.raises(SignatureError, match="bare .onnx file"):
        Predictor.load(model / "model.onnx", trusted_keys=[keys[1]])
    Predictor.load(model)  # without keys: as before


def test_signed_model_predicts_as_unsigned(signed: Path, keys) -> None:
    X = np.random.default_rng(0).normal(size=(50, 3))
    with_keys = Predictor.load(signed, trusted_keys=[keys[1]]).predict(X)
    without = Predictor.load(signed).predict(X)
    assert np.array_equal(with_keys, without)


def test_environment_variable_is_the_default(signed: Path, keys, other_keys, monkeypatch) -> None:
    monkeypatch.setenv(TRUSTED_KEYS_ENV, os.pathsep.join([str(other_keys[1]), ""]))
    with pytest.raises(SignatureError, match="not trusted"):
        Predictor.load(signed)
    assert Predictor.load(signed, trusted_keys=()).features  # explicitly no keys
    monkeypatch.setenv(TRUSTED_KEYS_ENV, os.pathsep.join([str(other_keys[1]), str(keys[1])]))
    assert Predictor.load(signed).features
    monkeypatch.setenv(TRUSTED_KEYS_ENV, str(keys[1].with_name("missing.pem")))
    with pytest.raises(SignatureError, match="missing.pem: cannot read the public key"):
        Predictor.load(signed)


def test_keys_that_model_signing_does_not_accept_are_refused(tmp_path: Path, model: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    for name, key in [
        ("ed", ed25519.Ed25519PrivateKey.generate()),
        ("k1", ec.generate_private_key(ec.SECP256K1())),
    ]:
        pem = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        (tmp_path / f"{name}.pub").write_bytes(pem)
        with pytest.raises(SignatureError, match="only ECDSA keys|only P-256"):
            verify_directory(model, [tmp_path / f"{name}.pub"])
    (tmp_path / "junk.pub").write_text("not a key")
    with pytest.raises(SignatureError, match="not a PEM public key"):
        verify_directory(model, [tmp_path / "junk.pub"])


def test_the_signature_covers_the_manifest_which_still_checks_its_artifacts(
    signed: Path, keys
) -> None:
    """model.sig is not an artifact of the manifest, and the manifest's own hashes still
    hold beside it (Predictor.load without keys checks them)."""
    from inference.manifest import Manifest

    manifest = Manifest.read(signed)
    assert SIGNATURE_NAME not in manifest.artifacts
    manifest.verify_artifacts(signed)
    assert "manifest.json" in verify_directory(signed, [keys[1]]).files


def test_a_killed_signers_temporary_is_ignored(signed: Path, keys) -> None:
    from inference.io.atomic import temporary_name

    leftover = temporary_name(signed / SIGNATURE_NAME)
    leftover.write_text("half a bundle")
    assert verify_directory(signed, [keys[1]])
    sign_directory(signed, keys[0])  # a new signature: the dead writer's leftover stays ignored
    assert verify_directory(signed, [keys[1]])


def test_changed_manifest_between_verify_and_read_is_refused(
    signed: Path, keys, monkeypatch
) -> None:
    """The manifest Predictor.load uses must be the bytes the signature covered."""
    import inference.predictor as predictor_module
    from inference.manifest import Manifest

    real_read = Manifest.read

    def read_other(path):  # what a writer racing the load would make it read
        m = real_read(path)
        m.data["target"] = "something else"
        return m

    monkeypatch.setattr(predictor_module.Manifest, "read", staticmethod(read_other))
    with pytest.raises(ModelLoadError, match="changed while it was being loaded"):
        Predictor.load(signed, trusted_keys=[keys[1]])


def test_the_predictor_reads_the_same_environment_variable() -> None:
    import inference.model_files

    assert inference.model_files._TRUSTED_KEYS_ENV == TRUSTED_KEYS_ENV == "LINREG_TRUSTED_KEYS"
