"""The signature bundle of a model directory: writing it and verifying it.

The format is the package's docstring (:mod:`inference.signing`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from inference.errors import SignatureError
from inference.signing.files import FileDigest, hash_file, path_order, walk_files, write_file
from inference.signing.keys import (
    TrustedKey,
    ecdsa,
    key_hint,
    load_private_key,
    load_trusted_keys,
    signature_valid,
)

__all__ = [
    "BUNDLE_MEDIA_TYPE",
    "PAYLOAD_TYPE",
    "PREDICATE_TYPE",
    "SIGNATURE_NAME",
    "STATEMENT_TYPE",
    "VerifiedModel",
    "pae",
    "sign_directory",
    "verify_directory",
]

SIGNATURE_NAME = "model.sig"
BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://model_signing/signature/v1.0"
#: largest signature file read; one of a model directory is about 2 kB
MAX_BUNDLE_BYTES = 4 << 20


@dataclass(frozen=True)
class VerifiedModel:
    """A directory whose files are exactly those a trusted key signed.

    Attributes
    ----------
    path : Path
    files : mapping of str to FileDigest
        Every signed file (POSIX path relative to ``path``) with its sha256 and size,
        as read during verification.
    digest : str
        The bundle's subject digest (sha256 over the files' digests, in name order).
    model_name : str
        The subject's name (the signed directory's name; informative only).
    key : TrustedKey
        The trusted key the signature verified with.
    kept : mapping of str to bytes
        The bytes of the files asked for with ``keep``, exactly as hashed.
    """

    path: Path
    files: Mapping[str, FileDigest]
    digest: str
    model_name: str
    key: TrustedKey
    kept: Mapping[str, bytes] = field(default_factory=dict)


def pae(payload: bytes, payload_type: str = PAYLOAD_TYPE) -> bytes:
    """DSSE's pre-authentication encoding: what the signature is over."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def _statement(model_name: str, digests: Sequence[tuple[str, str]]) -> dict[str, Any]:
    root = hashlib.sha256(b"".join(bytes.fromhex(d) for _, d in digests)).hexdigest()
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": model_name, "digest": {"sha256": root}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "serialization": {
                "method": "files",
                "hash_type": "sha256",
                "allow_symlinks": False,
                "ignore_paths": [SIGNATURE_NAME],
            },
            "resources": [{"name": n, "algorithm": "sha256", "digest": d} for n, d in digests],
        },
    }


