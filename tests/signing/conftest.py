"""Keys and model copies for the signing tests.

Every test works on copies of the bundled models (``exported_models/``) in its own
temporary directory, and runs without ``LINREG_TRUSTED_KEYS`` unless it sets it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.serve.conftest import start_server  # noqa: F401 - the fixture, for the serve test

pytest.importorskip("cryptography", reason="signing needs the 'signing' extra (cryptography)")

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = ROOT / "exported_models"


@pytest.fixture(autouse=True)
def _no_trusted_keys_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LINREG_TRUSTED_KEYS", "")  # recorded, so restored after the test
    monkeypatch.delenv("LINREG_TRUSTED_KEYS")


def make_keys(directory: Path, name: str, curve: str = "P-256") -> tuple[Path, Path]:
    """``(private, public)`` PEM files made by :func:`generate_key_pair`."""
    from inference.signing import generate_key_pair

    private, public = directory / f"{name}.pem", directory / f"{name}.pub.pem"
    generate_key_pair(private, public, curve=curve)
    return private, public


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    return make_keys(tmp_path, "signer")


@pytest.fixture
def other_keys(tmp_path: Path) -> tuple[Path, Path]:
    return make_keys(tmp_path, "other")


@pytest.fixture
def model(tmp_path: Path) -> Path:
    """An unsigned copy of the bundled three-feature model."""
    dest = tmp_path / "models" / "plant"
    shutil.copytree(BUNDLED / "plant_richness_mlr", dest)
    return dest


@pytest.fixture
def signed(model: Path, keys: tuple[Path, Path]) -> Path:
    from inference.signing import sign_directory

    sign_directory(model, keys[0])
    return model
