"""MLflow's face of a model directory: the pyfunc loader, and logging to a tracking server.

Every exported directory is also an MLflow model (:mod:`inference.mlflow_format`
writes its ``MLmodel``), so MLflow loads it as it is::

    >>> import mlflow
    >>> model = mlflow.pyfunc.load_model("exported_models/plant_richness_lr")
    >>> model.predict(df)                                           # ndarray (n,)
    >>> model.predict(df, params={"interval": "prediction", "level": 0.9})  # DataFrame

``mlflow.pyfunc.load_model`` imports this module (``loader_module`` in ``MLmodel``)
and calls :func:`_load_pyfunc` with the directory, which loads a
:class:`~inference.Predictor` (manifest and sha256 of every file checked, the MLflow
files included). The code is the installed ``inference`` package: nothing is copied
into the directory, so two models loaded in one process share one version of this
module instead of each bringing its own same-named code (MLflow's ``code_paths``).

:func:`log_model` logs a directory, byte for byte, to the tracking server as a
logged model, and with ``registered_model_name`` registers it, so that
``mlflow.pyfunc.load_model("models:/NAME/1")`` loads it (and so does
``Predictor.load`` on the downloaded copy: the hashes still match). Needs the
``mlflow`` extra (mlflow-skinny and pandas).
"""

from __future__ import annotations

import functools
import shutil
from pathlib import Path
from typing import Any

from inference.errors import InputError, ModelLoadError
from inference.intervals import IntervalPrediction
from inference.manifest import MANIFEST_NAME, MLMODEL_NAME, Manifest
from inference.mlflow_format import FLAVOR, PARAMS
from inference.predictor import Predictor

__all__ = ["LinregPyfunc", "log_model"]

_DEFAULTS = {name: default for name, _, default in PARAMS}


@functools.cache
def _error_class() -> type[InputError]:
    """``InputError`` that is also an ``MlflowException`` (error code BAD_REQUEST), so
    ``mlflow models serve`` answers 400 with the Predictor's message instead of its
    generic "unexpected error"; defined on first use, as MLflow is only there then."""
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import BAD_REQUEST

    class MlflowInputError(InputError, MlflowException):
        """The Predictor's :class:`~inference.errors.InputError`, as MLflow reports errors."""

        def __init__(self, message: str) -> None:
            MlflowException.__init__(self, message, error_code=BAD_REQUEST)

    return MlflowInputError


def _input_error(exc: Exception) -> InputError:
    """``exc``'s message as an :class:`InputError` that MLflow also treats as its own."""
    return _error_class()(str(exc))


class LinregPyfunc:
    """The object ``mlflow.pyfunc.load_model`` wraps: a Predictor behind MLflow's
    ``predict(model_input, params=None)``.

    Attributes
    ----------
    predictor : Predictor
        The loaded model (``mlflow.pyfunc.load_model(...).get_raw_model().predictor``).
    """

    def __init__(self, predictor: Predictor) -> None:
        self.predictor = predictor

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        """Predict each row of ``model_input``.

        Parameters
        ----------
        model_input : pandas.DataFrame (columns matched by name, any real dtype) or
            anything :meth:`Predictor.predict` takes
        params : dict, optional
            ``interval``: None, "confidence" or "prediction"; ``level``: float (0.95).

        Returns
        -------
        ndarray of shape (n_samples,) in the model's dtype (float32 or float64), exactly
        ``Predictor.predict``'s; with an interval, a DataFrame with the float64 columns
        ``prediction``, ``lower`` and ``upper``.

        Raises
        ------
        InputError
            The Predictor's message, raised as a class that is also an ``MlflowException``.
        """
        given = dict(params or {})
        unknown = sorted(set(given) - set(_DEFAULTS))
        if unknown:
            raise _input_error(
                ValueError(f"unknown params {unknown}; this model takes {sorted(_DEFAULTS)}")
            )
        interval = given.get("interval") or None
        level = given.get("level")
        try:
            result = self.predictor.predict(
                model_input,
                interval=interval,
                level=_DEFAULTS["level"] if level is None else float(level),
            )
        except ValueError as exc:  # InputError, and a bad interval kind or level
            raise _input_error(exc) from None
        if not isinstance(result, IntervalPrediction):
            return result
        import pandas as pd

        return pd.DataFrame(
            {"prediction": result.prediction, "lower": result.lower, "upper": result.upper}
        )


def _load_pyfunc(path: str) -> LinregPyfunc:
    """MLflow's entry point: the model in directory ``path`` (manifest and hashes checked)."""
    return LinregPyfunc(Predictor.load(path))


def _checked_files(model_dir: Path) -> list[str]:
    """The manifest and every artifact it lists, verified; ModelLoadError when the
    directory is not an MLflow model as well."""
    manifest = Manifest.read(model_dir)
    manifest.verify_artifacts(model_dir)
    if MLMODEL_NAME not in manifest.artifacts:
        raise ModelLoadError(
            f"{model_dir}: has no {MLMODEL_NAME} among its artifacts (exported by a linreg-onnx "
            "without MLflow support); export it again to log it"
        )
    return [MANIFEST_NAME, *manifest.artifacts]


class _CopyDirectory:
    """What ``mlflow.models.Model.log`` calls a flavor: ``save_model`` copies the model
    directory as it is (the manifest and the files it lists), and gives the in-memory
    ``Model`` the flavors, signature and examples of its ``MLmodel``."""

    def __init__(self, model_dir: Path, files: list[str]) -> None:
        self.model_dir = model_dir
        self.files = files
        self.__name__ = FLAVOR

    def save_model(self, path: str, mlflow_model: Any, **kwargs: Any) -> None:
        from mlflow.models import Model

        out = Path(path)
        out.mkdir(parents=True)
        for name in self.files:
            shutil.copyfile(self.model_dir / name, out / name)
        ours = Model.load(str(out / MLMODEL_NAME))
        mlflow_model.flavors = ours.flavors
        mlflow_model.signature = ours.signature
        mlflow_model.saved_input_example_info = ours.saved_input_example_info


def log_model(
    model_dir: str | Path,
    *,
    registered_model_name: str | None = None,
    name: str = "model",
    tags: dict[str, Any] | None = None,
) -> Any:
    """Log a model directory to the current tracking server (``mlflow.set_tracking_uri``,
    or ``MLFLOW_TRACKING_URI``), byte for byte, as a logged model in the active run (or a
    new run named after the model).

    Parameters
    ----------
    model_dir : an exported model directory (its manifest and hashes are checked first)
    registered_model_name : also register it in the model registry under this name (a
        new version of it when it exists)
    name : the logged model's name
    tags : tags of the logged model

    Returns
    -------
    mlflow.models.model.ModelInfo
        ``model_uri`` ("models:/<model id>"), and ``registered_model_version`` when
        registered.
    """
    import mlflow
    from mlflow.models import Model

    model_dir = Path(model_dir)
    files = _checked_files(model_dir)
    manifest = Manifest.read(model_dir)
    active = mlflow.active_run()
    started = active is None
    run = mlflow.start_run(run_name=manifest.name) if active is None else active
    try:
        if started:  # a run of the caller's may hold these names already
            mlflow.log_params(
                {"model": manifest.name, "dtype": manifest.dtype, "target": manifest.target}
            )
        info = Model.log(
            artifact_path=None,
            flavor=_CopyDirectory(model_dir, files),
            name=name,
            registered_model_name=registered_model_name,
            run_id=run.info.run_id,
            tags=tags,
        )
    finally:
        if started:
            mlflow.end_run()
    return info
