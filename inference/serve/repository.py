"""A model repository on disk: Triton's layout and version policies.

Layout (``linreg serve --model-repository DIR``; Triton's, with exported model
directories as the versions)::

    DIR/
        plants/                  a model, served as "plants"
            config.json          optional: the version policy (below)
            1/                   version 1: an exported model directory
                manifest.json, model.onnx, ...
            2/                   version 2
            notes/               not an integer: ignored, as Triton ignores it
        other/
            3/

A version folder's name is a non-negative integer written without a sign or leading
zeros (``1``, ``20``); any other entry is ignored. ``config.json`` holds Triton's
version policy in its JSON form; other keys are ignored, so a Triton model config
may be there too::

    {"version_policy": {"latest": {"num_versions": 2}}}
    {"version_policy": {"all": {}}}
    {"version_policy": {"specific": {"versions": [1, 3]}}}

Without it the policy is ``latest`` with ``num_versions`` 1: the highest version.

A single exported model directory (``linreg serve DIR`` or ``--model-dir DIR`` on a
directory holding ``manifest.json``) is a model of one version, labelled with the
first 12 hex digits of its ONNX file's sha256.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from inference.errors import ModelLoadError
from inference.manifest import MANIFEST_NAME

__all__ = [
    "CONFIG_NAME",
    "ModelSource",
    "VersionPolicy",
    "is_model_dir",
    "read_policy",
    "scan_repository",
    "version_dirs",
]

#: the optional file of a repository model that holds its version policy
CONFIG_NAME = "config.json"


def is_model_dir(path: Path) -> bool:
    """Whether ``path`` is an exported model directory (it holds a manifest)."""
    return (path / MANIFEST_NAME).is_file()


@dataclass(frozen=True)
class VersionPolicy:
    """Which versions of a repository model are served.

    ``kind`` is "latest" (the ``num_versions`` highest), "all" or "specific" (the
    listed ``versions`` that exist).
    """

    kind: str = "latest"
    num_versions: int = 1
    versions: tuple[int, ...] = ()

    def select(self, available: list[int]) -> list[int]:
        """The versions of ``available`` to serve, highest first."""
        ordered = sorted(available, reverse=True)
        if self.kind == "all":
            return ordered
        if self.kind == "specific":
            return [v for v in ordered if v in self.versions]
        return ordered[: self.num_versions]

    def describe(self) -> str:
        if self.kind == "latest":
            return f"latest {self.num_versions}"
        if self.kind == "specific":
            return f"specific {list(self.versions)}"
        return "all"


def _count(value: object, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ModelLoadError(f"{where}: {value!r} is not a non-negative integer")
    return value


def read_policy(model_dir: Path) -> VersionPolicy:
    """The version policy of ``model_dir/config.json`` (the default without one).

    Raises
    ------
    ModelLoadError
        The file is not JSON, or its ``version_policy`` is not one of the three forms.
    """
    path = model_dir / CONFIG_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return VersionPolicy()
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"{path}: cannot be read ({exc})") from None
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelLoadError(
            f"{path}: line {exc.lineno}, column {exc.colno}: not JSON ({exc.msg})"
        ) from None
    if not isinstance(config, dict):
        raise ModelLoadError(f"{path}: expected a JSON object, got a {type(config).__name__}")
    policy = config.get("version_policy")
    if policy is None:
        return VersionPolicy()
    where = f"{path}: version_policy"
    if not isinstance(policy, dict) or len(policy) != 1:
        raise ModelLoadError(
            f"{where} is {policy!r}; expected one of {{'latest': {{'num_versions': N}}}}, "
            "{'all': {}} or {'specific': {'versions': [...]}}"
        )
    ((kind, spec),) = policy.items()
    if not isinstance(spec, dict):
        raise ModelLoadError(f"{where}.{kind} is {spec!r}; expected an object")
    if kind == "all":
        return VersionPolicy("all")
    if kind == "latest":
        n = _count(spec.get("num_versions", 1), f"{where}.latest.num_versions")
        if n < 1:
            raise ModelLoadError(f"{where}.latest.num_versions is 0; expected 1 or more")
        return VersionPolicy("latest", num_versions=n)
    if kind == "specific":
        versions = spec.get("versions")
        if not isinstance(versions, list):
            raise ModelLoadError(f"{where}.specific.versions is {versions!r}; expected a list")
        where_v = f"{where}.specific.versions"
        return VersionPolicy("specific", versions=tuple(_count(_int(v), where_v) for v in versions))
    raise ModelLoadError(f"{where}: unknown policy {kind!r}; expected latest, all or specific")


def _int(value: object) -> object:
    """Triton's JSON configs write int64 fields as strings ("1"); both are accepted."""
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return value


def version_dirs(model_dir: Path) -> dict[int, Path]:
    """The version folders of a repository model: integer name -> path."""
    found: dict[int, Path] = {}
    try:
        entries = list(os.scandir(model_dir))
    except OSError:
        return found
    for entry in entries:
        name = entry.name
        canonical = name.isdigit() and name.isascii() and (name == "0" or name[0] != "0")
        if canonical and entry.is_dir():
            found[int(name)] = Path(entry.path)
    return found


@dataclass(frozen=True)
class ModelSource:
    """Where a model's files are: one exported directory, or a repository model's folder."""

    name: str
    path: Path
    single: bool


def scan_repository(root: Path) -> dict[str, ModelSource]:
    """The models of repository ``root``, by name (sorted): each folder of it that is
    not hidden. Raises :class:`ModelLoadError` when ``root`` is not a readable folder."""
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError as exc:
        raise ModelLoadError(f"{root}: cannot read the model repository ({exc.strerror})") from None
    return {
        e.name: ModelSource(e.name, Path(e.path), single=False)
        for e in entries
        if e.is_dir() and not e.name.startswith(".")
    }
