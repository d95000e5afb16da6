"""Export a fitted model to ONNX and TorchScript with a manifest, proven before it is visible.

The ONNX graph is :func:`training.export.graph.build_onnx`'s.

Export order: write every artifact into a temporary directory beside the
destination, load the ONNX file through :class:`inference.Predictor` (the loader
users use, checking the manifest and hashes) and the TorchScript file through
``torch.jit.load``, compare both with the eager model on the training rows and
on 10,000 random rows, and only then move the directory into place. On any
failure the temporary directory is removed and the destination is untouched.

Dtype: training runs in float64 by default; the artifacts get their own dtype
(:func:`choose_dtype`). ``"auto"`` exports float32 (half the memory traffic per
row) when a float32 model reproduces the float64 fit within ``VERIFY_RTOL`` on
those same rows, and float64 otherwise (for example Longley's data, whose
predictions cancel digits float32 does not have); the manifest's ``dtype_reason``
says which and why. The eager model the artifacts are checked against is the fit
in the export dtype, itself checked against the float64 fit, so no export can
disagree with the fit it reports.

Moving into place: a new destination is one ``rename``. An existing model is
swapped with the staging directory in one atomic ``renameat2(RENAME_EXCHANGE)``
(Linux), so a reader or a SIGKILL sees the complete old model or the complete
new one. Without renameat2 (macOS, old glibc, file systems refusing the flag)
the old model is renamed to ``.<name>.old-<host>-<pid>-<random>`` and the new one
renamed in: a process killed between those two renames leaves **no model at the
destination** for a while, the complete old one waiting under its ``.old-`` name.
The next export to that destination restores it (below) before doing anything
else, so the old state comes back; until then readers find nothing there.

Leftovers of killed writers: the staging directory is named
``.<name>.tmp-<host>-<pid>-<random>`` and the old copy
``.<name>.old-<host>-<pid>-<random>``, beside the destination, ``<host>`` being
8 hex digits of the CRC-32 of the host name and ``<pid>`` the writer's process id
(the names of :mod:`inference.io.atomic`, shared with the batch job's temporaries).
A process killed by SIGKILL cannot remove them, so every export first looks at
this destination's leftovers of this host whose process no longer exists
(``os.kill(pid, 0)`` raises ``ProcessLookupError``): if the destination is missing
and such an ``.old-`` directory holds a complete model (its manifest's sizes and
sha256 match), it is renamed back to the destination; then the dead writers'
leftovers are removed.
Leftovers of a live process (a zombie counts), of another host, of another user,
symbolic links and names that do not parse are never touched. A writer in
another pid namespace with the same host name looks dead; the worst that does
is fail that writer's export, never lose a model. Windows is skipped
(``os.kill(pid, 0)`` would terminate the process there).

Same bytes: ``model.pt`` scripts :class:`Linear`, an ``nn.Linear`` whose
``in_features`` and ``out_features`` are plain attributes instead of TorchScript
constants. TorchScript collects constants in a Python ``set`` (its order changes
with the per-process string hash seed) and mangles the class name after the
first ``nn.Linear`` of another width scripted in the same process
(``___torch_mangle_0``), so a scripted ``nn.Linear`` differed between processes.
"""

from __future__ import annotations

import datetime as dt
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch

from inference import __version__ as package_version
from inference.io.atomic import (
    discard,
    temporary_name,
)
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
from inference.mlflow_format import example_rows, write_mlflow_files
from training.errors import ExportError, UnsupportedModelError
from training.export import publish as _publish
from training.export.design_export import (
    design_example_rows,
    design_manifest_fields,
    design_onnx,
)
from training.export.graph import OPSET, build_onnx, graph_description
from training.export.verify import VERIFY_RTOL, choose_dtype, export_module, verify
from training.pipeline import TrainingRun
from training.solver.folding import check_model_type

__all__ = [
    "ExportError",
    "VERIFY_RTOL",
    "OPSET",
    "build_onnx",
    "choose_dtype",
    "export_model",
    "graph_description",
]


class Linear(torch.nn.Linear):
    """``nn.Linear`` that TorchScript writes as the same bytes in every process.

    ``in_features`` and ``out_features`` are ordinary ``int`` attributes here, not
    TorchScript constants (module docstring, "Same bytes"); ``forward`` is
    ``nn.Linear``'s.
    """

    __constants__: list[str] = []


