"""``linreg mlflow log``: log a model directory to an MLflow tracking server and registry.

Every exported directory is already an MLflow model (``MLmodel`` beside
``model.onnx``); this command logs it as it is, byte for byte
(:func:`inference.mlflow_model.log_model`), and with ``--registered-model-name``
registers a new version, so that ``mlflow.pyfunc.load_model("models:/NAME/1")``
loads it. The tracking server is ``--tracking-uri``, else ``MLFLOW_TRACKING_URI``,
else MLflow's default. Needs the ``mlflow`` extra.
"""

from __future__ import annotations

import argparse
from typing import Any

from linreg.common import fail

__all__ = ["register"]

LOG_DESCRIPTION = """\
Log a model directory, byte for byte, to an MLflow tracking server as a logged
model, in a new run named after the model (in --experiment, or MLflow's active
experiment), and with --registered-model-name register it as a new version of
that registered model. Prints the model URI and the registered version."""


def _log(args: argparse.Namespace) -> int:
    from inference.errors import ModelLoadError

    try:
        import mlflow

        from inference.mlflow_model import log_model
    except ImportError as exc:
        raise fail(
            "mlflow", f"{exc}; install the mlflow extra (pip install 'linreg-onnx[mlflow]')"
        ) from exc
    if args.tracking_uri:
        mlflow.set_tracking_uri(args.tracking_uri)
    if args.registry_uri:
        mlflow.set_registry_uri(args.registry_uri)
    try:
        if args.experiment:
            mlflow.set_experiment(args.experiment)
        info = log_model(
            args.model_dir, registered_model_name=args.registered_model_name, name=args.name
        )
    except (ModelLoadError, OSError, mlflow.exceptions.MlflowException) as exc:
        raise fail("mlflow", exc) from exc
    print(f"logged {args.model_dir} as {info.model_uri}")
    version = getattr(info, "registered_model_version", None)
    if args.registered_model_name and version is not None:
        print(f"registered models:/{args.registered_model_name}/{version}")
    return 0


def register(subparsers: Any) -> None:
    """Add ``linreg mlflow`` (``log``) to ``linreg``'s parser."""
    p = subparsers.add_parser(
        "mlflow",
        help="log a model directory to MLflow (tracking and registry)",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    sub = p.add_subparsers(dest="mlflow_command", required=True, metavar="ACTION")
    q = sub.add_parser(
        "log",
        help="log a model directory (and register it)",
        description=LOG_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    q.add_argument("model_dir", help="exported model directory (with manifest.json and MLmodel)")
    q.add_argument(
        "--registered-model-name",
        metavar="NAME",
        help="register it as a new version of NAME (default: not registered)",
    )
    q.add_argument("--name", default="model", help="the logged model's name (default: model)")
    q.add_argument("--experiment", help="experiment name (default: MLflow's active one)")
    q.add_argument(
        "--tracking-uri",
        help="tracking server (default: MLFLOW_TRACKING_URI, else MLflow's default)",
    )
    q.add_argument("--registry-uri", help="model registry (default: the tracking server)")
    q.set_defaults(func=_log)
