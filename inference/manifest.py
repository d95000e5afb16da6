"""The manifest: the one description of an exported model, shared by training and inference.

Folder layout of an exported model (names are the constants below)::

    <model dir>/
        model.onnx       the serving artifact: input "features" (batch, k), output
                         "prediction" (batch,), dynamic batch axis; feature names,
                         target and dtype also in its metadata_props
        model.pt         TorchScript of the fitted torch.nn.Linear (input (batch, k),
                         output (batch, 1)); for PyTorch users, never loaded here
        manifest.json    this file's subject
        regression.png   fitted line (one feature) or observed vs predicted
        loss.png         training loss per epoch
        MLmodel          the same directory as an MLflow model (:mod:`inference.mlflow_format`
                         writes these six files, :mod:`inference.mlflow_model` loads them)
        python_env.yaml, conda.yaml, requirements.txt
                         the environment MLflow builds to serve it
        input_example.json, serving_input_example.json
                         two example rows, as MLflow stores them and as a request body

Fields of ``manifest.json`` (``format_version`` 1, or 2 for a model with a ``design``):

``format_version`` (int)
    Layout version; a loader refuses one it does not know. Version 2 adds the
    ``design`` section of a model fitted on raw columns (text, gaps, a formula); a
    model without one is written as version 1, which older loaders read.
``name`` (str), ``created_at`` (str, UTC ISO 8601)
``features`` (list of str)
    Ordered input column names; column j of the input is ``features[j]``. With a
    ``design``: the raw columns the model reads (each its own graph input).
``design`` (object, version 2)
    How the raw columns become the design columns the parameters multiply: inputs
    (numeric, or factors with their levels and reference), design columns as
    expressions, terms, the formula, the missing-value policy and the rows it dropped
    (:mod:`inference.design`). ``onnx.inputs`` then lists one input per raw column
    (``name``, ``dtype``: the model's dtype, ``string`` or ``int64``), and
    ``parameters.coef``, the statistics and the TorchScript file are over the design
    columns.
``target`` (str)
    Name of the predicted quantity.
``dtype`` ("float32" or "float64")
    Dtype of the ONNX input and output and of the TorchScript parameters (the
    export's choice; training has its own, ``training.dtype``).
``dtype_reason`` (str, optional)
    Why: asked for, or ``auto`` with how far a float32 model is from the fit.
``onnx`` (object)
    ``file``, ``input`` and ``output`` (each ``name``, ``shape`` with the string
    ``"batch"`` for the dynamic axis, ``dtype``), ``opset`` (int), ``graph`` (the
    operators, in words).
``torchscript`` (object)
    ``file``, ``input_shape``, ``output_shape``.
``parameters`` (object)
    ``coef`` (list of float, one per feature) and ``intercept`` (float): the model.
``artifacts`` (object)
    For every file in the folder but the manifest: ``{"size": int, "sha256": hex str}``
    (the MLflow files included, so an edited ``MLmodel`` fails the load like an edited
    ``model.onnx``).
``training`` (object)
    The configuration that produced the model: ``preset``, ``lr`` (as given or
    null), ``lr_used``, ``max_epochs``, ``epochs_run``, ``batch_size``, ``momentum``,
    ``tol``, ``early_stop``, ``standardize``, ``orthogonalize``, ``fit_intercept``,
    ``refinement_steps``, ``dtype`` (of training), ``seed``, ``converged`` (bool),
    ``allow_unconverged`` (bool: whether an unconverged fit was allowed to export),
    ``final_mse``, ``data`` (source, rows, held-out fraction).
``metrics`` (object)
    ``train`` and ``heldout`` (null without a split): ``mse``, ``rmse``, ``mae``, ``r2``.
``statistics`` (object)
    What ``training.stats.regression_statistics`` computed, parameters ordered
    ``names = ["intercept", *features]`` (``features`` only when ``fit_intercept``
    is false): ``params``, ``std_errors``, ``t_values``, ``p_values``, ``conf_int``,
    ``level``, ``covariance`` (always (k + 1) × (k + 1), intercept first; its first
    row and column are 0 without an intercept), ``residual_variance``,
    ``df_resid``, ``t_quantiles`` (two-sided Student-t quantiles keyed "0.90",
    "0.95", "0.99"), R², F, ``condition_number`` (statsmodels'), ``fit_intercept``,
    the least-squares comparison, and the collinearity diagnostics
    ``scaled_condition_number`` (Belsley-Kuh-Welsch), ``vif`` (one per feature) and
    ``collinearity_notes`` (absent from manifests written before them). With these,
    ``inference`` gives confidence and prediction intervals without torch or scipy.
``verification`` (object)
    How each artifact was proven equal to the eager model before it was written:
    rows checked, tolerance, largest relative error per artifact, and of the eager
    model in the export dtype against the float64 fit (``fit``).
``versions`` (object)
    ``torch``, ``onnx``, ``onnxruntime``, ``numpy``, ``linreg`` (this project).

Unknown top-level keys survive a load and save round trip.
"""