def _scriptable(module: torch.nn.Linear) -> Linear:
    """A :class:`Linear` copy of ``module``: same parameters, dtype and mode."""
    copy = torch.nn.utils.skip_init(  # no random init: the global RNG stays as it was
        Linear,
        module.in_features,
        module.out_features,
        bias=module.bias is not None,
        device=module.weight.device,
        dtype=module.weight.dtype,
    )
    copy.load_state_dict(module.state_dict())
    return copy.train(module.training)


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


def _manifest_data(
    run: TrainingRun, name: str, dtype: str, dtype_reason: str, allow_unconverged: bool
) -> dict[str, Any]:
    est = run.estimator
    k = len(run.features)
    return {
        "format_version": FORMAT_VERSION,
        "name": name,
        "created_at": _created_at(),
        "features": run.features,
        "target": run.target,
        "dtype": dtype,
        "dtype_reason": dtype_reason,
        "onnx": {
            "file": ONNX_NAME,
            "input": {"name": INPUT_NAME, "shape": ["batch", k], "dtype": dtype},
            "output": {"name": OUTPUT_NAME, "shape": ["batch"], "dtype": dtype},
            "opset": OPSET,
            "graph": graph_description(k),
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
            "orthogonalize": getattr(est, "orthogonalize", False),
            "fit_intercept": getattr(est, "fit_intercept", True),
            "refinement_steps": getattr(est, "refinement_steps_", 0),
            "dtype": est.dtype,
            "seed": est.seed,
            "converged": bool(est.converged_),
            "allow_unconverged": allow_unconverged,
            "final_mse": est.loss_history_[-1],
            "data": run.data,
        },
        "metrics": run.metrics,
        "statistics": run.statistics.to_dict(),
        "versions": _versions(),
    }


def _design_fields(data: dict[str, Any], run: TrainingRun, dtype: str) -> dict[str, Any]:
    """A design model's manifest fields, merged into the numeric model's sections."""
    fields = design_manifest_fields(run, dtype)
    fields["onnx"] = {"file": data["onnx"]["file"], **fields["onnx"]}
    fields["torchscript"] = {"file": data["torchscript"]["file"], **fields["torchscript"]}
    return fields


def _as_run(
    model: Any, X: Any, y: Any, features: Any, target: Any, sample_weight: Any
) -> TrainingRun:
    """A :class:`TrainingRun` for a fitted estimator or Pipeline and its training data."""
    check_model_type(model)
    if X is None or y is None:
        raise UnsupportedModelError(
            f"export: got a {type(model).__name__} without its training data; pass X= and "
            "y= (the rows it was fitted on, for the manifest's statistics), or a TrainingRun"
        )
    return TrainingRun.from_estimator(
        model, X, y, features=features, target=target, sample_weight=sample_weight
    )


def _check_destination(destination: Path, overwrite: bool) -> None:
    """Restore what a killed export left, then refuse to replace what must stay."""
    _publish.recover(destination)  # first: a killed export's missing model comes back
    if destination.exists() and not overwrite:
        raise ExportError(f"{destination} already exists; pass overwrite=True to replace it")
    if destination.exists() and not (destination / MANIFEST_NAME).is_file():
        raise ExportError(
            f"{destination} exists and is not a model directory (no {MANIFEST_NAME}); "
            "refusing to replace it"
        )
    destination.parent.mkdir(parents=True, exist_ok=True)


def _write_artifacts(
    staging: Path, run: TrainingRun, name: str, dtype: str, plots: bool
) -> torch.nn.Linear:
    """Write ``model.onnx``, ``model.pt`` and the plots into ``staging``; return the
    eager module (the fit in ``dtype``) they must equal."""
    est = run.estimator
    if run.design is not None:
        model = design_onnx(run, dtype, name)
    else:
        model = build_onnx(
            est.coef_,
            est.intercept_,
            features=run.features,
            target=run.target,
            dtype=dtype,
            name=name,
        )
    module = export_module(run, dtype)
    (staging / ONNX_NAME).write_bytes(model.SerializeToString())
    with warnings.catch_warnings():
        # TorchScript is deprecated upstream; its users still ask for it (README).
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(_scriptable(module)), str(staging / TORCHSCRIPT_NAME))
    if plots:
        from training.export.plots import plot_loss, plot_regression

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
    return module


