"""Keys of signed models: ECDSA on P-256, P-384 or P-521 (model_signing's key mode).

Key pairs are PEM files: the private key PKCS#8 (written with mode 0600), the public
key SubjectPublicKeyInfo. A bundle names the key that signed it by a hint, the sha256
(hex) of the public key's PEM. ``cryptography`` (extra ``signing``) is imported only
when a key is used, so the Predictor does not pay for it without trusted keys.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inference.errors import SignatureError
from inference.signing.files import write_file

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec

__all__ = [
    "CURVES",
    "TRUSTED_KEYS_ENV",
    "TrustedKey",
    "ecdsa",
    "generate_key_pair",
    "key_hint",
    "load_private_key",
    "load_trusted_keys",
    "signature_valid",
    "trusted_keys_from_environment",
]

#: the curves of model_signing's key mode, by their NIST names: (cryptography's name, hash)
CURVES = {"P-256": ("secp256r1", "SHA256"), "P-384": ("secp384r1", "SHA384"),
          "P-521": ("secp521r1", "SHA512")}  # fmt: skip
#: environment variable: the trusted public keys (PEM files), separated by os.pathsep
TRUSTED_KEYS_ENV = "LINREG_TRUSTED_KEYS"


@dataclass(frozen=True)
class TrustedKey:
    """A public key to accept signatures from: the key, its hint (the sha256 of its PEM,
    as bundles name it) and where it came from."""

    key: Any  # cryptography's EllipticCurvePublicKey
    hint: str
    source: str


def _crypto() -> Any:
    """cryptography's modules, imported when first needed (the extra ``signing``)."""
    try:
        from cryptography import exceptions
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
    except ImportError as exc:
        raise SignatureError(
            "signing and verifying models needs the 'cryptography' package: "
            "pip install 'linreg-onnx[signing]'"
        ) from exc
    return exceptions, hashes, serialization, ec


def _check_curve(public_key: Any, source: str) -> str:
    """The NIST name of an accepted ECDSA key's curve; SignatureError for any other key."""
    _, _, _, ec = _crypto()
    if not isinstance(public_key, ec.EllipticCurvePublicKey):
        raise SignatureError(
            f"{source}: a {type(public_key).__name__.lstrip('_')}; only ECDSA keys on "
            f"{', '.join(CURVES)} are accepted (model_signing's key mode)"
        )
    for name, (curve, _) in CURVES.items():
        if public_key.curve.name == curve:
            return name
    raise SignatureError(
        f"{source}: an ECDSA key on {public_key.curve.name}; only {', '.join(CURVES)} "
        "are accepted (model_signing's key mode)"
    )


def ecdsa(public_key: Any) -> Any:
    """``ec.ECDSA`` with the hash model_signing pairs with the key's curve."""
    _, hashes, _, ec = _crypto()
    name = _check_curve(public_key, "key")
    return ec.ECDSA(getattr(hashes, CURVES[name][1])())


def signature_valid(public_key: Any, signature: bytes, message: bytes) -> bool:
    """Whether ``signature`` (DER) is the key's ECDSA signature of ``message``."""
    exceptions, _, _, _ = _crypto()
    try:
        public_key.verify(signature, message, ecdsa(public_key))
    except exceptions.InvalidSignature:
        return False
    return True


def key_hint(public_key: Any) -> str:
    """sha256 (hex) of the public key's PEM (SubjectPublicKeyInfo): the bundle's hint."""
    _, _, serialization, _ = _crypto()
    pem = public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(pem).hexdigest()


def _read_key_file(path: Path, what: str) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SignatureError(f"{path}: cannot read the {what} ({exc.strerror})") from exc
    if len(data) > 64 << 10:
        raise SignatureError(f"{path}: {len(data)} bytes, not a PEM {what}")
    return data


def load_private_key(path: str | Path, password: bytes | None = None) -> ec.EllipticCurvePrivateKey:
    """An ECDSA private key (PEM, PKCS#8 or SEC1) on P-256, P-384 or P-521."""
    path = Path(path)
    _, _, serialization, _ = _crypto()
    data = _read_key_file(path, "private key")
    try:
        key = serialization.load_pem_private_key(data, password)
    except (ValueError, TypeError) as exc:
        raise SignatureError(f"{path}: not a PEM private key we can read ({exc})") from exc
    _check_curve(key.public_key(), str(path))
    return key  # type: ignore[return-value]


def load_trusted_keys(keys: Iterable[str | Path | TrustedKey | Any]) -> list[TrustedKey]:
    """Trusted keys from PEM public key files (paths), already loaded keys or
    :class:`TrustedKey` objects; SignatureError for a file that is not an accepted key."""
    _, _, serialization, ec = _crypto()
    loaded = []
    for item in keys:
        if isinstance(item, TrustedKey):
            loaded.append(item)
            continue
        if isinstance(item, ec.EllipticCurvePublicKey):
            _check_curve(item, "trusted key")
            loaded.append(TrustedKey(item, key_hint(item), "<key object>"))
            continue
        path = Path(item)
        data = _read_key_file(path, "public key")
        try:
            key = serialization.load_pem_public_key(data)
        except (ValueError, TypeError) as exc:
            raise SignatureError(f"{path}: not a PEM public key ({exc})") from exc
        _check_curve(key, str(path))
        loaded.append(TrustedKey(key, key_hint(key), str(path)))
    return loaded


def trusted_keys_from_environment(environ: Mapping[str, str] | None = None) -> list[Path]:
    """The key files named by ``LINREG_TRUSTED_KEYS`` (``os.pathsep``-separated; empty
    entries skipped); an empty list when it is unset or blank."""
    value = (os.environ if environ is None else environ).get(TRUSTED_KEYS_ENV, "")
    return [Path(p) for p in value.split(os.pathsep) if p.strip()]


def generate_key_pair(
    private_path: str | Path,
    public_path: str | Path,
    *,
    curve: str = "P-256",
    overwrite: bool = False,
) -> str:
    """Make an ECDSA key pair: the private key (PKCS#8 PEM, unencrypted, mode 0600) and
    the public key (SubjectPublicKeyInfo PEM, 0644), each written atomically.

    Returns the public key's hint (sha256 of its PEM). Raises FileExistsError when a
    file exists and ``overwrite`` is false, ValueError for another ``curve``.
    """
    if curve not in CURVES:
        raise ValueError(f"curve {curve!r}: expected one of {', '.join(CURVES)}")
    _, _, serialization, ec = _crypto()
    private_path, public_path = Path(private_path), Path(public_path)
    if not overwrite:
        for p in (private_path, public_path):
            if os.path.lexists(p):
                raise FileExistsError(f"{p} already exists; refusing to replace a key")
    key = ec.generate_private_key(getattr(ec, CURVES[curve][0].upper())())
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    write_file(private_path, private_pem, 0o600, overwrite)
    write_file(public_path, public_pem, 0o644, overwrite)
    return hashlib.sha256(public_pem).hexdigest()


# --------------------------------------------------------------------------------------
