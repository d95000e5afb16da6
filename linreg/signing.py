"""``linreg keygen``, ``linreg sign`` and ``linreg verify``: signed model directories.

The signature is ``MODEL_DIR/model.sig``, OpenSSF model signing's bundle in key mode
(:mod:`inference.signing`): ``model_signing verify key`` accepts it. Needs the
``signing`` extra (``cryptography``); nothing goes to the network.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from inference.errors import SignatureError
from linreg.common import EXIT_USAGE, fail

__all__ = ["register"]

KEYGEN_DESCRIPTION = """Make an ECDSA key pair for signing models: the private key
(PKCS#8 PEM, written with mode 0600) and the public key (PEM) to give to those who
load the models. Existing files are kept unless --overwrite. Prints the public key's
hint (the sha256 of its PEM, as signatures name it)."""

SIGN_DESCRIPTION = """Sign a model directory: write MODEL_DIR/model.sig, a Sigstore
bundle (DSSE envelope, in-toto statement of every file's sha256, manifest.json
included) in OpenSSF model signing's key mode, which `model_signing verify key`
accepts. An older model.sig is replaced."""

VERIFY_DESCRIPTION = """Check that MODEL_DIR/model.sig was made by a trusted key and
that the directory holds exactly the files it signed, unchanged (a file added,
removed or changed is named). Trusted keys: every --public-key, else the PEM files
named by $LINREG_TRUSTED_KEYS. Exit status: 0 verified, 1 refused, 2 usage error."""


def _keygen(args: argparse.Namespace) -> int:
    from inference.signing import generate_key_pair

    try:
        hint = generate_key_pair(
            args.private_key, args.public_key, curve=args.curve, overwrite=args.overwrite
        )
    except (FileExistsError, SignatureError) as exc:
        raise fail("keygen", exc) from exc
    except OSError as exc:
        raise fail("keygen", f"{exc.filename}: {exc.strerror}") from exc
    print(f"private key {args.private_key} (keep it secret; mode 0600)")
    print(f"public key  {args.public_key} (hint {hint})")
    return 0


def _sign(args: argparse.Namespace) -> int:
    from inference.signing import sign_directory

    try:
        path = sign_directory(args.model_dir, args.key)
    except SignatureError as exc:
        raise fail("sign", exc) from exc
    except OSError as exc:
        raise fail("sign", f"{exc.filename}: {exc.strerror}") from exc
    print(f"signed {args.model_dir} -> {path}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from inference.signing import trusted_keys_from_environment, verify_directory

    keys = args.public_key or trusted_keys_from_environment()
    if not keys:
        raise fail("verify", "no --public-key and $LINREG_TRUSTED_KEYS is not set", EXIT_USAGE)
    try:
        verified = verify_directory(args.model_dir, keys)
    except SignatureError as exc:
        raise fail("verify", exc) from exc
    if args.json:
        files = {n: {"sha256": d.sha256, "size": d.size} for n, d in verified.files.items()}
        report = {
            "directory": str(verified.path),
            "verified": True,
            "key": {"source": verified.key.source, "hint": verified.key.hint},
            "digest": verified.digest,
            "files": files,
        }
        print(json.dumps(report, indent=2))
        return 0
    print(f"{args.model_dir}: signature verified")
    print(f"signed by   {verified.key.source} (hint {verified.key.hint[:16]}...)")
    print(f"digest      sha256:{verified.digest}")
    print(f"files       {', '.join(verified.files)}")
    return 0


def register(subparsers: Any) -> None:
    """Add ``keygen``, ``sign`` and ``verify`` to ``linreg``'s subcommands."""
    k = subparsers.add_parser(
        "keygen", help="make a key pair for signing models", description=KEYGEN_DESCRIPTION
    )
    k.add_argument(
        "--private-key",
        type=Path,
        default=Path("private.pem"),
        metavar="PEM",
        help="where the private key is written, mode 0600 (default: private.pem)",
    )
    k.add_argument(
        "--public-key",
        type=Path,
        default=Path("public.pem"),
        metavar="PEM",
        help="where the public key is written (default: public.pem)",
    )
    k.add_argument(
        "--curve",
        choices=["P-256", "P-384", "P-521"],
        default="P-256",
        help="the ECDSA curve (default: P-256)",
    )
    k.add_argument(
        "--overwrite",
        action="store_true",
        help="replace existing key files (default: refuse, exit status 2)",
    )
    k.set_defaults(func=_keygen)

    s = subparsers.add_parser("sign", help="sign a model directory", description=SIGN_DESCRIPTION)
    s.add_argument("model_dir", type=Path, metavar="MODEL_DIR")
    s.add_argument(
        "--key", type=Path, required=True, metavar="PEM", help="the private key (required)"
    )
    s.set_defaults(func=_sign)

    v = subparsers.add_parser(
        "verify", help="check a model directory's signature", description=VERIFY_DESCRIPTION
    )
    v.add_argument("model_dir", type=Path, metavar="MODEL_DIR")
    v.add_argument(
        "--public-key",
        type=Path,
        action="append",
        metavar="PEM",
        help="a trusted public key; repeat for several (default: the files in "
        "$LINREG_TRUSTED_KEYS)",
    )
    v.add_argument(
        "--json", action="store_true", help="print the result as JSON (default: as text)"
    )
    v.set_defaults(func=_verify)
