"""Signed model directories: OpenSSF model signing's bundle, in key mode, offline.

A model directory is signed as a whole by ``model.sig`` beside its files: the format
of OpenSSF model signing (``model-signing`` 1.x, sigstore/model-transparency), so
``model_signing verify key`` accepts what :func:`sign_directory` writes and
:func:`verify_directory` accepts what ``model_signing sign key`` writes. Only the
``cryptography`` package is used (extra ``signing``); nothing goes to the network.

``model.sig`` is a Sigstore bundle v0.3 (JSON)::

    {"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
     "verificationMaterial": {"publicKey": {"hint": KEY_HINT}, "tlogEntries": []},
     "dsseEnvelope": {"payload": BASE64(STATEMENT),
                      "payloadType": "application/vnd.in-toto+json",
                      "signatures": [{"sig": BASE64(ECDSA DER signature), "keyid": ""}]}}

``KEY_HINT`` is the sha256 (hex) of the public key's PEM (SubjectPublicKeyInfo).
The signature is ECDSA (P-256 with SHA-256, P-384 with SHA-384, P-521 with SHA-512)
over DSSE's pre-authentication encoding of the payload,
``b"DSSEv1 %d %s %d %s" % (len(type), type, len(payload), payload)``. ``STATEMENT``
is an in-toto Statement v1::

    {"_type": "https://in-toto.io/Statement/v1",
     "subject": [{"name": DIRECTORY NAME, "digest": {"sha256": ROOT}}],
     "predicateType": "https://model_signing/signature/v1.0",
     "predicate": {
       "serialization": {"method": "files", "hash_type": "sha256",
                         "allow_symlinks": false, "ignore_paths": ["model.sig"]},
       "resources": [{"name": "loss.png", "algorithm": "sha256", "digest": HEX}, ...]}}

``resources`` holds every file of the directory but ``model.sig`` (POSIX paths
relative to it, in path order), and ``ROOT`` is the sha256 of their digests' bytes
concatenated in that order. ``manifest.json`` is one of them, so the signature covers
the manifest, and through the manifest's own sizes and sha256 every artifact twice.

Verification here is stricter than ``model_signing``'s: the directory must hold
exactly the signed files (a file added, even one a bundle's ``ignore_paths`` names,
is refused, as is one removed or changed), no symbolic link or special file, and the
bundle must be in key mode (no transparency log entries, no certificate). The only
names ignored are ``model.sig`` and the hidden temporaries a signer writes beside it
(:mod:`inference.io.atomic`). Every refusal is a :class:`SignatureError` naming the file.
"""

from __future__ import annotations

from inference.signing.bundle import (
    BUNDLE_MEDIA_TYPE,
    PAYLOAD_TYPE,
    PREDICATE_TYPE,
    SIGNATURE_NAME,
    STATEMENT_TYPE,
    VerifiedModel,
    pae,
    sign_directory,
    verify_directory,
)
from inference.signing.files import FileDigest
from inference.signing.keys import (
    CURVES,
    TRUSTED_KEYS_ENV,
    TrustedKey,
    generate_key_pair,
    key_hint,
    load_private_key,
    load_trusted_keys,
    trusted_keys_from_environment,
)

__all__ = [
    "BUNDLE_MEDIA_TYPE",
    "CURVES",
    "PAYLOAD_TYPE",
    "PREDICATE_TYPE",
    "SIGNATURE_NAME",
    "STATEMENT_TYPE",
    "TRUSTED_KEYS_ENV",
    "FileDigest",
    "TrustedKey",
    "VerifiedModel",
    "generate_key_pair",
    "key_hint",
    "load_private_key",
    "load_trusted_keys",
    "pae",
    "sign_directory",
    "trusted_keys_from_environment",
    "verify_directory",
]
