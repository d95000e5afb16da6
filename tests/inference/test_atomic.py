"""inference.io.atomic: temporary names, dead writers' leftovers, atomic files, clean-up."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from inference.io.atomic import (
    AtomicFile,
    closing_on_failure,
    dead_leftovers,
    parse_leftover,
    remove_stale_temporaries,
    temporary_name,
)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _host() -> str:
    import socket

    return f"{zlib.crc32(socket.gethostname().encode('utf-8', 'replace')):08x}"


@pytest.mark.parametrize("kind", ["tmp", "old"])
def test_a_temporary_name_parses_back(tmp_path, kind):
    dest = tmp_path / "model.v2"
    name = temporary_name(dest, kind)
    assert name.parent == tmp_path and name.name.startswith(f".model.v2.{kind}-")
    parsed = parse_leftover(name.name)
    assert parsed is not None
    assert (parsed.destination, parsed.kind, parsed.host, parsed.pid) == (
        "model.v2",
        kind,
        _host(),
        os.getpid(),
    )
    assert temporary_name(dest, kind) != name  # a random part


@pytest.mark.parametrize(
    "name",
    [
        "model",
        ".model",
        ".model.tmp-k2x9_q0z",
        ".model.new-0123abcd-12-abcd",
        ".m.tmp-0123abcd-x-ab",
    ],
)
def test_other_names_do_not_parse(name):
    assert parse_leftover(name) is None


def test_unknown_kind_is_refused(tmp_path):
    with pytest.raises(ValueError, match="kind must be one of"):
        temporary_name(tmp_path / "x", "new")


@pytest.mark.slow
@pytest.mark.skipif(os.name != "posix", reason="dead writers are judged on POSIX only")
def test_only_dead_writers_of_this_host_and_destination_are_leftovers(tmp_path):
    host, dead = _host(), _dead_pid()
    dest = tmp_path / "out.csv"
    dead_file = tmp_path / f".out.csv.tmp-{host}-{dead}-0123abcd"
    dead_dir = tmp_path / f".out.csv.old-{host}-{dead}-abc_123x"
    kept = [
        tmp_path / f".out.csv.tmp-{host}-{os.getpid()}-0123abcd",  # this live process
        tmp_path / f".out.csv.tmp-{int(host, 16) ^ 1:08x}-{dead}-0123abcd",  # another host
        tmp_path / f".other.csv.tmp-{host}-{dead}-0123abcd",  # another destination
    ]
    for path in [dead_file, *kept]:
        path.write_text("partial")
    dead_dir.mkdir()
    link = tmp_path / f".out.csv.tmp-{host}-{dead}-symlink0"
    link.symlink_to(kept[0])  # never followed
    assert dead_leftovers(dest) == [dead_file]
    assert dead_leftovers(dest, ("tmp", "old")) == sorted([dead_file, dead_dir])
    assert remove_stale_temporaries(dest) == [dead_file]  # files only
    assert not dead_file.exists() and dead_dir.is_dir() and link.is_symlink()
    assert all(p.exists() for p in kept)


def test_an_atomic_file_appears_whole_at_commit(tmp_path):
    dest = tmp_path / "out.txt"
    dest.write_text("old")
    out = AtomicFile(dest)
    out.tmp.write_text("new")
    assert dest.read_text() == "old"
    out.commit()
    assert dest.read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


class _Writer:
    def __init__(self, path: Path) -> None:
        self.file = open(path, "w")  # noqa: SIM115
        self.closed = False

    def close(self) -> None:
        self.closed = True
        self.file.close()


def test_a_failure_closes_writers_and_removes_temporaries(tmp_path):
    writer = None
    with pytest.raises(KeyboardInterrupt), contextlib.ExitStack() as stack:
        out = stack.enter_context(AtomicFile(tmp_path / "out.txt"))
        bad = stack.enter_context(AtomicFile(tmp_path / "bad.txt"))
        writer = stack.enter_context(closing_on_failure(_Writer(out.tmp)))
        bad.tmp.write_text("x")
        raise KeyboardInterrupt
    assert writer.closed and list(tmp_path.iterdir()) == []


def test_a_finished_job_is_left_alone(tmp_path):
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(AtomicFile(tmp_path / "out.txt"))
        writer = stack.enter_context(closing_on_failure(_Writer(out.tmp)))
        writer.file.write("done")
        writer.close()
        out.commit()
    assert (tmp_path / "out.txt").read_text() == "done"
