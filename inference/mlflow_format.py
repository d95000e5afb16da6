"""The MLflow files of a model directory: one directory is a linreg model and an MLflow model.

The export (:mod:`training.export`) writes these six files beside ``model.onnx``
before it hashes the directory, so the manifest's sha256 entries cover them too
(:data:`inference.manifest.MLFLOW_FILES`):

``MLmodel`` (YAML)
    ``flavors.python_function``: ``loader_module: inference.mlflow_model`` (the
    installed package, no code copied into the directory), ``env`` (the two files
    below) and ``python_version``. ``flavors.linreg_onnx``: our own entry, naming
    the manifest and the ONNX file (``manifest``, ``onnx``), with ``format_version``,
    ``linreg_version``, ``features``, ``target`` and ``dtype``. ``signature``:
    ``outputs`` (one column, ``prediction``, of MLflow's ``float`` or ``double``: the
    model's dtype; a tensor of shape ``[-1]`` would make ``spark_udf`` return a
    one-element array per row, MLflow's "outputs as lists") and ``params``
    (``interval``: string, default null; ``level``: double, default 0.95), each a JSON
    string as MLflow writes them, and no ``inputs`` (below). ``saved_input_example_info``
    names the examples, which name the input columns. No ``utc_time_created``: the
    manifest's ``created_at`` says when, and the MLflow files stay the same bytes
    whenever the same model is exported.
``python_env.yaml``, ``conda.yaml``, ``requirements.txt``
    The environment ``mlflow models serve`` builds without ``--env-manager local``:
    the exporting Python's version, ``linreg-onnx[cpu]`` pinned to the version that
    exported the model, MLflow (:data:`MLFLOW_REQUIREMENT`) and pandas.
``input_example.json``, ``serving_input_example.json``
    Two example rows, the column means minus and plus one standard deviation of the
    training rows (4 significant digits; no training row is stored), as a pandas
    "split" table and as an ``/invocations`` body (``dataframe_split``).

Why the signature declares no input columns: every column type MLflow 3 has
fails one of the uses this directory must serve. ``double`` refuses an int64 column
("Can not safely convert int64 to float64"), and ``float`` a float64 one; ``any``
takes both, but ``mlflow models serve`` then refuses every CSV request ("Failed to
get pandas types as some of the inputs types are not DataType") and MLflow checks
each value in Python (about 2 µs a value: 6 s for 1M rows of 3 columns, against
0.01 s for the Predictor). Without an input schema MLflow hands the DataFrame over
as it came, and the Predictor finds the columns by name (the manifest's
``features``), takes any real dtype, casts it to the model's exactly as
``Predictor.predict`` does, and its :class:`~inference.errors.InputError` says what
is missing or wrong and where. What MLflow loses: ``spark_udf`` needs the columns
named, ``udf(struct(*features))``, and a registry that demands an input signature
(Databricks Unity Catalog) refuses the model.

The YAML is written here, without PyYAML: mappings in block style and every string
double-quoted (so a version such as "3.10" stays a string), which any YAML 1.1 or
1.2 reader (MLflow uses PyYAML's ``safe_load``) reads back as the same values.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from inference.manifest import MANIFEST_NAME, MLFLOW_FILES, MLMODEL_NAME, OUTPUT_NAME

__all__ = [
    "FLAVOR",
    "LOADER_MODULE",
    "MLFLOW_REQUIREMENT",
    "PANDAS_REQUIREMENT",
    "PARAMS",
    "example_rows",
    "mlflow_files",
    "mlmodel",
    "requirements",
    "signature",
    "to_yaml",
    "write_mlflow_files",
]

#: the module MLflow imports to load the directory (``_load_pyfunc``)
LOADER_MODULE = "inference.mlflow_model"
#: our own flavor's name in ``MLmodel``
FLAVOR = "linreg_onnx"
#: MLflow in the serving environment; mlflow-skinny, as the ``mlflow`` extra (README:
#: the full ``mlflow`` package pins pyarrow below this project's)
MLFLOW_REQUIREMENT = "mlflow-skinny>=3.17,<4"
PANDAS_REQUIREMENT = "pandas>=2.0"
#: the inference parameters: (name, MLflow type, default)
PARAMS: tuple[tuple[str, str, Any], ...] = (("interval", "string", None), ("level", "double", 0.95))

_PYTHON_ENV, _CONDA, _REQUIREMENTS, _EXAMPLE, _SERVING_EXAMPLE = MLFLOW_FILES[1:]


def signature(dtype: str) -> dict[str, str]:
    """``MLmodel``'s ``signature``: ``outputs`` and ``params`` as JSON strings (no
    ``inputs``: module docstring); ``features`` are not declared there."""
    kind = {"float32": "float", "float64": "double"}[dtype]
    outputs = [{"type": kind, "name": OUTPUT_NAME, "required": True}]
    params = [{"name": n, "type": t, "default": d, "shape": None} for n, t, d in PARAMS]
    return {
        "outputs": json.dumps(outputs),
        "params": json.dumps(params),
    }


def mlmodel(manifest: Mapping[str, Any], python_version: str) -> dict[str, Any]:
    """The ``MLmodel`` mapping of the model a manifest (its JSON object) describes."""
    return {
        "flavors": {
            "python_function": {
                "env": {"conda": _CONDA, "virtualenv": _PYTHON_ENV},
                "loader_module": LOADER_MODULE,
                "python_version": python_version,
            },
            FLAVOR: {
                "dtype": manifest["dtype"],
                "features": list(manifest["features"]),
                "format_version": manifest["format_version"],
                "linreg_version": manifest["versions"]["linreg"],
                "manifest": MANIFEST_NAME,
                "onnx": manifest["onnx"]["file"],
                "target": manifest["target"],
            },
        },
        "saved_input_example_info": {
            "artifact_path": _EXAMPLE,
            "pandas_orient": "split",
            "serving_input_path": _SERVING_EXAMPLE,
            "type": "dataframe",
        },
        "signature": signature(manifest["dtype"]),
    }


def requirements(linreg_version: str) -> list[str]:
    """The pip requirements of the serving environment, one per line of requirements.txt."""
    return [f"linreg-onnx[cpu]=={linreg_version}", MLFLOW_REQUIREMENT, PANDAS_REQUIREMENT]


def example_rows(X: Any) -> list[list[float]]:
    """Two example rows of the training rows ``X`` (n, k): the column means minus and
    plus one standard deviation, to 4 significant digits (float64 values)."""
    X = np.asarray(X, dtype=np.float64)
    mean, std = X.mean(axis=0), X.std(axis=0)
    return [[float(f"{v:.4g}") for v in row] for row in (mean - std, mean + std)]


def _cell(value: Any) -> Any:
    """An example cell as JSON: a number as a float, a design model's level as it is."""
    return value if isinstance(value, str | bool) else float(value)