def sign_directory(
    directory: str | Path,
    private_key: str | Path | Any,
    *,
    password: bytes | None = None,
    name: str | None = None,
) -> Path:
    """Sign every file of ``directory`` into ``directory/model.sig`` (written atomically;
    an older signature is replaced). ``private_key`` is a PEM file or a loaded
    ``EllipticCurvePrivateKey``; ``name`` the subject's name (default: the directory's,
    as model_signing does; informative only). Returns the signature's path.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise SignatureError(f"{directory}: not a directory")
    key: Any = (
        private_key
        if hasattr(private_key, "sign")
        else load_private_key(private_key, password=password)
    )
    public = key.public_key()
    files = sorted(walk_files(directory, SIGNATURE_NAME), key=lambda item: path_order(item[0]))
    digests = [(name, hash_file(path, keep=False)[0].sha256) for name, path in files]
    name = name or directory.absolute().name
    payload = json.dumps(_statement(name, digests), indent=2).encode("utf-8")
    signature = key.sign(pae(payload), ecdsa(public))
    bundle = {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {"publicKey": {"hint": key_hint(public)}, "tlogEntries": []},
        "dsseEnvelope": {
            "payload": base64.b64encode(payload).decode("ascii"),
            "payloadType": PAYLOAD_TYPE,
            "signatures": [{"sig": base64.b64encode(signature).decode("ascii"), "keyid": ""}],
        },
    }
    path = directory / SIGNATURE_NAME
    write_file(path, (json.dumps(bundle, indent=2) + "\n").encode("utf-8"), 0o644, True)
    return path


# --------------------------------------------------------------------------------------


def _read_bundle(path: Path) -> dict[str, Any]:
    try:
        st = path.lstat()
    except FileNotFoundError:
        raise SignatureError(
            f"{path.parent}: not signed (no {path.name}); trusted keys were given, so only "
            "a signed model directory is loaded"
        ) from None
    except OSError as exc:
        raise SignatureError(f"{path}: cannot read the signature ({exc.strerror})") from exc
    if not stat.S_ISREG(st.st_mode):
        raise SignatureError(f"{path}: the signature is not a regular file")
    if st.st_size > MAX_BUNDLE_BYTES:
        raise SignatureError(f"{path}: {st.st_size} bytes, more than any signature bundle")
    data = hash_file(path, keep=True)[1] or b""  # no link followed, never blocks on a FIFO
    try:
        bundle = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise SignatureError(f"{path}: the signature is not valid JSON ({exc})") from exc
    if not isinstance(bundle, dict):
        raise SignatureError(f"{path}: the signature is not a JSON object")
    return bundle


def _get(obj: Any, *keys: str, kind: type | tuple[type, ...] = object) -> Any:
    """``obj[k1][k2]...`` checked to be of ``kind``; KeyError naming the path otherwise."""
    for k in keys:
        if not isinstance(obj, dict) or k not in obj:
            raise KeyError(".".join(keys))
        obj = obj[k]
    if not isinstance(obj, kind):
        raise KeyError(".".join(keys))
    return obj


def _b64(text: Any) -> bytes:
    if not isinstance(text, str):
        raise ValueError("not a base64 string")
    return base64.b64decode(text, validate=True)


def _check_key_mode(path: Path, bundle: dict[str, Any]) -> tuple[str, bytes, list[bytes]]:
    """The bundle's key hint (or ""), DSSE payload and signatures; SignatureError for
    anything but a key-mode bundle v0.3 of an in-toto payload."""
    try:
        media = _get(bundle, "mediaType", kind=str)
        material = _get(bundle, "verificationMaterial", kind=dict)
        envelope = _get(bundle, "dsseEnvelope", kind=dict)
        payload_type = _get(envelope, "payloadType", kind=str)
        payload = _b64(_get(envelope, "payload"))
        sigs = [_b64(_get(s, "sig")) for s in _get(envelope, "signatures", kind=list)]
    except (KeyError, ValueError, binascii.Error) as exc:
        raise SignatureError(f"{path}: not a Sigstore bundle of model signing ({exc})") from None
    if media != BUNDLE_MEDIA_TYPE:
        raise SignatureError(f"{path}: media type {media!r}, expected {BUNDLE_MEDIA_TYPE!r}")
    if payload_type != PAYLOAD_TYPE:
        raise SignatureError(f"{path}: payload type {payload_type!r}, expected {PAYLOAD_TYPE!r}")
    if material.get("tlogEntries") or "publicKey" not in material:
        raise SignatureError(
            f"{path}: signed with a certificate or through Sigstore's transparency log; only "
            "key mode (model_signing sign key) is verified here"
        )
    if not sigs:
        raise SignatureError(f"{path}: the envelope holds no signature")
    hint = material["publicKey"].get("hint") if isinstance(material["publicKey"], dict) else None
    return (hint if isinstance(hint, str) else ""), payload, sigs


def _verified_key(
    path: Path, hint: str, payload: bytes, sigs: list[bytes], keys: list[TrustedKey]
) -> TrustedKey:
    """The trusted key one of the signatures verifies with; SignatureError otherwise."""
    message = pae(payload)
    for trusted in keys:
        if hint and hint != trusted.hint:
            continue
        if any(signature_valid(trusted.key, sig, message) for sig in sigs):
            return trusted
    sources = ", ".join(f"{k.source} ({k.hint[:12]})" for k in keys)
    if hint and all(hint != k.hint for k in keys):
        raise SignatureError(
            f"{path}: signed by a key that is not trusted (key hint {hint[:12]}...); "
            f"trusted: {sources}"
        )
    raise SignatureError(
        f"{path}: the signature does not verify with the trusted key(s) {sources}: the "
        "signed statement or the signature was changed"
    )


def _signed_files(path: Path, payload: bytes) -> tuple[str, str, dict[str, str]]:
    """Subject name, subject digest and ``{file: sha256}`` of a verified statement."""
    try:
        statement = json.loads(payload)
        if _get(statement, "_type") != STATEMENT_TYPE:
            raise ValueError(f"statement type {statement.get('_type')!r}")
        if _get(statement, "predicateType") != PREDICATE_TYPE:
            raise ValueError(f"predicate type {statement.get('predicateType')!r}")
        (subject,) = _get(statement, "subject", kind=list)
        name, root = _get(subject, "name", kind=str), _get(subject, "digest", "sha256", kind=str)
        serialization = _get(statement, "predicate", "serialization", kind=dict)
        if serialization.get("method") != "files" or serialization.get("hash_type") != "sha256":
            raise ValueError(f"serialization {serialization}; expected files hashed with sha256")
        resources = _get(statement, "predicate", "resources", kind=list)
        files: dict[str, str] = {}
        for r in resources:
            n, algorithm, digest = (_get(r, k, kind=str) for k in ("name", "algorithm", "digest"))
            if algorithm != "sha256" or len(bytes.fromhex(digest)) != 32:
                raise ValueError(f"resource {n!r}: {algorithm} digest {digest!r}")
            parts = PurePosixPath(n).parts
            if not parts or n.startswith("/") or ".." in parts or "\x00" in n or n in files:
                raise ValueError(f"resource name {n!r}")
            files[n] = digest.lower()
    except (KeyError, ValueError, TypeError, RecursionError) as exc:
        raise SignatureError(
            f"{path}: the signed statement is not one of model signing ({exc})"
        ) from None
    computed = hashlib.sha256(b"".join(bytes.fromhex(d) for d in files.values())).hexdigest()
    if computed != root.lower():
        raise SignatureError(
            f"{path}: the subject digest {root} is not that of the signed files ({computed})"
        )
    return name, root, files


def _compare(
    directory: Path, signed: Mapping[str, str], keep: Iterable[str]
) -> tuple[dict[str, FileDigest], dict[str, bytes]]:
    """Hash every file of ``directory``; SignatureError naming each file added, removed
    or changed since signing."""
    keep = set(keep)
    present = dict(walk_files(directory, SIGNATURE_NAME))
    digests: dict[str, FileDigest] = {}
    kept: dict[str, bytes] = {}
    problems = [f"{n}: not signed (added after signing)" for n in sorted(present.keys() - signed)]
    problems += [
        f"{n}: signed but missing (removed after signing)" for n in sorted(signed.keys() - present)
    ]
    for name in sorted(present.keys() & signed.keys(), key=path_order):
        digest, data = hash_file(present[name], keep=name in keep)
        digests[name] = digest
        if data is not None:
            kept[name] = data
        if digest.sha256 != signed[name]:
            problems.append(
                f"{name}: changed since it was signed (sha256 {digest.sha256[:12]}..., "
                f"signed {signed[name][:12]}...)"
            )
    if problems:
        raise SignatureError(f"{directory}: does not match its signature: {'; '.join(problems)}")
    return digests, kept


def verify_directory(
    directory: str | Path,
    trusted_keys: Iterable[str | Path | TrustedKey | Any],
    *,
    keep: Iterable[str] = (),
) -> VerifiedModel:
    """Check that ``directory/model.sig`` was made by one of ``trusted_keys`` and that the
    directory holds exactly the files it signed, unchanged.

    Parameters
    ----------
    directory : a model directory (any directory signed in model_signing's key mode)
    trusted_keys : PEM public key files, loaded ``EllipticCurvePublicKey`` objects or
        :class:`TrustedKey` objects; at least one
    keep : names of (small) files whose bytes, as hashed, are returned in ``kept``

    Returns
    -------
    VerifiedModel

    Raises
    ------
    SignatureError
        Unsigned; a bundle that is not key-mode model signing; signed by a key that is
        not trusted or a signature that does not verify; a file added, removed or
        changed since signing, a symbolic link or a special file (each file named).
    """
    directory = Path(directory)
    keys = load_trusted_keys(trusted_keys)
    if not keys:
        raise SignatureError(f"{directory}: no trusted key given to verify its signature with")
    if not directory.is_dir():
        raise SignatureError(f"{directory}: not a directory; only a directory can be signed")
    path = directory / SIGNATURE_NAME
    hint, payload, sigs = _check_key_mode(path, _read_bundle(path))
    trusted = _verified_key(path, hint, payload, sigs, keys)
    name, root, signed = _signed_files(path, payload)
    files, kept = _compare(directory, signed, keep)
    return VerifiedModel(directory, files, root, name, trusted, kept)
