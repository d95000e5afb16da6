"""SIGKILL during a batch job: each destination holds its complete old content or the
complete new one, never a part, and a re-run succeeds with the clean run's result.

A ``linreg predict`` child process scores a CSV of 1.6 million rows (about 1.5 s
here) into ``out.csv`` with ``--bad-rows rejected.csv``, both already holding an
older output. It is killed with SIGKILL at seeded random moments spread over a clean
run's duration, from the interpreter's start-up to the last renames. After each
kill, each of the two files must be byte-identical to its older content or to the
clean run's; the only other file allowed is the killed job's hidden temporary
(``.<name>.tmp-<host>-<pid>-<random>``). A re-run must then succeed, produce the
clean run's bytes and remove the dead job's temporaries.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from inference.batch import remove_stale_temporaries, score_file
from inference.io.atomic import host_tag

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "exported_models" / "plant_richness_mlr"
ROWS = 3_000_000
BAD_ROWS = {17: "oops", 800_000: "", ROWS - 3: "inf"}  # row -> bad area value
SEED = 20_260_611
#: kill moments as fractions of a clean run: start-up, early, middle, late, the very end
FRACTIONS = [(0.0, 0.1), (0.15, 0.4), (0.4, 0.65), (0.65, 0.9), (0.9, 1.0), (0.97, 1.03)]
CODE = (
    "import sys; sys.modules['torch'] = None\n"  # the command needs no torch
    "from linreg.main import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)

#: the child kills itself right after its N-th os.replace (0: before the first one)
HOOKED = (
    "import os, signal, sys; sys.modules['torch'] = None\n"
    "die_after, calls, rename = int(sys.argv.pop(1)), [], os.replace\n"
    "def replace(*args):\n"
    "    if die_after == 0:\n"
    "        os.kill(os.getpid(), signal.SIGKILL)\n"
    "    rename(*args)\n"
    "    calls.append(args)\n"
    "    if len(calls) == die_after:\n"
    "        os.kill(os.getpid(), signal.SIGKILL)\n"
    "os.replace = replace\n"
    "from linreg.main import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)

pytestmark = [
    pytest.mark.skipif(sys.platform != "linux", reason="SIGKILL and /proc: Linux"),
    pytest.mark.slow,
]


def temporaries(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if ".tmp-" in p.name)


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    """The input, the command, and the older outputs at both destinations."""
    directory = tmp_path_factory.mktemp("batch-crash")
    rng = np.random.default_rng(SEED)
    area = rng.uniform(0, 4, ROWS).round(4).astype(str).astype(object)
    for row, value in BAD_ROWS.items():
        area[row] = value
    source = directory / "in.csv"
    table = pa.table(
        {
            "id": np.arange(ROWS),
            "area": pa.array(area, type=pa.string()),
            "latitude": rng.uniform(35, 48, ROWS).round(3),
            "dist_mainland": rng.uniform(0, 300, ROWS).round(2),
        }
    )
    pacsv.write_csv(table, source, pacsv.WriteOptions(quoting_style="none"))
    out_dir = directory / "out"
    out_dir.mkdir()
    out, rejected = out_dir / "out.csv", out_dir / "rejected.csv"
    args = [sys.executable, "-c", CODE, "predict", str(MODEL), str(source), "-o", str(out)]
    args += ["--id-columns", "id", "--bad-rows", str(rejected), "--overwrite"]
    args += ["--chunk-rows", "4000", "--parse-threads", "1", "--no-progress"]
    old = {out: b"id,prediction\nold,1.0\n" * 1000, rejected: b"file,line\nold,1\n"}
    return args, out_dir, out, rejected, old


def reset(old: dict[Path, bytes]) -> None:
    for path, data in old.items():
        path.write_bytes(data)


def run_clean(args: list[str]) -> float:
    started = time.monotonic()
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"scored {ROWS - len(BAD_ROWS)} rows" in done.stderr, done.stderr
    assert f"{len(BAD_ROWS)} bad row(s) set aside" in done.stderr, done.stderr
    return time.monotonic() - started


def test_sigkill_at_random_moments_keeps_old_or_new_and_a_rerun_succeeds(job):
    args, out_dir, out, rejected, old = job
    reset(old)
    # the faster of two clean runs: the first pays for cold caches, and kill delays
    # measured from it would land after most jobs had finished
    duration = min(run_clean(args), run_clean(args))
    new = {out: out.read_bytes(), rejected: rejected.read_bytes()}
    assert new[out].count(b"\n") == ROWS - len(BAD_ROWS) + 1
    assert new[rejected].count(b"\n") == len(BAD_ROWS) + 1
    assert not temporaries(out_dir)

    rng = random.Random(SEED)
    seen = []
    for low, high in FRACTIONS:
        reset(old)
        delay = rng.uniform(low, high) * duration
        proc = subprocess.Popen(args, cwd=ROOT, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)  # a no-op if it has already finished
        status = proc.wait(timeout=60)
        assert status in (-signal.SIGKILL, 0)
        killed = status == -signal.SIGKILL

        # Each destination: the complete old bytes or the complete new ones.
        states = []
        for path in (out, rejected):
            data = path.read_bytes()
            assert data in (old[path], new[path]), f"{path.name}: {len(data)} bytes, a mix"
            states.append("new" if data == new[path] else "old")
        # Nothing else but the killed job's own hidden temporaries.
        left = temporaries(out_dir)
        assert sorted(p.name for p in out_dir.iterdir()) == sorted([out.name, rejected.name, *left])
        pattern = rf"\.(out|rejected)\.csv\.tmp-[0-9a-f]{{8}}-{proc.pid}-[0-9a-f]{{8}}"
        assert all(re.fullmatch(pattern, name) for name in left), left
        seen.append((round(delay, 2), killed, *states, len(left)))

        # A re-run succeeds, gives the clean run's bytes and removes the dead job's leftovers.
        run_clean(args)
        assert out.read_bytes() == new[out] and rejected.read_bytes() == new[rejected]
        assert not temporaries(out_dir), "the re-run left the killed job's temporaries"
    print(f"\nclean run {duration:.2f} s; (delay s, killed, out, rejected, temporaries left):")
    print("\n".join(map(str, seen)))
    assert sum(1 for s in seen if s[1]) >= 3, f"too few kills landed: {seen}"


@pytest.mark.parametrize(
    ("renames", "expected"),
    [(0, ("old", "old")), (1, ("old", "new")), (2, ("new", "new"))],
    ids=["before-the-renames", "between-the-renames", "after-the-renames"],
)
def test_sigkill_at_each_rename(tmp_path, renames, expected):
    """Both temporaries are flushed before either is renamed; the bad-rows file goes
    first. A kill between the two renames leaves each file whole, the output old."""
    source = tmp_path / "in.csv"
    rows = [f"r{i},{i % 4}.5,{40 + i % 7},{i % 300}" for i in range(20_000)]
    rows[5] = "r5,oops,40,1"
    source.write_text("id,area,latitude,dist_mainland\n" + "\n".join(rows) + "\n")
    out, rejected = tmp_path / "out.csv", tmp_path / "rejected.csv"
    old = {out: b"old output\n", rejected: b"old rejected\n"}
    args = ["predict", str(MODEL), str(source), "-o", str(out), "--id-columns", "id"]
    args += ["--bad-rows", str(rejected), "--overwrite", "--no-progress"]
    reset(old)
    clean = subprocess.run([sys.executable, "-c", CODE, *args], cwd=ROOT, capture_output=True)
    assert clean.returncode == 0, clean.stderr
    new = {out: out.read_bytes(), rejected: rejected.read_bytes()}
    reset(old)
    hooked = [sys.executable, "-c", HOOKED, str(renames), *args]
    died = subprocess.run(hooked, cwd=ROOT, capture_output=True, timeout=60)
    assert died.returncode == -signal.SIGKILL, died.stderr
    states = tuple("new" if p.read_bytes() == new[p] else "old" for p in (out, rejected))
    assert states == expected  # (out.csv, rejected.csv)
    for path in (out, rejected):
        assert path.read_bytes() in (old[path], new[path])
    assert len(temporaries(tmp_path)) == 2 - renames
    rerun = subprocess.run([sys.executable, "-c", CODE, *args], cwd=ROOT, capture_output=True)
    assert rerun.returncode == 0, rerun.stderr
    assert out.read_bytes() == new[out] and rejected.read_bytes() == new[rejected]
    assert not temporaries(tmp_path)


def test_only_dead_processes_temporaries_are_removed(tmp_path):
    """A re-run removes a killed job's leftovers for its destination only: never those of
    a live process (this one's included), another host's, or another destination's."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dest = tmp_path / "scored.csv"
        host = host_tag()
        names = {
            "dead": f".scored.csv.tmp-{host}-{dead.pid}-0123abcd",
            "dead, again": f".scored.csv.tmp-{host}-{dead.pid}-89abcdef",
            "alive": f".scored.csv.tmp-{host}-{alive.pid}-0123abcd",
            "this process": f".scored.csv.tmp-{host}-{os.getpid()}-0123abcd",
            "other host": f".scored.csv.tmp-{int(host, 16) ^ 1:08x}-{dead.pid}-0123abcd",
            "other destination": f".other.csv.tmp-{host}-{dead.pid}-0123abcd",
            "not ours": f".scored.csv.tmp-{dead.pid}-abc",
            "export staging": ".scored.csv.tmp-k3j_x9q2",
        }
        for name in names.values():
            (tmp_path / name).write_text("partial")
        as_dir = tmp_path / f".scored.csv.tmp-{host}-{dead.pid}-fedcba98"
        as_dir.mkdir()  # a directory of that name is not a temporary file: left alone

        source = tmp_path / "in.csv"
        source.write_text("area,latitude,dist_mainland\n1,40,2\n")
        score_file(MODEL, source, dest)
        left = set(temporaries(tmp_path))
        assert left == {n for k, n in names.items() if not k.startswith("dead")} | {as_dir.name}
        assert dest.read_text().startswith("prediction\n")
        assert remove_stale_temporaries(dest) == []
    finally:
        alive.kill()
        alive.wait()