def _signing_key(sign_key: Any) -> Any:
    """The private key to sign with (read before any work, so a bad key fails fast)."""
    if sign_key is None or hasattr(sign_key, "sign"):
        return sign_key
    from inference.errors import SignatureError
    from inference.signing import load_private_key

    try:
        return load_private_key(sign_key)
    except SignatureError as exc:
        raise ExportError(f"cannot sign the export: {exc}") from exc


def _sign(staging: Path, key: Any, name: str) -> None:
    """Sign the finished staging directory, then verify it with the key's public half."""
    from inference.signing import sign_directory, verify_directory

    sign_directory(staging, key, name=name)
    verify_directory(staging, [key.public_key()])


def export_model(
    run: Any,
    directory: str | Path,
    *,
    name: str | None = None,
    overwrite: bool = False,
    plots: bool = True,
    dtype: str = "auto",
    allow_unconverged: bool = False,
    X: Any = None,
    y: Any = None,
    features: list[str] | None = None,
    target: str | None = None,
    sample_weight: Any = None,
    sign_key: Any = None,
) -> Path:
    """Write ``model.onnx``, ``model.pt``, ``manifest.json``, plots and the MLflow files
    (:mod:`inference.mlflow_format`) to ``directory``.

    ``run`` is a :class:`~training.pipeline.TrainingRun`, or a fitted
    :class:`~training.solver.estimator.LinearRegressionSGD` or scikit-learn ``Pipeline`` of
    affine scalers followed by one (folded into one linear graph on raw features,
    :mod:`training.solver.folding`) together with its training data ``X``, ``y`` (and
    ``sample_weight`` of a weighted fit) for the manifest's statistics; ``features``
    and ``target`` name them (:meth:`TrainingRun.from_estimator`). Anything else
    raises :class:`~training.solver.folding.UnsupportedModelError`.

    Every artifact is verified against the eager model (module docstring) before
    the directory appears. Replacing an existing directory needs ``overwrite=True``.
    ``dtype`` is the artifacts' dtype (:func:`choose_dtype`; training has its own).
    A fit that did not converge is refused (:class:`ExportError`, nothing written)
    unless ``allow_unconverged=True``; the manifest
    records the choice. ``sign_key`` (a PEM private key file or a loaded ECDSA key,
    :mod:`inference.signing`) signs the finished directory into ``model.sig``, which
    the manifest does not list and the signature covers everything else, the
    manifest included; the signature is verified before the directory is moved into
    place. Returns the destination path.
    """
    if not isinstance(run, TrainingRun):
        run = _as_run(run, X, y, features, target, sample_weight)
    if not run.estimator.converged_ and not allow_unconverged:
        raise ExportError(
            f"the fit did not converge in {run.estimator.n_epochs_} epochs; refusing to export "
            "it (pass allow_unconverged=True to export it anyway)"
        )
    key = _signing_key(sign_key)
    dtype, dtype_reason = choose_dtype(run, dtype)
    destination = Path(directory).absolute()
    name = name or destination.name
    _check_destination(destination, overwrite)
    staging = temporary_name(destination)
    staging.mkdir(mode=0o700)
    try:
        module = _write_artifacts(staging, run, name, dtype, plots)
        data = _manifest_data(run, name, dtype, dtype_reason, allow_unconverged)
        examples = example_rows(run.X_train)
        if run.design is not None:
            data.update(_design_fields(data, run, dtype))
            examples = design_example_rows(run)
        # the directory is an MLflow model too; written before hashing, so the hashes cover it
        write_mlflow_files(staging, data, examples)
        for path in sorted(staging.iterdir()):
            data["artifacts"][path.name] = file_digest(path)
        manifest = Manifest(data, source=str(staging / MANIFEST_NAME))
        manifest.write(staging)
        data["verification"] = verify(staging, run, module)
        Manifest(data, source=str(staging / MANIFEST_NAME)).write(staging)
        if key is not None:
            _sign(staging, key, destination.name)
        _publish.publish(staging, destination, overwrite)
    except BaseException:
        discard(staging)
        raise
    return destination
