"""``python -m tests.docs``: list the documentation's blocks, or run pages.

python -m tests.docs --list                 every block, its kind and reason
python -m tests.docs README.md docs/guide/batch.md      run these pages
python -m tests.docs --update docs/guide/batch.md       ... and rewrite the output
                                            blocks that no longer match
"""

from __future__ import annotations

import argparse
import re
import tempfile
from collections import Counter
from pathlib import Path

from tests.docs.blocks import ROOT, Block, all_blocks, parse
from tests.docs.runner import Result, run_page


def list_blocks() -> None:
    blocks = all_blocks()
    for block in blocks:
        reason = f"  ({block.not_run})" if block.not_run else ""
        print(f"{block.where:40} {block.language or '-':8} {block.kind}{reason}")
    counts = Counter(block.kind for block in blocks)
    print(", ".join(f"{n} {kind}" for kind, n in sorted(counts.items())))


#: what changes from run to run in the commands' output, written as ``...`` by --update
VOLATILE = [
    (
        re.compile(r"scored (\d+) rows in \d+\.\d+ s \([\d,]+ rows/s\)"),
        r"scored \1 rows in ... s (... rows/s)",
    ),
    (re.compile(r"refinement steps, \d+\.\d+ s$", re.M), "refinement steps, ... s"),
    (re.compile(r"created \d{4}-\d\d-\d\dT[\d:]+Z"), "created ..."),
    (re.compile(r"/tmp/[^/\s]+/"), ".../"),
]


def generalize(output: str) -> str:
    for pattern, replacement in VOLATILE:
        output = pattern.sub(replacement, output)
    return output


def update(page: Path, results: list[Result]) -> int:
    """Rewrite the output blocks of ``page`` that do not match; how many were rewritten."""
    lines = page.read_text(encoding="utf-8").splitlines()
    stale = [r for r in results if r.mismatch and r.expected is not None]
    for result in sorted(stale, key=lambda r: -r.expected.line):  # type: ignore[union-attr]
        block: Block = result.expected  # type: ignore[assignment]
        printed = [line.rstrip() for line in generalize(result.output).rstrip().split("\n")]
        new = [block.indent + line if line else "" for line in printed]
        lines[block.line : block.end - 1] = new
    page.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(stale)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.docs")
    parser.add_argument("pages", nargs="*", type=Path)
    parser.add_argument("--list", action="store_true", help="list every block and stop")
    parser.add_argument("--update", action="store_true", help="rewrite stale output blocks")
    args = parser.parse_args()
    if args.list:
        list_blocks()
        return 0
    status = 0
    for page in args.pages:
        page = page.resolve()
        with tempfile.TemporaryDirectory() as workdir:
            results = run_page(parse(page), Path(workdir))
        for result in results:
            state = "FAILED" if result.error else "differs" if result.mismatch else "ok"
            print(f"{result.block.where:40} {state}")
            if result.error or result.mismatch:
                status = 1
                print(result.error or "", result.output, sep="\n")
        if args.update:
            print(f"{page.relative_to(ROOT)}: {update(page, results)} output block(s) rewritten")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
