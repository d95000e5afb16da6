"""Moving a verified model directory into place, and undoing what killed writers left.

A new destination is one ``rename``. An existing model is swapped with the
staging directory in one atomic ``renameat2(RENAME_EXCHANGE)`` (Linux), so a
reader or a SIGKILL sees the complete old model or the complete new one. Without
renameat2 the old model is renamed to ``.<name>.old-<host>-<pid>-<random>`` and
the new one renamed in; a process killed between those two renames leaves no
model at the destination until the next export's :func:`recover` restores it.
:mod:`training.export` explains the whole protocol; the names are
:mod:`inference.io.atomic`'s.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import shutil
from pathlib import Path

from inference.errors import ModelLoadError
from inference.io.atomic import (
    dead_leftovers,
    discard,
    parse_leftover,
    sync_directory,
    sync_file,
    temporary_name,
)
from inference.manifest import Manifest
from training.errors import ExportError

__all__ = ["exchange", "move_into_place", "publish", "recover"]


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: renameat2 errors meaning "this kernel or file system cannot exchange"
_NO_EXCHANGE = {errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP}


def _dead_leftovers(destination: Path) -> list[Path]:
    """This destination's staging (``tmp``) and ``old`` directories whose writer is dead
    (:func:`inference.io.atomic.dead_leftovers`: this host's, this user's, no links)."""
    return [p for p in dead_leftovers(destination, ("tmp", "old")) if p.is_dir()]


def _is_old(path: Path) -> bool:
    parsed = parse_leftover(path.name)
    return parsed is not None and parsed.kind == "old"


def _holds_complete_model(directory: Path) -> bool:
    """The manifest reads and every artifact it lists has its size and sha256."""
    try:
        manifest = Manifest.read(directory)
        manifest.verify_artifacts(directory)
    except (ModelLoadError, OSError):
        return False
    return True


def _ctime(path: Path) -> float:
    try:
        return path.lstat().st_ctime
    except OSError:
        return 0.0


def recover(destination: Path) -> None:
    """Undo what killed writers left: restore a missing model, remove their directories.

    If the destination is missing and a dead writer's ``.old-`` directory holds a
    complete model (the writer died between the two renames of the fallback in
    :func:`move_into_place`), it is renamed back first, the newest if several.
    Then every dead writer's leftover is removed.
    """
    leftovers = _dead_leftovers(destination)
    if not os.path.lexists(destination):
        old = [p for p in leftovers if _is_old(p)]
        for candidate in sorted(old, key=_ctime, reverse=True):
            if _holds_complete_model(candidate):
                try:
                    os.rename(candidate, destination)
                except FileNotFoundError:  # another export restored it first
                    pass
                except OSError as exc:  # keep it: the removal below must not run
                    raise ExportError(
                        f"{destination} is missing and its previous model is complete in "
                        f"{candidate}, but renaming it back failed ({exc}); rename it by hand"
                    ) from exc
                break
    for path in leftovers:
        discard(path)


def exchange(a: Path, b: Path) -> bool:
    """Atomically swap two directories (Linux renameat2 RENAME_EXCHANGE).

    False if the platform or the file system cannot; any other failure raises
    ``OSError`` rather than falling back to the two renames.
    """
    libc_name = ctypes.util.find_library("c")
    if not libc_name or not hasattr(os, "O_DIRECTORY"):
        return False
    try:
        libc = ctypes.CDLL(libc_name, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    rc = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in _NO_EXCHANGE:
        return False
    raise OSError(err, f"renameat2({a}, {b}, RENAME_EXCHANGE): {os.strerror(err)}")


def move_into_place(staging: Path, destination: Path, overwrite: bool) -> None:
    """Put the finished ``staging`` directory at ``destination`` (module docstring)."""
    if not destination.exists():
        os.rename(staging, destination)
        return
    if not overwrite:
        raise ExportError(f"{destination} already exists; pass overwrite=True to replace it")
    if exchange(staging, destination):
        shutil.rmtree(staging)  # staging now holds the old model
        return
    # No renameat2: a kill between these two renames leaves no model at the
    # destination until the next export's recover (module docstring).
    old = temporary_name(destination, "old")
    os.rename(destination, old)
    try:
        os.rename(staging, destination)
    except BaseException:
        if not os.path.lexists(destination):
            os.rename(old, destination)  # the old model back where it was
        raise
    shutil.rmtree(old)


def publish(staging: Path, destination: Path, overwrite: bool) -> None:
    """Sync every file of ``staging``, open its permissions (private while being
    written) and move it to ``destination``; then sync the parent directory."""
    for path in staging.iterdir():
        sync_file(path)
    sync_directory(staging)
    staging.chmod(0o777 & ~_umask())
    move_into_place(staging, destination, overwrite)
    sync_directory(destination.parent)
