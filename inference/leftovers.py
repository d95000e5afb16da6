"""Names of temporary files and directories that say which process wrote them.

Batch jobs (:mod:`inference.batch`) and exports (``training.export``) write under a
hidden temporary name ``.<name>.tmp-<host>-<pid>-<random>`` beside the destination
and rename it into place at the end. A process killed by SIGKILL cannot remove its
temporary, so the next writer of the same destination removes those whose writer,
on this host, no longer exists. ``<host>`` keeps writers on other machines sharing
a file system out of it.
"""

from __future__ import annotations

import os
import socket
import zlib

__all__ = ["host_tag", "process_gone", "writer_tag"]


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
