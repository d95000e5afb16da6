"""Atomic writes: a file or a directory appears whole at its destination, or not at all.

A writer works under a hidden temporary name beside its destination,

    ``.<name>.<kind>-<host>-<pid>-<random>``

``<kind>`` being ``tmp`` for what is being written (a batch job's output, an
export's staging directory) and ``old`` for a model directory moved aside while
it is replaced (``training.export``), ``<host>`` 8 hex digits of the CRC-32 of
the host name, ``<pid>`` the writer's process id and ``<random>`` lowercase
letters, digits or underscores. It flushes the temporary with fsync, renames it
into place (``os.replace`` for a file) and fsyncs the directory, so a reader sees
the old file or the new one, never part of one. On an exception the temporary is
removed (:class:`AtomicFile` as a context manager, :meth:`AtomicFile.discard`).

A process killed by SIGKILL cannot remove its temporary, so the next writer of the
same destination removes those whose writer, on this host, no longer exists
(:func:`dead_leftovers`, :func:`remove_stale_temporaries`). ``<host>`` keeps
writers on other machines sharing a file system out of it. Leftovers of a live
process (a zombie counts), of another host, of another user, symbolic links and
names that do not parse are never touched; Windows is skipped (``os.kill(pid, 0)``
would terminate the process there).

Readers of a destination (a model server watching a model directory) ignore every
name starting with ``.``: :func:`parse_leftover` tells a writer's temporary apart
from anything else.

For example, a file written whole or not at all (``contextlib.ExitStack`` closes
the writer, then removes the temporary, when anything fails before the commit)::

    with contextlib.ExitStack() as stack:
        out = stack.enter_context(AtomicFile(Path("scored.csv")))
        f = stack.enter_context(closing_on_failure(open(out.tmp, "w")))
        f.write("prediction\\n1.5\\n")
        f.close()
        out.commit()
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import socket
import stat
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

__all__ = [
    "AtomicFile",
    "Leftover",
    "closing_on_failure",
    "commit_together",
    "dead_leftovers",
    "discard",
    "host_tag",
    "parse_leftover",
    "process_gone",
    "remove_stale_temporaries",
    "sync_directory",
    "sync_file",
    "temporary_name",
    "writer_tag",
]


class _Closable(Protocol):
    def close(self) -> Any: ...


_W = TypeVar("_W", bound=_Closable)

#: kinds of temporary names: being written, and moved aside while replaced
KINDS = ("tmp", "old")

#: ``.<name>.<kind>-<host>-<pid>-<random>``, the one grammar of temporary names
_LEFTOVER_NAME = re.compile(
    r"\.(?P<name>.+)\.(?P<kind>tmp|old)-(?P<host>[0-9a-f]{8})-(?P<pid>\d+)-[a-z0-9_]+"
)


def host_tag() -> str:
    """8 hex digits of the CRC-32 of this machine's host name."""
    return f"{zlib.crc32(socket.gethostname().encode('utf-8', 'replace')):08x}"


def writer_tag() -> str:
    """``<host>-<pid>-``: what comes before the random part of this process's names."""
    return f"{host_tag()}-{os.getpid()}-"


def process_gone(pid: int) -> bool:
    """True only when no process ``pid`` exists here (a zombie exists; POSIX only:
    on Windows ``os.kill(pid, 0)`` would terminate the process, so never guessed)."""
    if os.name != "posix" or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (OSError, OverflowError):  # EPERM: it exists, owned by someone else
        return False
    return False


def temporary_name(destination: Path, kind: str = "tmp") -> Path:
    """A new name ``.<name>.<kind>-<host>-<pid>-<random>`` beside ``destination``."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    name = f".{destination.name}.{kind}-{writer_tag()}{secrets.token_hex(4)}"
    return destination.with_name(name)


@dataclass(frozen=True)
class Leftover:
    """A temporary name taken apart: its destination's name, kind, host tag and pid."""

    destination: str
    kind: str
    host: str
    pid: int


def parse_leftover(name: str) -> Leftover | None:
    """The parts of a temporary name (see the module docstring), or None for any other name."""
    match = _LEFTOVER_NAME.fullmatch(name)
    if match is None:
        return None
    return Leftover(match["name"], match["kind"], match["host"], int(match["pid"]))


