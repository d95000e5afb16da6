"""A CSV file with one huge line (one cell of N digits) through ``linreg predict`` and
``linreg train``: exit status, the message, wall time and peak RSS of each.

Run: ``.venv/bin/python benchmarks/bench_fastcsv_long_line.py --digits 300000000``
(the hostile file of issue 22: a 300 MB line; about 0.6 GB of disk, written to a
temporary directory). ``--baseline DIR`` runs the same commands with another checkout's
code first on ``PYTHONPATH`` (e.g. a worktree of the previous commit, its extensions
built in place) for the figures before the line limit. Each command runs as its own
process; its peak RSS is ``ru_maxrss`` from ``wait4``.

The file: a header (``area,latitude,dist_mainland``), two plain lines, the long line
(line 4: a cell of ``--digits`` digits, then two plain fields), two plain lines.
``linreg predict`` scores it with the bundled ``plant_richness_mlr`` model;
``linreg train`` fits ``dist_mainland`` on the other two columns (a file of 64 MiB or
more is fitted in chunks, the ``auto`` engine's choice).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "exported_models" / "plant_richness_mlr"


def write_file(path: Path, digits: int) -> None:
    piece = b"1" * (1 << 20)
    with path.open("wb") as f:
        f.write(b"area,latitude,dist_mainland\n1.5,2.5,3.5\n2.5,3.5,4.5\n")
        left = digits
        while left:
            n = min(left, len(piece))
            f.write(piece[:n])
            left -= n
        f.write(b",1.5,2.5\n3.5,4.5,5.5\n4.5,5.5,6.5\n")


def run(cmd: list[str], pythonpath: str | None) -> tuple[int, float, float, str]:
    """(exit status, wall seconds, peak RSS MiB, last line of stderr) of one process."""
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    with tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        pid = os.posix_spawn(
            cmd[0],
            cmd,
            env,
            file_actions=[
                (os.POSIX_SPAWN_DUP2, err.fileno(), 2),
                (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
            ],
        )
        _, status, usage = os.wait4(pid, 0)
        wall = time.perf_counter() - started
        err.seek(0)
        lines = err.read().decode(errors="replace").strip().splitlines()
    return os.waitstatus_to_exitcode(status), wall, usage.ru_maxrss / 1024, (lines or [""])[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--digits", type=int, default=300_000_000)
    parser.add_argument("--max-line-bytes", type=int, help="passed to both commands")
    parser.add_argument("--baseline", help="another checkout to run first (PYTHONPATH)")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    linreg = str(Path(sys.executable).with_name("linreg"))
    limit = [] if args.max_line_bytes is None else ["--max-line-bytes", str(args.max_line_bytes)]
    with open("/proc/loadavg") as f:
        print(f"load before: {' '.join(f.read().split()[:3])}")
    with tempfile.TemporaryDirectory(prefix="long-line-") as tmp:
        source = Path(tmp) / "long.csv"
        write_file(source, args.digits)
        print(f"{source.stat().st_size:,} bytes; line 4 holds {args.digits + 8:,} bytes")
        commands = {
            "predict": [linreg, "predict", str(MODEL), str(source), "-o", f"{tmp}/out.csv"],
            "train": [linreg, "train", "--data", str(source), "--target", "dist_mainland"],
        }
        codes = [("baseline", args.baseline)] if args.baseline else []
        codes.append(("this checkout", str(ROOT)))
        print(f"| code | command | exit | wall s | peak RSS MiB | message |\n|{'---|' * 6}")
        for _ in range(args.repeats):
            for label, path in codes:
                for name, cmd in commands.items():
                    extra = limit if label == "this checkout" else []
                    code, wall, rss, message = run(cmd + extra, path)
                    shown = message.replace(tmp, "$TMP")[:160]
                    print(f"| {label} | {name} | {code} | {wall:.1f} | {rss:,.0f} | {shown} |")
    with open("/proc/loadavg") as f:
        print(f"load after: {' '.join(f.read().split()[:3])}")


if __name__ == "__main__":
    main()
