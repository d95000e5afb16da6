"""Run one page's blocks as a reader would, in order, in a scratch directory.

The scratch directory holds copies of what the examples use, at the paths they have
in a checkout: ``exported_models/`` and ``docs/data/`` (not ``training/``: a partial
copy there would stand in for the installed package when Python looks in the current
directory; the examples use the bundled tables by name),
and ``.venv`` (a link to the environment running the tests, so that
``source .venv/bin/activate`` and ``.venv/bin/linreg`` work as written). Nothing an
example writes reaches the checkout.

``python`` blocks run in one interpreter per page (:mod:`tests.docs.driver`);
``bash`` blocks in ``bash -e -o pipefail`` with the environment's ``bin`` first on
``PATH``, in a process group of their own that is ended afterwards (a server a block
started in the background never outlives it).
"""

from __future__ import annotations

import contextlib
import json
import os
import py_compile
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.docs.blocks import ROOT, Block, output_matches

#: what the examples read, copied into each page's scratch directory
FIXTURES = ("exported_models", "docs/data")
#: seconds one block may take
BLOCK_TIMEOUT = 300


@dataclass
class Result:
    """A run block, what it printed, and the failure if any."""

    block: Block
    output: str
    error: str | None  # why it failed (exit status, traceback, timeout), or None
    expected: Block | None = None  # the output block after it, if any

    @property
    def mismatch(self) -> bool:
        return self.expected is not None and not output_matches(self.expected.text, self.output)


def prepare(workdir: Path) -> None:
    """Copy the bundled models and data into ``workdir`` and link the environment."""
    for name in FIXTURES:
        source = ROOT / name
        if source.exists():
            shutil.copytree(source, workdir / name, ignore=shutil.ignore_patterns("__pycache__"))
    (workdir / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["COLUMNS"] = "80"  # argparse's help and summaries wrap the same everywhere
    env["PYTHONUNBUFFERED"] = "1"
    for name in ("LINREG_SERVE_TOKEN", "PYTHONPATH", "LINREG_NO_NATIVE"):
        env.pop(name, None)
    return env


def run_page(blocks: list[Block], workdir: Path) -> list[Result]:
    """Run every block of one page in order; stop at the first failure."""
    prepare(workdir)
    env = environment()
    results: list[Result] = []
    driver: subprocess.Popen[str] | None = None
    try:
        for block in blocks:
            if block.kind == "output" and results:
                results[-1].expected = block
            elif block.kind == "file":
                write_file(block, workdir)
            elif block.kind == "run":
                if block.language in ("python", "py"):
                    driver = driver or start_driver(workdir, env)
                    result = run_python(driver, block)
                else:
                    result = run_bash(block, workdir, env)
                results.append(result)
                if result.error:
                    break
    finally:
        if driver is not None:
            driver.stdin.close()  # type: ignore[union-attr]
            try:
                driver.wait(timeout=60)
            except subprocess.TimeoutExpired:
                driver.kill()
    return results


def write_file(block: Block, workdir: Path) -> None:
    path = workdir / str(block.title)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(block.text, encoding="utf-8")
    if block.language in ("python", "py"):
        py_compile.compile(str(path), doraise=True)


def start_driver(workdir: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("driver.py"))],
        cwd=workdir,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def run_python(driver: subprocess.Popen[str], block: Block) -> Result:
    request = {"code": block.text, "page": block.page, "line": block.line}
    driver.stdin.write(json.dumps(request) + "\n")  # type: ignore[union-attr]
    driver.stdin.flush()  # type: ignore[union-attr]
    answer = driver.stdout.readline()  # type: ignore[union-attr]
    if not answer:
        return Result(block, "", f"the Python interpreter exited (status {driver.wait()})")
    reply = json.loads(answer)
    return Result(block, reply["output"], reply["error"])


def run_bash(block: Block, workdir: Path, env: dict[str, str]) -> Result:
    process = subprocess.Popen(
        ["bash", "--noprofile", "--norc", "-e", "-o", "pipefail", "-c", block.text],
        cwd=workdir,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    error = None
    try:
        output, _ = process.communicate(timeout=BLOCK_TIMEOUT)
    except subprocess.TimeoutExpired:
        _end_group(process.pid)
        output, _ = process.communicate()
        error = f"timed out after {BLOCK_TIMEOUT} s"
    _end_group(process.pid)
    if error is None and process.returncode != 0:
        error = f"exit status {process.returncode}"
    return Result(block, output.decode("utf-8", errors="replace"), error)


def _end_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGTERM)