from __future__ import annotations

import hashlib
import json
import math
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from inference.errors import ModelLoadError

__all__ = [
    "DESIGN_FORMAT_VERSION",
    "FORMAT_VERSION",
    "SUPPORTED_VERSIONS",
    "MANIFEST_NAME",
    "ONNX_NAME",
    "TORCHSCRIPT_NAME",
    "REGRESSION_PLOT_NAME",
    "LOSS_PLOT_NAME",
    "MLMODEL_NAME",
    "MLFLOW_FILES",
    "INPUT_NAME",
    "OUTPUT_NAME",
    "METADATA_KEYS",
    "Manifest",
    "file_digest",
]

FORMAT_VERSION = 1
#: the version of a manifest with a ``design`` section (the layout versions a loader reads)
DESIGN_FORMAT_VERSION = 2
SUPPORTED_VERSIONS = (FORMAT_VERSION, DESIGN_FORMAT_VERSION)
MANIFEST_NAME = "manifest.json"
ONNX_NAME = "model.onnx"
TORCHSCRIPT_NAME = "model.pt"
REGRESSION_PLOT_NAME = "regression.png"
LOSS_PLOT_NAME = "loss.png"
MLMODEL_NAME = "MLmodel"
#: the files that make a model directory an MLflow model too, ``MLmodel`` first
MLFLOW_FILES = (
    MLMODEL_NAME,
    "python_env.yaml",
    "conda.yaml",
    "requirements.txt",
    "input_example.json",
    "serving_input_example.json",
)
INPUT_NAME = "features"
OUTPUT_NAME = "prediction"
#: keys of the ONNX file's metadata_props
METADATA_KEYS = ("linreg.features", "linreg.target", "linreg.dtype", "linreg.name")

#: largest manifest accepted; a real one is a few kB
MAX_MANIFEST_BYTES = 1 << 20

_REQUIRED: dict[str, type | tuple[type, ...]] = {
    "format_version": int,
    "name": str,
    "created_at": str,
    "features": list,
    "target": str,
    "dtype": str,
    "onnx": dict,
    "artifacts": dict,
    "training": dict,
    "metrics": dict,
    "statistics": dict,
    "versions": dict,
}


