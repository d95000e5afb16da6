"""The loaded models, their versions, and the changes to them while serving.

Sources (:mod:`inference.serve.repository`): single exported model directories, each
a model of one version, or the models of a repository, each with integer versions
chosen by its version policy. Every version is loaded by :func:`load_version`, the one
place where a directory is read and verified (:mod:`inference.serve.registry`).

:meth:`ModelRegistry.sync` brings one model in line with its files: it loads each
version the policy wants whose files are new or changed, and only when every wanted
version is ready does it unload the versions no longer wanted. So a new version is
loaded and verified before the old one goes, and a version that fails to load leaves
the old one serving; the failure is kept (with its reason, shown by :meth:`index`)
and the same files are not tried again until they change, or until an explicit load.
Polling (:meth:`watch`) calls it for every model in turn and goes on after failures.

Readers never lock: every change publishes new dicts with single assignments, so a
request sees the old or the new state whole, and holds the :class:`LoadedModel` it
started with to the end. Loads run on worker threads, one model at a time under that
model's lock; the listeners (metrics) are called on the event loop afterwards.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from inference.errors import ModelLoadError
from inference.serve.registry import (
    LoadedModel,
    ModelNotFound,
    ModelNotReady,
    Signature,
    directory_signature,
    load_version,
)
from inference.serve.repository import (
    ModelSource,
    VersionPolicy,
    is_model_dir,
    read_policy,
    scan_repository,
    version_dirs,
)

__all__ = ["LOADING", "READY", "UNAVAILABLE", "ModelRegistry", "version_key"]

log = logging.getLogger("linreg.serve")

#: (model or None, model name, result): "loaded" (at start-up: "serving"), "refused",
#: or "unloaded" with the version unloaded
Event = tuple["LoadedModel | None", str, str]

READY, UNAVAILABLE, LOADING = "READY", "UNAVAILABLE", "LOADING"


def version_key(label: str) -> tuple[int, str]:
    """Sort key: integer versions by value, above a sha256 label."""
    return (int(label), "") if label.isdigit() else (-1, label)


class _Entry:
    """One model: its source, ready versions and the state of every version known."""

    def __init__(self, source: ModelSource, wanted: bool) -> None:
        self.source = source
        self.wanted = wanted
        self.ready: dict[str, LoadedModel] = {}  # replaced, never changed in place
        self.states: dict[str, tuple[str, str]] = {}  # version -> (state, reason)
        self.refused: dict[str, Signature | None] = {}
        self.lock = threading.Lock()

    def default(self) -> LoadedModel | None:
        ready = self.ready
        return ready[max(ready, key=version_key)] if ready else None

    def set_state(self, version: str, state: str, reason: str = "") -> None:
        self.states = {**self.states, version: (state, reason)}


def _trusted_keys(paths: Sequence[str]) -> list[Any]:
    """The keys of ``paths``, else of ``LINREG_TRUSTED_KEYS``, loaded once (a key file
    that is missing or not an accepted key stops the server at start)."""
    files: list[Any] = list(paths)
    if not files:
        from inference.signing import trusted_keys_from_environment

        files = trusted_keys_from_environment()
    if not files:
        return []
    from inference.signing import load_trusted_keys

    keys = load_trusted_keys(files)
    for key in keys:
        log.info("trusted key %s (hint %s): only models it signed are served", key.source, key.hint)
    return keys


class ModelRegistry:
    """Models by name and their versions; see the module's docstring.

    Parameters
    ----------
    sources : the models, in order; the first is the default of ``/predict`` and
        ``/invocations``
    threads : intra-op threads of each session
    trusted_keys : PEM public key files; with any (else with ``LINREG_TRUSTED_KEYS``),
        every version's signature is verified when it loads (read once, at start)
    root : the repository (rescanned by :meth:`check` for new and removed models)
    wanted : the names to load at start (None: all)
    poll_new : whether models that appear in ``root`` are loaded by :meth:`check`
    """

    def __init__(
        self,
        sources: list[ModelSource],
        *,
        threads: int,
        root: Path | None = None,
        wanted: set[str] | None = None,
        poll_new: bool = False,
        trusted_keys: Sequence[str] = (),
    ) -> None:
        self.threads = threads
        self.trusted_keys = _trusted_keys(trusted_keys)
        self.root = root
        self.poll_new = poll_new
        self._scan_lock = threading.Lock()
        self._publish_lock = threading.Lock()
        self.entries: dict[str, _Entry] = {}
        for s in sources:
            if s.name in self.entries:
                first = self.entries[s.name].source.path
                raise ModelLoadError(
                    f"two model directories are named {s.name!r} ({first} and {s.path}); "
                    "each model is served under its directory name"
                )
            self.entries[s.name] = _Entry(s, wanted is None or s.name in wanted)
        if not self.entries and root is None:
            raise ModelLoadError("no model directory given")
        unknown = sorted((wanted or set()) - set(self.entries))
        if unknown:
            raise ModelLoadError(f"no model {unknown} in {root}; it has {list(self.entries)}")
        self.order = list(self.entries)
        #: the default (highest ready) version of each model that has one
        self.models: dict[str, LoadedModel] = {}
        #: the models that start-up loads; the server is ready once each has a version
        self.initial = [n for n, e in self.entries.items() if e.wanted]
        self.started = False
        self.listeners: list[Callable[[LoadedModel | None, str, str], None]] = []

    # --- reading (any thread, no lock) ------------------------------------------
    def get(self, name: str) -> LoadedModel | None:
        return self.models.get(name)

    def first(self) -> LoadedModel:
        """The default version of the first model (raises :class:`ModelNotReady`)."""
        if not self.order:
            raise ModelNotReady("the model repository has no model yet")
        model = self.models.get(self.order[0])
        return model if model is not None else self.resolve(self.order[0])

    def versions(self, name: str) -> list[str]:
        """The ready versions of ``name``, highest first."""
        entry = self.entries.get(name)
        return sorted(entry.ready, key=version_key, reverse=True) if entry else []

    def resolve(self, name: str, version: str | None = None) -> LoadedModel:
        """Version ``version`` of ``name`` (None: the highest ready one).

        Raises :class:`ModelNotFound` for a name or version this server does not know,
        :class:`ModelNotReady` for one that is known but not loaded now.
        """
        entry = self.entries.get(name)
        if entry is None:
            raise ModelNotFound(f"no model {name!r}; this server has {self.order}")
        if version is None:
            model = self.models.get(name)
            if model is None:
                raise ModelNotReady(f"model {name!r} is not ready: {self._why(entry)}")
            return model
        model = entry.ready.get(version)
        if model is not None:
            return model
        ready = self.versions(name)
        if version in entry.states:
            state, reason = entry.states[version]
            raise ModelNotReady(
                f"version {version!r} of model {name!r} is {state.lower()}"
                f"{': ' + reason if reason else ''}; ready versions: {ready}"
            )
        raise ModelNotFound(f"model {name!r} has no version {version!r}; ready versions: {ready}")

    def _why(self, entry: _Entry) -> str:
        if not self.started and entry.wanted:
            return "loading"
        reasons = [f"version {v}: {r}" if v else r for v, (_, r) in entry.states.items() if r]
        return "; ".join(reasons) or ("not loaded" if not entry.wanted else "no version loaded")

    def ready(self) -> bool:
        """Start-up loading done, and each model it loaded (still wanted) has a version."""
        if not self.started:
            return False
        return all(
            n in self.models for n in self.initial if n in self.entries and self.entries[n].wanted
        )

    def index(self, ready_only: bool = False) -> list[dict[str, str]]:
        """``[{name, version, state, reason}]`` of every model and version known,
        unloaded ones included (reads the repository's folders: call it on a thread)."""
        self._rescan()
        out = []
        for name in self.order:
            entry = self.entries[name]
            states = dict(entry.states)
            if not entry.source.single:
                for v in version_dirs(entry.source.path):
                    states.setdefault(str(v), (UNAVAILABLE, "not loaded"))
            if not states:
                why = "not loaded" if entry.source.single else "no version folder (an integer)"
                states[""] = (UNAVAILABLE, why)
            for version in sorted(states, key=version_key):
                state, reason = states[version]
                if not ready_only or state == READY:
                    out.append({"name": name, "version": version, "state": state, "reason": reason})
        return out

    # --- changing (worker threads, one model at a time) --------------------------
    def _publish(self, entry: _Entry) -> None:
        model = entry.default()
        with self._publish_lock:  # two models may change at once (a load during a poll)
            models = dict(self.models)
            if model is None:
                models.pop(entry.source.name, None)
            else:
                models[entry.source.name] = model
            self.models = models

    def sync(self, name: str, *, retry: bool = False) -> tuple[list[Event], list[str]]:
        """Bring ``name`` in line with its files (blocking; see the module docstring).

        Returns the events for the listeners, and the reasons of the versions that
        failed to load in this pass (``retry``: also those that failed before).
        """
        entry = self.entries[name]
        with entry.lock:
            events: list[Event] = []
            if entry.source.single:
                failures = self._sync_single(entry, events, retry)
            else:
                failures = self._sync_versions(entry, events, retry)
            self._publish(entry)
            return events, failures

    def _try_load(
        self, entry: _Entry, version: str | None, path: Path, events: list[Event], retry: bool
    ) -> LoadedModel | str | None:
        """The loaded version, the reason it failed, or None (unchanged, already refused,
        or its files changed while loading: the next pass looks again)."""
        key = version or ""
        signature = directory_signature(path)
        current = entry.ready.get(version) if version else next(iter(entry.ready.values()), None)
        if current is not None and current.signature == signature and signature is not None:
            return None
        if signature is None and current is not None and entry.source.single:
            return None  # between the two renames of a non-atomic replace
        if not retry and key in entry.refused and entry.refused[key] == signature:
            return None
        if current is None:
            entry.set_state(key, LOADING)
        try:
            model = load_version(
                path,
                name=entry.source.name,
                version=version,
                threads=self.threads,
                trusted_keys=self.trusted_keys,
            )
        except (ModelLoadError, OSError) as exc:
            if directory_signature(path) != signature:
                return None
            entry.refused[key] = signature
            reason = str(exc)
            if current is None:
                entry.set_state(key, UNAVAILABLE, reason)
            else:
                entry.set_state(current.version, READY, f"refused new files: {reason}")
            log.error(
                "model %s: refused %s in %s: %s%s",
                entry.source.name,
                "the new files" if current else "the files",
                path,
                reason,
                f" (still serving version {current.version})" if current else "",
            )
            events.append((None, entry.source.name, "refused"))
            return reason
        if model.signature != signature or directory_signature(path) != signature:
            return None
        entry.refused.pop(key, None)
        log.info("model %s: loaded version %s from %s", entry.source.name, model.version, path)
        events.append((model, entry.source.name, "loaded"))
        return model

    def _sync_single(self, entry: _Entry, events: list[Event], retry: bool) -> list[str]:
        path = entry.source.path
        got = self._try_load(entry, None, path, events, retry)
        if isinstance(got, str):
            return [got]
        if got is not None:
            old = [m for label, m in entry.ready.items() if label != got.version]
            entry.ready = {got.version: got}
            entry.states = {got.version: (READY, "")}
            self._publish(entry)
            events += [(m, entry.source.name, "unloaded") for m in old]
        elif not entry.ready and not is_model_dir(path):
            reason = f"{path}: no manifest.json (not an exported model directory)"
            entry.states = {"": (UNAVAILABLE, reason)}
            return [reason]
        return []

    def _sync_versions(self, entry: _Entry, events: list[Event], retry: bool) -> list[str]:
        name = entry.source.name
        try:
            policy: VersionPolicy = read_policy(entry.source.path)
        except ModelLoadError as exc:
            for v in version_dirs(entry.source.path):
                if str(v) not in entry.ready:
                    entry.set_state(str(v), UNAVAILABLE, str(exc))
            if not entry.ready:
                entry.set_state("", UNAVAILABLE, str(exc))
            log.error("model %s: %s", name, exc)
            return [str(exc)]
        entry.states = {k: s for k, s in entry.states.items() if k}
        on_disk = version_dirs(entry.source.path)
        wanted = [str(v) for v in policy.select(list(on_disk))]
        failures = []
        for version in sorted(wanted, key=version_key):
            got = self._try_load(entry, version, on_disk[int(version)], events, retry)
            if isinstance(got, str):
                failures.append(f"version {version}: {got}")
            elif got is not None:
                entry.ready = {**entry.ready, version: got}
                entry.set_state(version, READY)
                self._publish(entry)  # requests may use it from now on
        if all(v in entry.ready for v in wanted):
            for version in list(entry.ready):
                if version not in wanted:
                    why = f"not in the version policy ({policy.describe()})"
                    events.append(self._unload(entry, version, why))
        entry.states = {  # forget the versions gone from disk, unless still serving
            k: s for k, s in entry.states.items() if int(k) in on_disk or k in entry.ready
        }
        if not on_disk and not entry.ready:
            reason = f"no version folder (an integer) in {entry.source.path}"
            entry.set_state("", UNAVAILABLE, reason)
            failures.append(reason)
        for v in on_disk:
            if str(v) not in wanted and str(v) not in entry.ready:
                entry.set_state(
                    str(v), UNAVAILABLE, f"not in the version policy ({policy.describe()})"
                )
        return failures

    def _unload(self, entry: _Entry, version: str, reason: str) -> Event:
        model = entry.ready[version]
        entry.ready = {k: m for k, m in entry.ready.items() if k != version}
        entry.set_state(version, UNAVAILABLE, reason)
        entry.refused.pop(version, None)
        self._publish(entry)
        log.info("model %s: unloaded version %s (%s)", entry.source.name, version, reason)
        return (model, entry.source.name, "unloaded")

    def unload_all(self, name: str) -> list[Event]:
        """Unload every version of ``name`` and stop loading it (blocking)."""
        entry = self.entries[name]
        with entry.lock:
            entry.wanted = False
            events: list[Event] = []
            for version in list(entry.ready):
                events.append(self._unload(entry, version, "unloaded"))
            return events

    def _rescan(self) -> None:
        """New and removed models of the repository (blocking)."""
        if self.root is None:
            return
        try:
            found = scan_repository(self.root)
        except ModelLoadError as exc:
            log.error("%s", exc)
            return
        with self._scan_lock:
            entries = dict(self.entries)
            for name, source in found.items():
                if name not in entries:
                    entries[name] = _Entry(source, wanted=self.poll_new)
            self.entries = entries
            self.order = [n for n in self.order if n in entries] + [
                n for n in found if n not in self.order
            ]

    def _rescan_for_poll(self) -> list[Event]:
        """:meth:`_rescan`, then the models whose folder is gone unloaded and forgotten."""
        self._rescan()
        if self.root is None:
            return []
        events: list[Event] = []
        with self._scan_lock:
            gone = [n for n in self.order if not self.entries[n].source.path.is_dir()]
            for name in gone:
                events += self.unload_all(name)
            if gone:
                self.entries = {n: e for n, e in self.entries.items() if n not in gone}
                self.order = [n for n in self.order if n not in gone]
        return events

    # --- on the event loop -------------------------------------------------------
    def _notify(self, events: list[Event]) -> None:
        for model, name, result in events:
            if result == "loaded" and not self.started:
                result = "serving"
            for listener in self.listeners:
                listener(model, name, result)

    def load_now(self) -> None:
        """Load every wanted model before serving (blocking; raises the first failure)."""
        for name in self.initial:
            events, failures = self.sync(name)
            self._notify(events)
            if failures:
                raise ModelLoadError(f"model {name!r}: {failures[0]}")
        self.started = True

    async def start(self) -> None:
        """Load every wanted model on worker threads (the server answers meanwhile)."""
        for name in self.initial:
            try:
                events, _ = await asyncio.to_thread(self.sync, name)
            except Exception:  # one model's surprise must not keep the others from loading
                log.exception("model %s: loading failed", name)
                continue
            self._notify(events)
        self.started = True

    async def load(self, name: str) -> None:
        """Load ``name`` now (files that failed before are tried again).

        Raises :class:`ModelNotFound` or :class:`ModelLoadError` (with the reasons;
        what was already serving goes on)."""
        await asyncio.to_thread(self._rescan)
        if name not in self.entries:
            raise ModelNotFound(f"no model {name!r}; the repository has {self.order}")
        self.entries[name].wanted = True
        events, failures = await asyncio.to_thread(self.sync, name, retry=True)
        self._notify(events)
        if failures:
            raise ModelLoadError(f"failed to load model {name!r}: {'; '.join(failures)}")
        if name not in self.models:
            raise ModelLoadError(f"failed to load model {name!r}: {self._why(self.entries[name])}")

    async def unload(self, name: str) -> None:
        if name not in self.entries:
            raise ModelNotFound(f"no model {name!r}; the repository has {self.order}")
        self._notify(await asyncio.to_thread(self.unload_all, name))

    async def check(self) -> None:
        """One poll: new and removed models, then each wanted model brought in line
        with its files."""
        self._notify(await asyncio.to_thread(self._rescan_for_poll))
        for name in list(self.order):
            entry = self.entries.get(name)
            if entry is not None and entry.wanted:
                events, _ = await asyncio.to_thread(self.sync, name)
                self._notify(events)

    async def watch(self, interval: float) -> None:
        """Run :meth:`check` every ``interval`` seconds until cancelled."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.check()
            except Exception:  # a watcher that dies would stop every later reload
                log.exception("model reload check failed")