def mlflow_files(
    manifest: Mapping[str, Any], rows: Sequence[Sequence[float]], python_version: str | None = None
) -> dict[str, str]:
    """``{file name: text}`` of the six MLflow files (:data:`inference.manifest.MLFLOW_FILES`).

    ``manifest`` is the manifest's JSON object (its ``artifacts`` are not read), ``rows``
    the example rows (each of ``len(features)`` numbers), ``python_version`` that of the
    serving environment (default: this Python's).
    """
    python = python_version or platform.python_version()
    reqs = requirements(str(manifest["versions"]["linreg"]))
    table = {"columns": list(manifest["features"]), "data": [[_cell(v) for v in r] for r in rows]}
    env = {
        "python": python,
        "build_dependencies": ["pip", "setuptools", "wheel"],
        "dependencies": [f"-r {_REQUIREMENTS}"],
    }
    conda = {
        "name": "mlflow-env",
        "channels": ["conda-forge"],
        "dependencies": [f"python={python}", "pip", {"pip": reqs}],
    }
    return {
        MLMODEL_NAME: to_yaml(mlmodel(manifest, python)),
        _PYTHON_ENV: to_yaml(env),
        _CONDA: to_yaml(conda),
        _REQUIREMENTS: "".join(f"{r}\n" for r in reqs),
        _EXAMPLE: json.dumps(table) + "\n",
        _SERVING_EXAMPLE: json.dumps({"dataframe_split": table}, indent=2) + "\n",
    }


def write_mlflow_files(
    directory: str | Path,
    manifest: Mapping[str, Any],
    rows: Sequence[Sequence[float]],
    python_version: str | None = None,
) -> list[Path]:
    """Write :func:`mlflow_files` into ``directory`` (UTF-8); the paths written."""
    directory = Path(directory)
    paths = []
    for name, text in mlflow_files(manifest, rows, python_version).items():
        path = directory / name
        path.write_bytes(text.encode("utf-8"))
        paths.append(path)
    return paths


# --- YAML ------------------------------------------------------------------------
#: characters YAML does not allow raw besides the controls and surrogates: line and
#: paragraph separators, the byte order mark, and two non-characters
_ESCAPED = frozenset((0x2028, 0x2029, 0xFEFF, 0xFFFE, 0xFFFF))
#: plain words YAML 1.1 reads as booleans or null
_RESERVED = frozenset(("y", "n", "yes", "no", "true", "false", "on", "off", "null"))
_PLAIN_KEY = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


def _quote(text: str) -> str:
    """A YAML double-quoted scalar: quotes, backslashes and every character YAML does not
    allow raw (controls, line and paragraph separators, BOM) escaped."""
    out = ['"']
    for ch in text:
        o = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif o < 0x20 or 0x7F <= o <= 0x9F or 0xD800 <= o <= 0xDFFF or o in _ESCAPED:
            out.append(f"\\u{o:04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = json.dumps(value, allow_nan=False)
        # YAML 1.1 (PyYAML) reads "1e+16" as a string: its floats need a dot
        return text if "." in text or "e" not in text else text.replace("e", ".0e", 1)
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, Mapping | list | tuple) and not value:
        return "{}" if isinstance(value, Mapping) else "[]"
    raise TypeError(f"cannot write a {type(value).__name__} as YAML")


def _key(key: str) -> str:
    plain = key and _PLAIN_KEY.issuperset(key) and not key[0].isdigit()
    return key if plain and key.lower() not in _RESERVED else _quote(key)


def _nested(value: Any) -> bool:
    return isinstance(value, Mapping | list | tuple) and bool(value)


def _block(value: Any, indent: int) -> list[str]:
    pad = " " * indent
    lines: list[str] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            if _nested(item):
                lines.append(f"{pad}{_key(str(key))}:")
                lines.extend(_block(item, indent + 2))
            else:
                lines.append(f"{pad}{_key(str(key))}: {_scalar(item)}")
        return lines
    for item in value:
        if _nested(item):
            inner = _block(item, indent + 2)
            lines.append(f"{pad}- {inner[0][indent + 2 :]}")
            lines.extend(inner[1:])
        else:
            lines.append(f"{pad}- {_scalar(item)}")
    return lines


def to_yaml(value: Mapping[str, Any]) -> str:
    """Block-style YAML of a mapping of strings, numbers, booleans, None, lists and
    mappings (keys in the mapping's order)."""
    return "".join(f"{line}\n" for line in _block(value, 0))
