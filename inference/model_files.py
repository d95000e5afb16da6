"""Finding and reading a model's files before ONNX Runtime sees them.

:func:`locate` finds the ``.onnx`` file of a model directory (its manifest read and
every artifact's size and sha256 verified, the signature first where trusted keys
are given) or takes a bare ``.onnx`` file; :func:`read_model_bytes` reads at most
:data:`MAX_ONNX_BYTES` of it, not through a link, and hashes the very bytes handed
to ONNX Runtime.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from inference.errors import ModelLoadError
from inference.manifest import Manifest

__all__ = ["MAX_ONNX_BYTES", "locate", "read_model_bytes"]

#: largest .onnx file accepted; the linear models here are a few hundred bytes
MAX_ONNX_BYTES = 256 << 20
#: inference.signing.TRUSTED_KEYS_ENV, read here without importing the signing package
#: (about 5 ms) when it is unset: the trusted keys' PEM files, separated by os.pathsep
_TRUSTED_KEYS_ENV = "LINREG_TRUSTED_KEYS"


def locate(path: Path, trusted_keys: Sequence[Any] | None) -> tuple[Path, Manifest | None]:
    """The .onnx file to load and the manifest (artifacts verified, and the signature
    with trusted keys), or None for a bare file."""
    if trusted_keys is None and os.environ.get(_TRUSTED_KEYS_ENV, "").strip():
        from inference.signing.keys import trusted_keys_from_environment

        trusted_keys = trusted_keys_from_environment()
    if path.is_dir():
        verified = _verify_signature(path, trusted_keys) if trusted_keys else None
        manifest = Manifest.read(path)
        if verified is None:
            manifest.verify_artifacts(path)
        else:
            _check_signed_manifest(path, manifest, verified)
        return path / manifest.onnx_file, manifest
    if path.is_file():
        if trusted_keys:
            from inference.errors import SignatureError

            raise SignatureError(
                f"{path}: a bare .onnx file carries no signature; with trusted keys, load a "
                "signed model directory"
            )
        return path, None
    raise ModelLoadError(f"{path}: no such model directory or .onnx file")


def _verify_signature(path: Path, trusted_keys: Sequence[Any]) -> Any:
    """The directory is signed by a trusted key, every file (the manifest included) as
    signed: :class:`inference.signing.VerifiedModel`, with the manifest's bytes."""
    from inference.manifest import MANIFEST_NAME
    from inference.signing import verify_directory

    return verify_directory(path, trusted_keys, keep=[MANIFEST_NAME])


def _check_signed_manifest(path: Path, manifest: Manifest, verified: Any) -> None:
    """The manifest read is the signed one, and its artifacts' sizes and sha256 are those
    of the signed files (so they need not be hashed a second time)."""
    import json

    from inference.manifest import MANIFEST_NAME

    try:
        same = json.loads(verified.kept[MANIFEST_NAME]) == manifest.data
    except (KeyError, ValueError, RecursionError):
        same = False
    if not same:
        raise ModelLoadError(f"{path / MANIFEST_NAME}: changed while it was being loaded")
    for name, entry in manifest.artifacts.items():
        signed = verified.files.get(name)
        if signed is None or (signed.sha256, signed.size) != (entry["sha256"], entry["size"]):
            raise ModelLoadError(
                f"{path / name}: the manifest gives size {entry['size']} and sha256 "
                f"{entry['sha256'][:12]}..., the signed file has "
                + (f"{signed.size} and {signed.sha256[:12]}..." if signed else "no such file")
            )


def read_model_bytes(onnx_path: Path, manifest: Manifest | None) -> bytes:
    """The file's bytes, hashed against the manifest: the very bytes handed to
    onnxruntime are the ones checked, leaving no window between check and use."""
    data = _read_onnx(onnx_path)
    if manifest is not None:
        digest = hashlib.sha256(data).hexdigest()
        if digest != manifest.artifacts[manifest.onnx_file]["sha256"]:
            raise ModelLoadError(f"{onnx_path}: changed while it was being loaded")
    return data


def _read_onnx(path: Path) -> bytes:
    """At most :data:`MAX_ONNX_BYTES` of a regular, non-empty file, not through a link."""
    try:
        if path.is_symlink():
            raise ModelLoadError(f"{path}: is a symbolic link; refusing to follow it")
        size = path.stat().st_size
        if size > MAX_ONNX_BYTES:
            raise ModelLoadError(f"{path}: {size} bytes, above the {MAX_ONNX_BYTES} byte limit")
        if size == 0:
            raise ModelLoadError(f"{path}: the file is empty")
        return path.read_bytes()
    except OSError as exc:
        raise ModelLoadError(f"{path}: cannot read it ({exc.strerror})") from exc
