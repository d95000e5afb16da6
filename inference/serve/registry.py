"""The loaded models, and their hot reload.

Each model directory is served under its directory name. A background task looks
at every directory every ``reload_interval`` seconds; when the directory was
replaced (export swaps in a new one with an atomic ``renameat2`` exchange) or
its manifest changed, the new model is loaded with :meth:`Predictor.load`, which
checks the manifest and the sha256 of every artifact and runs the model once. On
success the registry's entry is replaced by one assignment, between requests: a
request holds the :class:`LoadedModel` it started with to the end. A directory
that fails to load is refused and logged, the old model keeps serving, and the
same files are not tried again until they change.

With trusted keys (``linreg serve --trusted-key``, else ``LINREG_TRUSTED_KEYS``, read
once at start), every load and reload also verifies the directory's signature
(:func:`inference.signing.verify_directory`): an unsigned directory, one signed by
another key, or one with a file added, removed or changed since signing is refused
the same way, and the old model keeps serving.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inference.errors import ModelLoadError
from inference.manifest import MANIFEST_NAME
from inference.predictor import Predictor
from inference.signing import SIGNATURE_NAME

__all__ = ["LoadedModel", "ModelRegistry", "directory_signature", "load_model"]

log = logging.getLogger("linreg.serve")

#: what identifies one version of a model directory's files
Signature = tuple[int, ...]


def directory_signature(path: Path) -> Signature | None:
    """Device, inode and change time of the directory and of its manifest, and of its
    signature file (zeros without one); None when the directory or manifest is missing
    (for example between the two renames of a non-atomic replace)."""
    try:
        d = os.stat(path)
        m = os.stat(path / MANIFEST_NAME)
    except OSError:
        return None
    try:
        s = os.stat(path / SIGNATURE_NAME)
        sig = (s.st_ino, s.st_mtime_ns, s.st_size)
    except OSError:
        sig = (0, 0, 0)
    return (d.st_dev, d.st_ino, d.st_ctime_ns, m.st_ino, m.st_mtime_ns, m.st_size, *sig)


@dataclass(frozen=True)
class LoadedModel:
    """One loaded version of a model directory.

    ``version`` is the first 12 hex digits of the ONNX file's sha256: equal bytes,
    equal version. ``plots`` holds the PNG files of the directory, read (and checked
    against the manifest) at load, so the page shows the plots of the model it serves.
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


def load_model(
    name: str, path: Path, threads: int, trusted_keys: Sequence[Any] | None = None
) -> LoadedModel:
    """Load and verify ``path`` (raises :class:`ModelLoadError`); with ``trusted_keys``
    (None: ``LINREG_TRUSTED_KEYS``), its signature too (:class:`SignatureError`)."""
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
        version=sha[:12],
        sha256=sha,
        signature=signature,
        loaded_at=time.time(),
        plots=plots,
    )


def _trusted_keys(paths: Sequence[str]) -> list[Any]:
    """The keys of ``paths``, else of ``LINREG_TRUSTED_KEYS``, loaded once (a key file
    that is missing or not an accepted key stops the server at start)."""
    from inference.signing import load_trusted_keys, trusted_keys_from_environment

    files = list(paths) or trusted_keys_from_environment()
    keys = load_trusted_keys(files) if files else []
    for key in keys:
        log.info("trusted key %s (hint %s): only models it signed are served", key.source, key.hint)
    return keys


class ModelRegistry:
    """Models by name; the first is the default of ``/predict`` and ``/invocations``."""

    def __init__(self, dirs: list[str], *, threads: int, trusted_keys: Sequence[str] = ()) -> None:
        self.threads = threads
        self.trusted_keys = _trusted_keys(trusted_keys)
        self.paths: dict[str, Path] = {}
        for d in dirs:
            path = Path(d).absolute()
            name = path.name
            if name in self.paths:
                raise ModelLoadError(
                    f"two model directories are named {name!r} ({self.paths[name]} and "
                    f"{path}); each model is served under its directory name"
                )
            self.paths[name] = path
        if not self.paths:
            raise ModelLoadError("no model directory given")
        self.models: dict[str, LoadedModel] = {
            name: load_model(name, path, threads, self.trusted_keys)
            for name, path in self.paths.items()
        }
        self.default = next(iter(self.models))
        self._refused: dict[str, Signature | None] = {}
        self.listeners: list[Callable[[LoadedModel | None, str, str], None]] = []

    def get(self, name: str) -> LoadedModel | None:
        return self.models.get(name)

    def first(self) -> LoadedModel:
        return self.models[self.default]

    def _notify(self, model: LoadedModel | None, name: str, result: str) -> None:
        for listener in self.listeners:
            listener(model, name, result)

    async def check(self) -> None:
        """Reload every model whose directory changed (one pass)."""
        for name, path in self.paths.items():
            current = self.models[name]
            signature = directory_signature(path)
            if signature is None or signature == current.signature:
                continue
            if name in self._refused and self._refused[name] == signature:
                continue
            try:
                model = await asyncio.to_thread(
                    load_model, name, path, self.threads, self.trusted_keys
                )
            except (ModelLoadError, OSError) as exc:
                if directory_signature(path) != signature:
                    continue  # replaced again while loading: look at the newer files next
                self._refused[name] = signature
                log.error(
                    "model %s: refused the new files in %s, still serving version %s: %s",
                    name,
                    path,
                    current.version,
                    exc,
                )
                self._notify(None, name, "refused")
                continue
            if model.signature != signature or directory_signature(path) != signature:
                continue  # replaced while loading; the next pass loads the newest
            self._refused.pop(name, None)
            self.models[name] = model  # one assignment: requests see old or new, whole
            log.info(
                "model %s: now serving version %s (was %s) from %s",
                name,
                model.version,
                current.version,
                path,
            )
            self._notify(model, name, "loaded")

    async def watch(self, interval: float) -> None:
        """Run :meth:`check` every ``interval`` seconds until cancelled."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.check()
            except Exception:  # a watcher that dies would stop every later reload
                log.exception("model reload check failed")