def dead_leftovers(destination: Path, kinds: Sequence[str] = ("tmp",)) -> list[Path]:
    """The temporaries of ``destination`` (of these ``kinds``) whose writer is dead.

    Only names of this host that are real files or directories (not links) owned by
    this user, with no process ``<pid>``; sorted; empty on Windows or when the
    directory cannot be read.
    """
    if os.name != "posix":
        return []
    try:
        entries = list(os.scandir(destination.parent))
    except OSError:
        return []
    host, found = host_tag(), []
    for entry in entries:
        parsed = parse_leftover(entry.name)
        if (
            parsed is None
            or parsed.destination != destination.name
            or parsed.kind not in kinds
            or parsed.host != host
        ):
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:  # removed meanwhile by another writer
            continue
        real = stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)
        if real and st.st_uid == os.geteuid() and process_gone(parsed.pid):
            found.append(Path(entry.path))
    return sorted(found)


def remove_stale_temporaries(dest: Path) -> list[Path]:
    """Remove the temporary files of ``dest`` left by killed writers (:func:`dead_leftovers`;
    a directory of such a name is left alone). A live process's temporary (this one's
    included) is never touched. Returns the paths removed."""
    removed = []
    for path in dead_leftovers(dest, ("tmp",)):
        try:
            if path.is_file() and not path.is_symlink():
                os.unlink(path)
                removed.append(path)
        except OSError:  # gone already, or not ours to remove
            continue
    return removed


def sync_file(path: Path) -> None:
    """Flush a file's data to disk (fsync)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_directory(directory: Path) -> None:
    """Flush a directory's entries to disk, so that a rename in it survives a crash
    (a no-op where a directory cannot be opened, as on Windows)."""
    try:
        dfd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - a directory that cannot be opened (Windows)
        return
    try:
        os.fsync(dfd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(dfd)


def discard(path: Path) -> None:
    """Remove a temporary file, or a temporary directory and everything in it; a missing
    one is fine."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


class AtomicFile:
    """A file written under a temporary name beside ``dest``, renamed into place at the end.

    Creating one removes the temporaries of ``dest`` left by killed writers. Write to
    :attr:`tmp`; :meth:`commit` fsyncs it, renames it to ``dest`` and fsyncs the
    directory; :meth:`discard` removes it. As a context manager it discards the
    temporary when the block raises.
    """

    def __init__(self, dest: Path) -> None:
        self.dest = dest
        remove_stale_temporaries(dest)
        self.tmp = temporary_name(dest)

    def __enter__(self) -> AtomicFile:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        """On any exception (``KeyboardInterrupt`` too), remove the temporary."""
        if exc_type is not None:
            self.discard()

    def discard(self) -> None:
        """Remove the temporary (a missing one is fine)."""
        discard(self.tmp)

    def sync(self) -> None:
        """Flush the temporary to disk (fsync)."""
        sync_file(self.tmp)

    def commit(self) -> None:
        """Flush the temporary and rename it into place."""
        self.sync()
        os.replace(self.tmp, self.dest)
        sync_directory(self.dest.parent)


def commit_together(files: Sequence[AtomicFile]) -> None:
    """Flush every temporary first, then rename them into place one right after the
    other: a kill lands between two renames only in that short window (each file is
    still whole, old or new; the set is not atomic)."""
    for f in files:
        f.sync()
    for f in files:
        os.replace(f.tmp, f.dest)
    for directory in dict.fromkeys(f.dest.parent for f in files):
        sync_directory(directory)


@contextlib.contextmanager
def closing_on_failure(writer: _W) -> Iterator[_W]:
    """Close ``writer`` (anything with ``close()``) when the block raises, ignoring the
    errors of that close (the job is already failing), and re-raise. On success the
    caller closes it, before committing the file it writes. Entered in an
    ``ExitStack`` after the :class:`AtomicFile` it writes, it is closed before the
    temporary is removed, so that no open handle keeps a removed file alive."""
    try:
        yield writer
    except BaseException:
        with contextlib.suppress(Exception):
            writer.close()
        raise
