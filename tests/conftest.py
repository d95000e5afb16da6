"""Shared fixtures: bundled data, fitted runs and exported models (built once per session)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).resolve().parents[1] / "training" / "datasets"


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
