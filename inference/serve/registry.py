"""Loading one model directory, and what a loaded version is.

:func:`load_version` is the one place where a model directory is read and verified:
:meth:`Predictor.load` checks the manifest and the sha256 of every artifact and runs
the model once. The versions being served, and their changes while serving, are
:class:`inference.serve.models.ModelRegistry`'s.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inference.errors import LinregError, ModelLoadError
from inference.predictor import Predictor

__all__ = [
    "LoadedModel",
    "ModelNotFound",
    "ModelNotReady",
    "Signature",
    "directory_signature",
    "load_model",
    "load_version",
]

#: what identifies one state of a model directory's files
Signature = tuple[int, ...]


class ModelNotFound(LinregError, LookupError):
    """No model (or no version) of that name on this server."""


class ModelNotReady(LinregError, RuntimeError):
    """The model (or the version) exists but is not loaded now."""


def directory_signature(path: Path) -> Signature | None:
    """Device, inode and change time of the directory, and inode, change time and size
    of each of its files; None without a manifest (for example between the two
    renames of a non-atomic replace). A file rewritten in place changes it too."""
    try:
        d = os.stat(path)
        entries = sorted(os.scandir(path), key=lambda e: e.name)
        if not any(e.name == "manifest.json" for e in entries):
            return None
        sig = [d.st_dev, d.st_ino, d.st_ctime_ns]
        for e in entries:
            s = e.stat(follow_symlinks=True)
            sig += [s.st_ino, s.st_mtime_ns, s.st_ctime_ns, s.st_size]
    except OSError:
        return None
    return tuple(sig)


@dataclass(frozen=True)
class LoadedModel:
    """One loaded version of a model.

    ``version`` is the version folder's integer (repository) or the first 12 hex
    digits of the ONNX file's sha256 (single directory: equal bytes, equal version).
    ``plots`` holds the PNG files of the directory, read (and checked against the
    manifest) at load, so the page shows the plots of the model it serves.
    """

    name: str
    path: Path
    predictor: Predictor
    version: str
    sha256: str
    signature: Signature | None
    loaded_at: float
    plots: dict[str, bytes] = field(default_factory=dict)

    @property
    def manifest(self) -> dict[str, Any]:
        m = self.predictor.manifest
        return m.data if m is not None else {}


def load_version(
    path: Path,
    *,
    name: str,
    version: str | None,
    threads: int,
    trusted_keys: Sequence[Any] | None = None,
) -> LoadedModel:
    """Load and verify the exported model directory ``path`` as version ``version`` of
    ``name`` (None: the sha256 label). The one place a model directory is loaded.

    With ``trusted_keys`` (None: ``LINREG_TRUSTED_KEYS``; the server passes the keys it
    loaded at start), the directory's signature is verified too
    (:func:`inference.signing.verify_directory`): an unsigned directory, one signed by
    another key, or one with a file added, removed or changed since signing raises
    :class:`~inference.errors.SignatureError` (a :class:`ModelLoadError`).

    Raises
    ------
    ModelLoadError
        The directory is not an exported model, or fails verification.
    """
    signature = directory_signature(path)
    predictor = Predictor.load(path, providers="cpu", threads=threads, trusted_keys=trusted_keys)
    manifest = predictor.manifest
    if manifest is None:
        raise ModelLoadError(f"{path}: expected an exported model directory with a manifest")
    sha = str(manifest.data["artifacts"][manifest.onnx_file]["sha256"])
    plots: dict[str, bytes] = {}
    for file_name, entry in sorted(manifest.data["artifacts"].items()):
        if file_name.endswith(".png"):
            try:
                data = (path / file_name).read_bytes()
            except OSError:
                continue
            if hashlib.sha256(data).hexdigest() == entry["sha256"]:
                plots[file_name] = data
    return LoadedModel(
        name=name,
        path=path,
        predictor=predictor,
        version=sha[:12] if version is None else version,
        sha256=sha,
        signature=signature,
        loaded_at=time.time(),
        plots=plots,
    )


def load_model(
    name: str, path: Path, threads: int, trusted_keys: Sequence[Any] | None = None
) -> LoadedModel:
    """A single model directory, labelled by its sha256 (raises :class:`ModelLoadError`)."""
    return load_version(path, name=name, version=None, threads=threads, trusted_keys=trusted_keys)
