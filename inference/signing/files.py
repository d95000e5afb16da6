"""The files of a signed directory: listing them as model_signing does, hashing them
once without following links, and writing the signature and keys atomically."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from inference.errors import SignatureError

__all__ = ["FileDigest", "hash_file", "path_order", "walk_files", "write_file"]

_BLOCK = 1 << 20


@dataclass(frozen=True)
class FileDigest:
    """A file's sha256 (hex) and size in bytes, as read while it was verified."""

    sha256: str
    size: int


def _ignored(name: str, signature_name: str) -> bool:
    """The signature file and a signer's temporaries of it."""
    if name == signature_name:
        return True
    if not name.startswith(f".{signature_name}."):
        return False
    from inference.io.atomic import parse_leftover  # the I/O layer: imported only when needed

    leftover = parse_leftover(name)
    return leftover is not None and leftover.destination == signature_name


def walk_files(root: Path, signature_name: str) -> Iterator[tuple[str, Path]]:
    """``(posix name, path)`` of every file under ``root``, subdirectories included;
    SignatureError for a symbolic link or a special file."""
    stack = [(root, PurePosixPath())]
    while stack:
        directory, rel = stack.pop()
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as exc:
            raise SignatureError(f"{directory}: cannot list it ({exc.strerror})") from exc
        for entry in entries:
            name = str(rel / entry.name)
            if rel == PurePosixPath() and _ignored(entry.name, signature_name):
                continue
            if entry.is_symlink():
                raise SignatureError(
                    f"{root}: {name} is a symbolic link; signed model directories hold files only"
                )
            if entry.is_dir(follow_symlinks=False):
                stack.append((Path(entry.path), rel / entry.name))
            elif entry.is_file(follow_symlinks=False):
                yield name, Path(entry.path)
            else:
                raise SignatureError(f"{root}: {name} is not a regular file")


def hash_file(path: Path, keep: bool) -> tuple[FileDigest, bytes | None]:
    """sha256 and size of a regular file, read once, never through a link (and without
    blocking on a FIFO swapped in); its bytes too when ``keep``."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise SignatureError(f"{path}: cannot read it ({exc.strerror})") from exc
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise SignatureError(f"{path}: is not a regular file")
        h, size, parts = hashlib.sha256(), 0, []
        while block := f.read(_BLOCK):
            h.update(block)
            size += len(block)
            if keep:
                parts.append(block)
    return FileDigest(h.hexdigest(), size), (b"".join(parts) if keep else None)


def path_order(name: str) -> tuple[str, ...]:
    return PurePosixPath(name).parts  # model_signing sorts resources by path


# --------------------------------------------------------------------------------------


def write_file(path: Path, data: bytes, mode: int, overwrite: bool) -> None:
    """Write ``data`` to ``path`` atomically, created with ``mode``; an existing file is
    kept (FileExistsError) unless ``overwrite``."""
    from inference.io.atomic import AtomicFile

    with AtomicFile(path) as out:
        fd = os.open(out.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        out.sync()
        if overwrite:
            out.commit()
            return
        os.link(out.tmp, path)  # fails if path exists: never replaces a key by accident
        out.discard()
