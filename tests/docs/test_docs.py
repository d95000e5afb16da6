"""Docs are tests: every code block of the README and the docs site runs, as written.

The blocks and their kinds are described in :mod:`tests.docs.blocks`; each page runs in
a scratch directory (:mod:`tests.docs.runner`). ``python -m tests.docs --list`` lists
every block; ``python -m tests.docs --update PAGE`` rewrites the output blocks that no
longer match with what the commands print now.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs.blocks import ROOT, Block, all_blocks, output_matches, pages, parse, problems
from tests.docs.runner import run_page

RUNNABLE_PAGES = [p for p in pages() if any(b.kind == "run" for b in parse(p))]


def test_every_block_runs_or_says_why_not() -> None:
    blocks = all_blocks()
    assert blocks, "no code blocks found"
    assert not problems(blocks), "\n".join(problems(blocks))


def test_the_checks_catch_an_unmarked_block_and_an_orphan_output(tmp_path: Path) -> None:
    page = tmp_path / "docs" / "page.md"
    page.parent.mkdir()
    page.write_text(
        "```text\nnot code, not marked\n```\n\n"
        '```text title="output"\nan output after nothing\n```\n\n'
        "<!-- not-run: -->\n```bash\nlinreg\n```\n\n"
        "<!-- not-run: needs a GPU -->\n```bash\nnvidia-smi\n```\n",
        encoding="utf-8",
    )
    found = problems(parse(page, tmp_path))
    assert [item.split(":", 2)[1] for item in found] == ["1", "5", "10"], found
    assert parse(page, tmp_path)[3].not_run == "needs a GPU"


@pytest.mark.parametrize(
    ("expected", "actual", "matches"),
    [
        ("a\nb\n", "a\nb  \n\n", True),
        ("a\nb\n", "a\nc\n", False),
        ("scored 22 rows in ... s\n", "scored 22 rows in 0.0 s\n", True),
        ("scored 22 rows in ... s\n", "scored 23 rows in 0.0 s\n", False),
        ("first\n...\nlast\n", "first\nx\ny\nlast\n", True),
        ("first\n...\nlast\n", "first\nlast\n", True),
        ("first\n...\nlast\n", "first\nx\n", False),
        ("a...\n", "a\nb\n", False),
        # long decimals match to NUMBER_RTOL (their last digits depend on the CPU)
        ("lower 1.4412071772451873\n", "lower 1.4412071772451862\n", True),
        ("lower 1.4412071772451873\n", "lower 1.4412171772451862\n", False),
        ("x 2.5, y 1.32.0\n", "x 2.6, y 1.32.0\n", False),
    ],
)
def test_output_matching(expected: str, actual: str, matches: bool) -> None:
    assert output_matches(expected, actual) is matches


def _check(results: list) -> None:
    failures = []
    for result in results:
        if result.error:
            failures.append(
                f"{result.block.where} failed: {result.error}\n--- output ---\n{result.output}"
            )
        elif result.mismatch:
            failures.append(
                f"{result.block.where}: the output differs from the block at "
                f"{result.expected.where}\n--- shown ---\n{result.expected.text}"
                f"--- printed ---\n{result.output}"
            )
    assert not failures, "\n\n".join(failures)


@pytest.mark.slow
@pytest.mark.parametrize("page", RUNNABLE_PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_page_runs_as_written(page: Path, tmp_path: Path) -> None:
    blocks: list[Block] = parse(page)
    results = run_page(blocks, tmp_path)
    _check(results)
    ran = sum(1 for b in blocks if b.kind == "run")
    assert len(results) == ran, f"{len(results)} of {ran} run blocks ran"


def test_the_examples_tables_are_what_their_script_writes(tmp_path: Path) -> None:
    script = ROOT / "docs" / "data" / "make_data.py"
    subprocess.run([sys.executable, str(script), str(tmp_path)], check=True)
    for name in ("islands.csv", "islands_bad.csv"):
        assert (tmp_path / name).read_bytes() == (ROOT / "docs/data" / name).read_bytes(), name
