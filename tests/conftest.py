"""Shared fixtures: bundled data, fitted runs and exported models (built once per session).

Also registers, once for the suite, the Hypothesis profile every property test runs
under (reproducible: derandomized, no example database, no deadline), and checks the
native readers: with ``LINREG_REQUIRE_NATIVE=1`` (CI) a reader whose C extension is
missing fails the run instead of letting its tests skip.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

try:
    from hypothesis import HealthCheck, settings
except ImportError:  # the property tests skip without hypothesis
    pass
else:
    settings.register_profile(
        "linreg",
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.function_scoped_fixture,
            HealthCheck.data_too_large,
        ],
    )
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "linreg"))

DATA = Path(__file__).resolve().parents[1] / "training" / "data" / "bundled"


def pytest_sessionstart(session: pytest.Session) -> None:
    if os.environ.get("LINREG_REQUIRE_NATIVE", "") in ("", "0"):
        return
    from inference.io import native_status

    missing = {k: v for k, v in native_status().items() if v != "active"}
    if missing:
        raise pytest.UsageError(f"LINREG_REQUIRE_NATIVE=1, but native readers are not: {missing}")


def lstsq(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Independent reference: ``[intercept, *coef]`` by numpy least squares."""
    Z = np.column_stack([np.ones(len(y)), X])
    return np.linalg.lstsq(Z, y, rcond=None)[0]


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    """A factory ``exported(dataset, dtype) -> (TrainingRun, model_dir)``, cached."""
    pytest.importorskip("torch")
    from training.data import load_dataset
    from training.export import export_model
    from training.pipeline import train

    cache: dict[tuple[str, str], tuple] = {}

    def make(dataset: str = "plant_richness_lr", dtype: str = "float32"):
        key = (dataset, dtype)
        if key not in cache:
            run = train(load_dataset(dataset), dtype=dtype, progress=False)
            out = tmp_path_factory.mktemp(f"{dataset}-{dtype}") / "model"
            export_model(run, out, dtype=dtype)
            cache[key] = (run, out)
        return cache[key]

    return make