def file_digest(path: str | Path) -> dict[str, Any]:
    """``{"size": bytes, "sha256": hex}`` of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
            size += len(block)
    return {"size": size, "sha256": h.hexdigest()}


class Manifest:
    """A validated manifest. ``data`` is the whole JSON object, unknown keys included."""

    def __init__(self, data: Mapping[str, Any], *, source: str = "manifest") -> None:
        self.data = dict(data)
        self.source = source
        self._validate()

    # --- reading -------------------------------------------------------------
    @classmethod
    def read(cls, path: str | Path) -> Manifest:
        """Read and validate ``manifest.json`` (a file, or the model directory)."""
        path = Path(path)
        if path.is_dir():
            path = path / MANIFEST_NAME
        try:
            st = path.stat()
        except OSError as exc:
            raise ModelLoadError(f"{path}: cannot read the manifest ({exc.strerror})") from exc
        if not stat.S_ISREG(st.st_mode):  # a FIFO would block the read below forever
            raise ModelLoadError(f"{path}: the manifest is not a regular file")
        if st.st_size > MAX_MANIFEST_BYTES:
            raise ModelLoadError(f"{path}: manifest is {st.st_size} bytes, more than any real one")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ModelLoadError(f"{path}: cannot read the manifest ({exc.strerror})") from exc
        except (ValueError, RecursionError) as exc:  # also too deep, or a 5000-digit int
            raise ModelLoadError(f"{path}: not valid JSON ({exc})") from exc
        if not isinstance(data, dict):
            raise ModelLoadError(f"{path}: expected a JSON object, got {type(data).__name__}")
        return cls(data, source=str(path))

    def _fail(self, what: str) -> ModelLoadError:
        return ModelLoadError(f"{self.source}: {what}")

    def _validate(self) -> None:
        d = self.data
        version = d.get("format_version")
        if version is None:
            raise self._fail("no 'format_version'; this is not a linreg manifest")
        if version not in SUPPORTED_VERSIONS or isinstance(version, bool):
            raise self._fail(
                f"format_version {version!r} is not supported; this loader reads version "
                f"{' or '.join(map(str, SUPPORTED_VERSIONS))} (upgrade the package to read "
                "newer models)"
            )
        for key, kind in _REQUIRED.items():
            if key not in d:
                raise self._fail(f"missing field {key!r}")
            if not isinstance(d[key], kind):
                raise self._fail(f"field {key!r} should be {kind}, got {type(d[key]).__name__}")
        feats = d["features"]
        if not feats or not all(isinstance(f, str) and f for f in feats):
            raise self._fail("'features' must be a non-empty list of names")
        if len(set(feats)) != len(feats):
            raise self._fail(f"'features' repeat a name: {feats}")
        if d["dtype"] not in ("float32", "float64"):
            raise self._fail(f"dtype {d['dtype']!r}, expected 'float32' or 'float64'")
        onnx = d["onnx"]
        design = self._check_design() if version == DESIGN_FORMAT_VERSION else None
        for key in ("file", "output") if design else ("file", "input", "output"):
            if key not in onnx:
                raise self._fail(f"missing field 'onnx.{key}'")
        for key in ("output",) if design else ("input", "output"):
            if not (isinstance(onnx[key], dict) and isinstance(onnx[key].get("name"), str)):
                raise self._fail(f"'onnx.{key}' must be an object with a string 'name'")
        self._check_file_name(onnx["file"], "onnx.file")
        self._check_statistics((len(design.columns) if design else len(feats)) + 1)
        for name, entry in d["artifacts"].items():
            self._check_file_name(name, "artifacts")
            if not (
                isinstance(entry, dict)
                and isinstance(entry.get("size"), int)
                and entry["size"] >= 0
                and isinstance(entry.get("sha256"), str)
                and len(entry["sha256"]) == 64
            ):
                raise self._fail(f"artifacts[{name!r}] needs an integer 'size' and a 'sha256'")
        if onnx["file"] not in d["artifacts"]:
            raise self._fail(
                f"the ONNX file {onnx['file']!r} has no size and sha256 in 'artifacts'"
            )

    def _check_design(self) -> Any:
        """The ``design`` section of a version 2 manifest, checked against the features."""
        from inference.design import Design

        section = self.data.get("design")
        if not isinstance(section, dict):
            raise self._fail("format_version 2 needs a 'design' object")
        try:
            design = Design.from_dict(section)
        except ModelLoadError as exc:
            raise self._fail(str(exc)) from exc
        if design.input_names != list(self.data["features"]):
            raise self._fail(
                f"'features' {self.data['features']} differ from the design's inputs "
                f"{design.input_names}"
            )
        coef = (self.data.get("parameters") or {}).get("coef")
        if coef is not None and len(coef) != len(design.columns):
            raise self._fail(
                f"parameters.coef has {len(coef)} values for {len(design.columns)} design columns"
            )
        return design

    def _check_statistics(self, p: int) -> None:
        """The interval inputs, where present, have the types and shapes intervals need
        (null stands for a NaN, which JSON cannot hold)."""
        st = self.data["statistics"]

        def number(v: Any) -> bool:
            return v is None or (isinstance(v, int | float) and not isinstance(v, bool))

        cov = st.get("covariance", [[0] * p] * p)
        if not (
            isinstance(cov, list)
            and len(cov) == p
            and all(isinstance(r, list) and len(r) == p and all(map(number, r)) for r in cov)
        ):
            raise self._fail(f"statistics.covariance must be a {p} x {p} matrix of numbers")
        var = st.get("residual_variance")
        if not number(var) or (var is not None and var < 0):
            raise self._fail(f"statistics.residual_variance {var!r}: expected a number >= 0")
        df = st.get("df_resid", 1)
        if not (isinstance(df, int) and not isinstance(df, bool) and df >= 1):
            raise self._fail(f"statistics.df_resid {df!r}: expected an integer >= 1")
        tq = st.get("t_quantiles", {})
        if not (isinstance(tq, dict) and all(map(number, tq.values()))):
            raise self._fail("statistics.t_quantiles must map levels to numbers")

    def _check_file_name(self, name: Any, field: str) -> None:
        """Artifacts are plain file names inside the model directory: no paths."""
        if (
            not isinstance(name, str)
            or not name
            or name in (".", "..")
            or "/" in name
            or "\\" in name
            or "\x00" in name
        ):
            raise self._fail(f"{field}: {name!r} is not a plain file name in the model directory")

    # --- accessors -----------------------------------------------------------
    @property
    def features(self) -> list[str]:
        return list(self.data["features"])

    @property
    def design(self) -> Any:
        """The :class:`~inference.design.Design` of a model fitted on raw columns, or
        None for a model that reads its features as numbers."""
        if self.data.get("format_version") != DESIGN_FORMAT_VERSION:
            return None
        from inference.design import Design

        return Design.from_dict(self.data["design"])

    @property
    def target(self) -> str:
        return str(self.data["target"])

    @property
    def dtype(self) -> str:
        return str(self.data["dtype"])

    @property
    def name(self) -> str:
        return str(self.data["name"])

    @property
    def onnx_file(self) -> str:
        return str(self.data["onnx"]["file"])

    @property
    def input_name(self) -> str:
        return str(self.data["onnx"]["input"]["name"])

    @property
    def output_name(self) -> str:
        return str(self.data["onnx"]["output"]["name"])

    @property
    def format_version(self) -> int:
        return int(self.data["format_version"])

    @property
    def created_at(self) -> str:
        return str(self.data["created_at"])

    @property
    def onnx(self) -> dict[str, Any]:
        """The ``onnx`` section: ``file``, ``input``, ``output``, ``opset``, ``graph``."""
        return dict(self.data["onnx"])

    @property
    def parameters(self) -> dict[str, Any] | None:
        """``{"coef": [...], "intercept": float}``, or None when absent."""
        return self._section("parameters")

    @property
    def training(self) -> dict[str, Any]:
        return self._section("training") or {}

    @property
    def metrics(self) -> dict[str, Any]:
        """``{"train": {...}, "heldout": {...} or None}``."""
        return self._section("metrics") or {}

    @property
    def statistics(self) -> dict[str, Any]:
        return self._section("statistics") or {}

    @property
    def verification(self) -> dict[str, Any] | None:
        return self._section("verification")

    @property
    def versions(self) -> dict[str, Any]:
        return self._section("versions") or {}

    def _section(self, key: str) -> dict[str, Any] | None:
        value = self.data.get(key)
        return dict(value) if isinstance(value, dict) and value else None

    @property
    def artifacts(self) -> dict[str, dict[str, Any]]:
        """``{file name: {"size": int, "sha256": hex str}}`` for every artifact."""
        return {name: dict(entry) for name, entry in self.data["artifacts"].items()}

    def interval_inputs(self) -> dict[str, Any] | None:
        """Covariance, residual variance, df and t quantiles, or None when absent."""
        st = self.data.get("statistics", {})
        keys = ("covariance", "residual_variance", "df_resid", "t_quantiles")
        if not all(k in st for k in keys):
            return None
        return {k: st[k] for k in keys}

    # --- integrity -----------------------------------------------------------
    def verify_artifacts(self, directory: str | Path, names: list[str] | None = None) -> None:
        """Check size and sha256 of the named artifacts (default: all) in ``directory``."""
        directory = Path(directory)
        for name in names if names is not None else list(self.data["artifacts"]):
            expected = self.data["artifacts"][name]
            path = directory / name
            try:
                st = path.lstat()
            except OSError as exc:
                raise ModelLoadError(f"{path}: listed in the manifest but missing") from exc
            if stat.S_ISLNK(st.st_mode):
                raise ModelLoadError(f"{path}: is a symbolic link; artifacts must be files")
            if not stat.S_ISREG(st.st_mode):  # a FIFO would block the read below forever
                raise ModelLoadError(f"{path}: is not a regular file; artifacts must be files")
            size = st.st_size
            if size != expected["size"]:
                raise ModelLoadError(
                    f"{path}: size is {size} bytes, the manifest says {expected['size']} "
                    "(truncated or replaced)"
                )
            try:
                actual = file_digest(path)["sha256"]
            except OSError as exc:
                raise ModelLoadError(f"{path}: cannot read it ({exc.strerror})") from exc
            if actual != expected["sha256"]:
                raise ModelLoadError(
                    f"{path}: sha256 {actual} does not match the manifest's "
                    f"{expected['sha256']} (the file was changed after export)"
                )

    # --- writing -------------------------------------------------------------
    def to_json(self) -> str:
        """Stable JSON text (sorted keys; NaN written as null)."""
        return json.dumps(_finite(self.data), indent=2, sort_keys=True, allow_nan=False) + "\n"

    def write(self, directory: str | Path) -> Path:
        path = Path(directory) / MANIFEST_NAME
        path.write_text(self.to_json(), encoding="utf-8")
        return path


def _finite(value: Any) -> Any:
    """JSON has no NaN or inf: write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
