"""Export a fitted model to ONNX and TorchScript with a manifest, proven before it is visible.

The ONNX graph is written directly from the fitted ``nn.Linear`` parameters as
``prediction = Reshape(Gemm(W, features, b, transB=1), [-1])``: ``W`` is the
(1, k) weight row, so Gemm computes ``W · featuresᵀ``, a (1, batch) row, and the
Reshape (a view, no copy) makes it the 1-D (batch,) vector users expect. In ONNX
Runtime's CPU kernels this orientation (M = 1, N = batch) streams the input once;
the textbook ``features · Wᵀ`` (N = 1) runs MLAS's GEMM with a single output
column and was 2 to 6 times slower at a million rows here (README, "Why this
graph"). The graph has no timestamps, so the same parameters give the same bytes.

Export order: write every artifact into a temporary directory beside the
destination, load the ONNX file through :class:`inference.Predictor` (the loader
users use, checking the manifest and hashes) and the TorchScript file through
``torch.jit.load``, compare both with the eager model on the training rows and
on 10,000 random rows, and only then move the directory into place. On any
failure the temporary directory is removed and the destination is untouched.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import datetime as dt
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

from inference import __version__ as package_version
from inference.manifest import (
    FORMAT_VERSION,
    INPUT_NAME,
    LOSS_PLOT_NAME,
    MANIFEST_NAME,
    ONNX_NAME,
    OUTPUT_NAME,
    REGRESSION_PLOT_NAME,
    TORCHSCRIPT_NAME,
    Manifest,
    file_digest,
)
from training.pipeline import TrainingRun

__all__ = ["ExportError", "VERIFY_RTOL", "OPSET", "build_onnx", "export_model"]

#: opset 17 runs on onnxruntime 1.13 and later (the project requires 1.17)
OPSET = 17
IR_VERSION = 8
#: artifacts must agree with the eager model to this relative error
VERIFY_RTOL = 1e-5
VERIFY_RANDOM_ROWS = 10_000

_ONNX_DTYPES = {"float32": TensorProto.FLOAT, "float64": TensorProto.DOUBLE}


class ExportError(RuntimeError):
    """The export failed; nothing was written at the destination."""


def build_onnx(
    coef: np.ndarray,
    intercept: float,
    *,
    features: list[str],
    target: str,
    dtype: str = "float32",
    name: str = "linreg",
) -> onnx.ModelProto:
    """ONNX model computing ``features @ coef + intercept``.

    coef : (n_features,) float. Input ``features`` (batch, n_features) and output
    ``prediction`` (batch,), both ``dtype``; feature names, target and dtype in
    ``metadata_props``.
    """
    np_dtype = np.dtype(dtype)
    k = len(features)
    weight = numpy_helper.from_array(np.asarray(coef, dtype=np_dtype).reshape(1, k), "weight")
    bias = numpy_helper.from_array(np.asarray([intercept], dtype=np_dtype), "bias")
    flat = numpy_helper.from_array(np.asarray([-1], dtype=np.int64), "flat_shape")
    nodes = [
        helper.make_node(
            "Gemm", ["weight", INPUT_NAME, "bias"], ["prediction_row"], transB=1, name="linear"
        ),
        helper.make_node("Reshape", ["prediction_row", "flat_shape"], [OUTPUT_NAME], name="flat"),
    ]
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info(INPUT_NAME, _ONNX_DTYPES[dtype], ["batch", k])],
        [helper.make_tensor_value_info(OUTPUT_NAME, _ONNX_DTYPES[dtype], ["batch"])],
        [weight, bias, flat],
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="linreg-onnx",
        producer_version=package_version,
        doc_string=f"Linear regression of {target} on {', '.join(features)}",
    )
    model.ir_version = IR_VERSION
    helper.set_model_props(
        model,
        {
            "linreg.features": json.dumps(features),
            "linreg.target": target,
            "linreg.dtype": dtype,
            "linreg.name": name,
        },
    )
    onnx.checker.check_model(model, full_check=True)
    return model


def _relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    """Largest absolute difference over the largest magnitude of ``expected``."""
    actual = np.asarray(actual, dtype=np.float64).reshape(-1)
    expected = np.asarray(expected, dtype=np.float64).reshape(-1)
    if actual.shape != expected.shape:
        return float("inf")
    scale = max(float(np.abs(expected).max(initial=0.0)), np.finfo(np.float64).tiny)
    err = np.abs(actual - expected)
    return float(err.max(initial=0.0) / scale) if np.isfinite(err).all() else float("inf")


def _verification_inputs(run: TrainingRun) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(run.estimator.seed)
    mean = run.X_train.mean(axis=0)
    scale = run.X_train.std(axis=0) + 1.0
    random_rows = mean + scale * rng.standard_normal((VERIFY_RANDOM_ROWS, run.X_train.shape[1]))
    return {"training rows": run.X_train, f"{VERIFY_RANDOM_ROWS} random rows": random_rows}


def _verify(directory: Path, run: TrainingRun) -> dict[str, Any]:
    """Load both artifacts the way users do and compare with the eager model."""
    from inference import Predictor

    module = run.estimator.module_
    dtype = module.weight.dtype
    predictor = Predictor.load(directory, providers="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.load(str(directory / TORCHSCRIPT_NAME), map_location="cpu")
    errors: dict[str, float] = {"onnx": 0.0, "torchscript": 0.0}
    for what, X in _verification_inputs(run).items():
        xt = torch.from_numpy(X).to(dtype)
        with torch.no_grad():
            eager = module(xt).numpy().reshape(-1)
            ts = scripted(xt).numpy().reshape(-1)
        ort = predictor.predict(xt.numpy())
        for artifact, got in (("onnx", ort), ("torchscript", ts)):
            err = _relative_error(got, eager)
            errors[artifact] = max(errors[artifact], err)
            if not err <= VERIFY_RTOL:
                raise ExportError(
                    f"verification failed: the {artifact} artifact differs from the eager model "
                    f"on the {what} by {err:.3g} (relative), above the tolerance {VERIFY_RTOL:g}; "
                    "nothing was written"
                )
    return {
        "tolerance": VERIFY_RTOL,
        "measure": "max |artifact - eager| / max |eager|",
        "rows": {what: int(len(X)) for what, X in _verification_inputs(run).items()},
        "max_relative_error": errors,
        "onnx_loaded_with": "inference.Predictor (onnxruntime, CPUExecutionProvider)",
        "torchscript_loaded_with": "torch.jit.load",
    }


def _created_at() -> str:
    # SOURCE_DATE_EPOCH (reproducible-builds convention) pins the timestamp.
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    when = (
        dt.datetime.fromtimestamp(int(epoch), tz=dt.timezone.utc)
        if epoch
        else dt.datetime.now(tz=dt.timezone.utc).replace(microsecond=0)
    )
    return when.isoformat().replace("+00:00", "Z")


def _versions() -> dict[str, str]:
    import onnxruntime

    return {
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "numpy": np.__version__,
        "linreg": package_version,
    }


def _manifest_data(run: TrainingRun, name: str) -> dict[str, Any]:
    est = run.estimator
    k = len(run.features)
    return {
        "format_version": FORMAT_VERSION,
        "name": name,
        "created_at": _created_at(),
        "features": run.features,
        "target": run.target,
        "dtype": est.dtype,
        "onnx": {
            "file": ONNX_NAME,
            "input": {"name": INPUT_NAME, "shape": ["batch", k], "dtype": est.dtype},
            "output": {"name": OUTPUT_NAME, "shape": ["batch"], "dtype": est.dtype},
            "opset": OPSET,
            "graph": "Reshape(Gemm(weight (1,k), features, bias, transB=1), [-1])",
        },
        "torchscript": {
            "file": TORCHSCRIPT_NAME,
            "input_shape": ["batch", k],
            "output_shape": ["batch", 1],
        },
        "parameters": {"coef": est.coef_.tolist(), "intercept": est.intercept_},
        "artifacts": {},
        "training": {
            "preset": run.preset,
            "lr": est.lr,
            "lr_used": est.lr_,
            "max_epochs": est.max_epochs,
            "epochs_run": est.n_epochs_,
            "batch_size": est.batch_size,
            "momentum": est.momentum,
            "tol": est.tol,
            "early_stop": est.early_stop,
            "standardize": est.standardize,
            "seed": est.seed,
            "converged": bool(est.converged_),
            "final_mse": est.loss_history_[-1],
            "data": run.data,
        },
        "metrics": run.metrics,
        "statistics": run.statistics.to_dict(),
        "versions": _versions(),
    }


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two directories (Linux renameat2 RENAME_EXCHANGE); False if
    the platform cannot."""
    libc_name = ctypes.util.find_library("c")
    if not libc_name or not hasattr(os, "O_DIRECTORY"):
        return False
    try:
        libc = ctypes.CDLL(libc_name, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    rc = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    return rc == 0


def _move_into_place(staging: Path, destination: Path, overwrite: bool) -> None:
    if not destination.exists():
        os.rename(staging, destination)
        return
    if not overwrite:
        raise ExportError(f"{destination} already exists; pass overwrite=True to replace it")
    if _exchange(staging, destination):
        shutil.rmtree(staging)  # staging now holds the old model
        return
    old = destination.with_name(f".{destination.name}.old-{os.getpid()}")
    os.rename(destination, old)
    os.rename(staging, destination)
    shutil.rmtree(old)


def export_model(
    run: TrainingRun,
    directory: str | Path,
    *,
    name: str | None = None,
    overwrite: bool = False,
    plots: bool = True,
) -> Path:
    """Write ``model.onnx``, ``model.pt``, ``manifest.json`` and plots to ``directory``.

    Every artifact is verified against the eager model (module docstring) before
    the directory appears. Replacing an existing directory needs ``overwrite=True``.
    Returns the destination path.
    """
    destination = Path(directory).absolute()
    name = name or destination.name
    if destination.exists() and not overwrite:
        raise ExportError(f"{destination} already exists; pass overwrite=True to replace it")
    if destination.exists() and not (destination / MANIFEST_NAME).is_file():
        raise ExportError(
            f"{destination} exists and is not a model directory (no {MANIFEST_NAME}); "
            "refusing to replace it"
        )
    destination.parent.mkdir(parents=True, exist_ok=True)
    est = run.estimator
    staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}.tmp-", dir=destination.parent))
    try:
        model = build_onnx(
            est.coef_,
            est.intercept_,
            features=run.features,
            target=run.target,
            dtype=est.dtype,
            name=name,
        )
        (staging / ONNX_NAME).write_bytes(model.SerializeToString())
        with warnings.catch_warnings():
            # TorchScript is deprecated upstream; its users still ask for it (README).
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.jit.save(torch.jit.script(est.module_), str(staging / TORCHSCRIPT_NAME))
        if plots:
            from training.plots import plot_loss, plot_regression

            plot_regression(
                staging / REGRESSION_PLOT_NAME,
                run.X_train,
                run.y_train,
                est.predict(run.X_train),
                features=run.features,
                target=run.target,
                coef=est.coef_,
                intercept=est.intercept_,
            )
            plot_loss(staging / LOSS_PLOT_NAME, est.loss_history_, title=f"{name}: training MSE")
        data = _manifest_data(run, name)
        for path in sorted(staging.iterdir()):
            data["artifacts"][path.name] = file_digest(path)
        manifest = Manifest(data, source=str(staging / MANIFEST_NAME))
        manifest.write(staging)
        data["verification"] = _verify(staging, run)
        Manifest(data, source=str(staging / MANIFEST_NAME)).write(staging)
        for path in staging.iterdir():
            with open(path, "rb") as f:
                os.fsync(f.fileno())
        staging.chmod(0o777 & ~_umask())  # mkdtemp made it private (0700)
        _move_into_place(staging, destination, overwrite)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return destination
