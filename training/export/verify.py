"""Proving an export equal to the fit before it is written, and choosing its dtype.

Both artifacts are loaded the way users load them (the ONNX file through
:class:`inference.Predictor`, the TorchScript file through ``torch.jit.load``) and
compared with the eager ``nn.Linear`` in the export dtype, itself compared with
the float64 fit, on the training rows and on :data:`VERIFY_RANDOM_ROWS` random
rows, to :data:`VERIFY_RTOL` relative to the largest prediction. A run from a
scikit-learn pipeline on raw columns (``run.reference``) has the ONNX model compared
with the pipeline's own ``predict`` on the same rows too.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from inference.errors import CoefficientError, UnknownLevelWarning
from inference.manifest import ONNX_NAME, TORCHSCRIPT_NAME
from training.errors import ExportError
from training.pipeline import TrainingRun
from training.solver.sgd import TORCH_DTYPES, linear_module

__all__ = ["VERIFY_RANDOM_ROWS", "VERIFY_RTOL", "choose_dtype", "export_module", "verify"]

#: artifacts must agree with the eager model to this relative error
VERIFY_RTOL = 1e-5
VERIFY_RANDOM_ROWS = 10_000


def _relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    """Largest absolute difference over the largest magnitude of ``expected``."""
    actual = np.asarray(actual, dtype=np.float64).reshape(-1)
    expected = np.asarray(expected, dtype=np.float64).reshape(-1)
    if actual.shape != expected.shape:
        return float("inf")
    scale = max(float(np.abs(expected).max(initial=0.0)), np.finfo(np.float64).tiny)
    err = np.abs(actual - expected)
    return float(err.max(initial=0.0) / scale) if np.isfinite(err).all() else float("inf")


def _verification_inputs(run: TrainingRun) -> dict[str, tuple[Any, np.ndarray]]:
    """What each check runs on: ``{what: (the Predictor's input, the design matrix)}``.

    A model on numbers reads its matrix itself; a design model reads raw columns (a
    DataFrame) whose design matrix the eager model and the fit read. The random rows
    of a design model draw each number uniformly between its training extremes (so a
    log or a square root stays defined) and each factor's levels uniformly; every
    tenth row has a gap in each number that has a ``fill``, and a value that is no
    level in each text or integer factor whose ``unknown`` is "zero".
    """
    rng = np.random.default_rng(run.estimator.seed)
    if run.design is None:
        mean = run.X_train.mean(axis=0)
        scale = run.X_train.std(axis=0) + 1.0
        shape = (VERIFY_RANDOM_ROWS, run.X_train.shape[1])
        random_rows = mean + scale * rng.standard_normal(shape)
        return {
            "training rows": (run.X_train, run.X_train),
            f"{VERIFY_RANDOM_ROWS} random rows": (random_rows, random_rows),
        }
    import pandas as pd

    raw: dict[str, Any] = {}
    for spec in run.design.inputs:
        if spec.kind == "numeric":
            values = np.asarray(run.raw_train[spec.name], dtype=np.float64)
            raw[spec.name] = rng.uniform(np.nanmin(values), np.nanmax(values), VERIFY_RANDOM_ROWS)
            if spec.fill is not None:
                raw[spec.name][::10] = np.nan
        else:
            levels = np.array(spec.levels, dtype=object)
            raw[spec.name] = levels[rng.integers(0, len(levels), VERIFY_RANDOM_ROWS)]
            if spec.type == "int":
                raw[spec.name] = raw[spec.name].astype(np.int64)
            if spec.unknown == "zero" and spec.type != "bool":
                unseen = max(map(int, spec.levels)) + 1 if spec.type == "int" else "(no level)"
                raw[spec.name][5::10] = unseen
    random_frame = pd.DataFrame(raw)
    with warnings.catch_warnings():  # the unseen values above
        warnings.simplefilter("ignore", UnknownLevelWarning)
        random_matrix = run.design.matrix(raw)
    return {
        "training rows": (run.raw_train, run.X_train),
        f"{VERIFY_RANDOM_ROWS} random rows": (random_frame, random_matrix),
    }


def _fit_predictions(run: TrainingRun, X: np.ndarray) -> np.ndarray:
    """The fit's own predictions (n,) in float64: ``X @ coef + intercept``."""
    est = run.estimator
    return np.asarray(X, dtype=np.float64) @ est.coef_ + est.intercept_


def export_module(run: TrainingRun, dtype: str) -> torch.nn.Linear:
    """The fitted ``nn.Linear`` (on raw features) in the export dtype."""
    return linear_module(run.estimator.coef_, run.estimator.intercept_, dtype)


def _dtype_error(run: TrainingRun, dtype: str) -> float:
    """How far a ``dtype`` model is from the fit: the largest relative error of its
    eager predictions against :func:`_fit_predictions` on the verification rows."""
    module = export_module(run, dtype)
    worst = 0.0
    for _, X in _verification_inputs(run).values():
        with torch.no_grad():
            got = module(torch.from_numpy(X).to(module.weight.dtype)).numpy().reshape(-1)
        worst = max(worst, _relative_error(got, _fit_predictions(run, X)))
    return worst


def choose_dtype(run: TrainingRun, dtype: str = "auto") -> tuple[str, str]:
    """The export dtype and why: ``"auto"`` exports float32 when a float32 model
    reproduces the fit within :data:`VERIFY_RTOL`, else float64. An explicit
    ``"float32"`` that cannot reproduce the fit raises :class:`ExportError`."""
    if dtype not in ("auto", *TORCH_DTYPES):
        raise ExportError(f"dtype must be 'auto', 'float32' or 'float64', got {dtype!r}")
    if dtype == "float64":
        return "float64", "asked for"
    err = _dtype_error(run, "float32")
    if err <= VERIFY_RTOL:
        why = "asked for" if dtype == "float32" else "auto"
        return "float32", f"{why}: float32 reproduces the fit to {err:.2g} (relative)"
    if dtype == "float32":
        raise ExportError(
            f"a float32 model differs from the fit by {err:.3g} (relative), above the "
            f"tolerance {VERIFY_RTOL:g}; export with dtype='float64'; nothing was written"
        )
    return "float64", f"auto: float32 would differ from the fit by {err:.2g} (relative)"


def _load(directory: Path) -> tuple[Any, CoefficientError | None]:
    """The directory's Predictor; when the Predictor refuses it because the manifest's
    coefficients are not the graph's, the bare ONNX file's, and that refusal (the
    comparison below then says how far the graph is from the fit)."""
    from inference import Predictor

    # the staging directory is not signed yet (export signs it last): this check is of
    # the numbers, whatever trusted keys LINREG_TRUSTED_KEYS names
    try:
        return Predictor.load(directory, providers="cpu", trusted_keys=()), None
    except CoefficientError as exc:
        return Predictor.load(directory / ONNX_NAME, providers="cpu", trusted_keys=()), exc


def verify(directory: Path, run: TrainingRun, module: torch.nn.Linear) -> dict[str, Any]:
    """Load both artifacts the way users do and compare with the eager ``module``
    (the fit in the export dtype), and that module with the fit itself."""
    dtype = module.weight.dtype
    predictor, refused = _load(directory)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.load(str(directory / TORCHSCRIPT_NAME), map_location="cpu")
    errors: dict[str, float] = {"onnx": 0.0, "torchscript": 0.0, "fit": 0.0}
    inputs = _verification_inputs(run)
    for what, (raw, X) in inputs.items():
        xt = torch.from_numpy(X).to(dtype)
        with torch.no_grad():
            eager = module(xt).numpy().reshape(-1)
            ts = scripted(xt).numpy().reshape(-1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UnknownLevelWarning)
            ort = predictor.predict(raw if run.design is not None else xt.numpy())
        checks = [
            ("onnx", ort, eager),
            ("torchscript", ts, eager),
            ("fit", eager, _fit_predictions(run, X)),
        ]
        if run.reference is not None:
            checks.append(("pipeline", ort, run.reference(raw)))
        for artifact, got, ref in checks:
            err = _relative_error(got, ref)
            errors[artifact] = max(errors.get(artifact, 0.0), err)
            if not err <= VERIFY_RTOL:
                against = {"fit": "the fit", "pipeline": "the pipeline's own predict"}.get(
                    artifact, "the eager model"
                )
                artifact = "onnx" if artifact == "pipeline" else artifact
                raise ExportError(
                    f"verification failed: the {artifact} artifact differs from {against} "
                    f"on the {what} by {err:.3g} (relative), above the tolerance "
                    f"{VERIFY_RTOL:g}; nothing was written"
                )
    if refused is not None:  # the numbers agree, the manifest does not
        raise ExportError(f"verification failed: {refused}; nothing was written")
    measure = "max |artifact - eager| / max |eager|; fit: eager against the float64 fit"
    if run.reference is not None:
        measure += "; pipeline: onnx against the scikit-learn pipeline's own predict"
    return {
        "tolerance": VERIFY_RTOL,
        "measure": measure,
        "rows": {what: int(len(X)) for what, (_, X) in inputs.items()},
        "max_relative_error": errors,
        "onnx_loaded_with": "inference.Predictor (onnxruntime, CPUExecutionProvider)",
        "torchscript_loaded_with": "torch.jit.load",
    }
