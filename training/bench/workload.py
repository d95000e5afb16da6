"""What every backend is fed: the synthetic models, the seeded input, the reference.

Each backend gets the same seeded float32 array of shape (n, k) and must agree with
float64 numpy on the model's stored parameters to a relative error of ``RTOL``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "BATCH_SIZES",
    "FEATURES",
    "RTOL",
    "SEED",
    "make_input",
    "make_models",
    "model_parameters",
    "reference_output",
    "relative_error",
]

BATCH_SIZES = (1, 64, 4096, 65536, 1_048_576)
FEATURES = (1, 16)
SEED = 0
#: every output must agree with float64 numpy to this relative error (of max |reference|)
RTOL = 1e-5


def make_models(directory: str | Path, features: Iterable[int] = FEATURES) -> dict[int, Path]:
    """Fit and export one synthetic float32 model per feature count, ``directory/k<k>``.

    A model already there (with its manifest) is reused. 200 seeded rows,
    ``y = x @ w + 0.5 + noise``; fitted by ``LinearRegressionSGD`` and written by
    ``export_model`` (so verified against the eager model), without plots.
    """
    from training.export import export_model
    from training.pipeline import TrainingRun
    from training.solver.estimator import LinearRegressionSGD

    directory = Path(directory)
    models: dict[int, Path] = {}
    for k in sorted(set(features)):
        path = directory / f"k{k}"
        if not (path / "manifest.json").is_file():
            rng = np.random.default_rng(SEED + k)
            X = rng.standard_normal((200, k))
            y = X @ rng.uniform(-2.0, 2.0, k) + 0.5 + 0.1 * rng.standard_normal(200)
            est = LinearRegressionSGD(dtype="float32", progress=False, seed=SEED).fit(X, y)
            run = TrainingRun.from_estimator(
                est, X, y, features=[f"x{j}" for j in range(k)], target="y"
            )
            export_model(run, path, plots=False)
        models[k] = path
    return models


def model_parameters(model_dir: str | Path) -> tuple[np.ndarray, np.float32]:
    """``(w, b)`` as the ONNX file stores them: w (k,) float32, b float32."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(Path(model_dir) / "model.onnx"))
    tensors = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    w = np.ascontiguousarray(tensors["weight"].reshape(-1), dtype=np.float32)
    return w, np.float32(tensors["bias"].reshape(-1)[0])


def make_input(n: int, k: int, seed: int = SEED) -> np.ndarray:
    """The seeded input every backend gets: (n, k) float32, C-contiguous, N(0, 1)."""
    rng = np.random.default_rng([seed, k])
    return rng.standard_normal((n, k), dtype=np.float32)


def reference_output(x: np.ndarray, model_dir: str | Path) -> np.ndarray:
    """float64 ``x @ w + b`` with the model's stored parameters: shape (n,)."""
    w, b = model_parameters(model_dir)
    return x.astype(np.float64) @ w.astype(np.float64) + float(b)


def relative_error(got: Any, expected: np.ndarray) -> float:
    """max |got - expected| / max |expected| (inf when shapes differ)."""
    got = np.asarray(got, dtype=np.float64)
    if got.shape != expected.shape:
        return float("inf")
    scale = max(float(np.abs(expected).max(initial=0.0)), 1e-30)
    return float(np.abs(got - expected).max(initial=0.0) / scale)
