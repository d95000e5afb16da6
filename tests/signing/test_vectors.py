"""Bundles made by OpenSSF model signing itself (model-signing 1.0.1 and 1.1.0, key mode,
P-384), from sigstore/model-transparency's own test data (``data/README.md``): they
verify here without the package installed, and refuse a changed file or another key."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from inference.errors import SignatureError
from inference.signing import verify_directory
from tests.signing.conftest import make_keys

DATA = Path(__file__).parent / "data"
PUBLIC = DATA / "signing-key-pub.pem"


@pytest.mark.parametrize("version", ["v1.0.1", "v1.1.0"])
def test_model_signings_own_bundles_verify(version: str, tmp_path: Path) -> None:
    directory = tmp_path / f"{version}-elliptic-key"
    shutil.copytree(DATA / directory.name, directory)
    verified = verify_directory(directory, [PUBLIC])
    assert sorted(verified.files) == ["signme-1", "signme-2"]
    assert verified.files["signme-1"].size == 9 and verified.model_name == directory.name
    (directory / "signme-2").write_text("signme-3")
    with pytest.raises(SignatureError, match="signme-2: changed since it was signed"):
        verify_directory(directory, [PUBLIC])


def test_another_key_is_refused_on_their_bundle(tmp_path: Path) -> None:
    _, other = make_keys(tmp_path, "other", "P-384")
    # 1.1.0 names its key by a hint: refused without trying; 1.0.1 has none: tried, fails
    for version, says in (("v1.1.0", "not trusted"), ("v1.0.1", "does not verify")):
        with pytest.raises(SignatureError, match=says):
            verify_directory(DATA / f"{version}-elliptic-key", [other])
