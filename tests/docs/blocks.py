"""The fenced code blocks of the documentation, and what the docs tests do with each.

Every fenced block of ``README.md``, ``CONTRIBUTING.md``, ``SECURITY.md``,
``CHANGELOG.md`` and ``docs/**/*.md`` is one of:

- **run**: a ``python`` block (executed, in order, in one interpreter per page) or a
  ``bash`` block (executed by ``bash -e -o pipefail`` with the virtual environment's
  ``bin`` first on ``PATH``), in a scratch directory holding copies of the bundled
  models and data (see :mod:`tests.docs.runner`);
- **output**: a block whose info string has ``title="output"``: the output of the run
  block just before it, compared with what that block really printed (stdout and
  stderr together; ``...`` stands for any text within a line, and a line of ``...``
  alone for any number of lines);
- **file**: a block whose info string has another ``title="NAME"``: written to
  ``NAME`` in the scratch directory before the blocks after it run (a ``python``
  file is also compiled);
- **not run**: a block right after an HTML comment ``<!-- not-run: REASON -->``; the
  reason is required (a GPU, a cluster, a remote scheduler, the package index, a
  measurement of minutes, or a block that is not code at all).

A block that is none of these fails
:func:`tests.docs.test_docs.test_every_block_runs_or_says_why_not`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: the files whose blocks are checked: the front page, the root documents and the site
ROOT_PAGES = ("README.md", "CONTRIBUTING.md", "SECURITY.md", "CHANGELOG.md")

RUN_LANGUAGES = {"python": "python", "py": "python", "bash": "bash", "sh": "bash"}

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_NOT_RUN = re.compile(r"^\s*<!--\s*not-run:(?P<reason>.*?)-->\s*$")
_TITLE = re.compile(r"""title=(?:"(?P<dq>[^"]*)"|'(?P<sq>[^']*)')""")


@dataclass
class Block:
    """One fenced block: where it is, its info string and text, and its kind."""

    page: str  # path relative to the checkout, e.g. "docs/guide/batch.md"
    line: int  # 1-based line of the opening fence
    end: int  # 1-based line of the closing fence
    indent: str  # the fence's indentation (blocks inside list items)
    info: str
    text: str  # the block's content, dedented, with a final newline
    not_run: str | None  # the reason given by <!-- not-run: ... -->, or None

    @property
    def language(self) -> str:
        first = self.info.strip().split(" ", 1)[0].strip("{}.")
        return first.lower()

    @property
    def title(self) -> str | None:
        match = _TITLE.search(self.info)
        if match is None:
            return None
        return match.group("dq") if match.group("dq") is not None else match.group("sq")

    @property
    def kind(self) -> str:
        """``run``, ``output``, ``file``, ``not-run`` or ``unclassified``."""
        if self.not_run is not None:
            return "not-run"
        if self.title == "output":
            return "output"
        if self.title:
            return "file"
        if self.language in RUN_LANGUAGES:
            return "run"
        return "unclassified"

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def pages(root: Path = ROOT) -> list[Path]:
    """Every Markdown page whose blocks the docs tests check, in a stable order."""
    found = [root / name for name in ROOT_PAGES if (root / name).exists()]
    return found + sorted((root / "docs").rglob("*.md"))


def parse(path: Path, root: Path = ROOT) -> list[Block]:
    """The fenced blocks of one Markdown file, in order."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        indent, fence = opening.group("indent"), opening.group("fence")
        j = i + 1
        closing = re.compile(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$")
        while j < len(lines) and not closing.match(lines[j]):
            j += 1
        inner = lines[i + 1 : j]
        body = [line[len(indent) :] if line.startswith(indent) else line for line in inner]
        marker = _NOT_RUN.match(lines[i - 1]) if i > 0 else None
        reason = marker.group("reason").strip() if marker else None
        blocks.append(
            Block(
                page=path.relative_to(root).as_posix(),
                line=i + 1,
                end=j + 1,
                indent=indent,
                info=opening.group("info").strip(),
                text="\n".join(body) + "\n" if body else "",
                not_run=reason,
            )
        )
        i = j + 1
    return blocks


def all_blocks(root: Path = ROOT) -> list[Block]:
    return [block for page in pages(root) for block in parse(page, root)]


def problems(blocks: list[Block]) -> list[str]:
    """What is wrong with the blocks' classification: each item names the block."""
    found = []
    previous: Block | None = None
    for block in blocks:
        if block.kind == "unclassified":
            found.append(
                f"{block.where}: a ```{block.language or '(no language)'} block that neither "
                "runs (python, bash), nor is an output or a file (title=...), nor says why "
                "not (<!-- not-run: REASON --> on the line before)"
            )
        elif block.kind == "not-run" and not block.not_run:
            found.append(f"{block.where}: <!-- not-run: --> without a reason")
        elif block.kind == "output" and (
            previous is None or previous.page != block.page or previous.kind != "run"
        ):
            found.append(f"{block.where}: an output block that does not follow a run block")
        previous = block
    return found


def output_matches(expected: str, actual: str) -> bool:
    """``actual`` equals ``expected`` up to trailing spaces and blank edges, where ``...``
    in ``expected`` stands for any text within a line, and a line of ``...`` for any
    number of whole lines. A decimal number of 7 or more significant digits in
    ``expected`` matches one within :data:`NUMBER_RTOL` of it: the last digits of a
    float depend on the CPU's vector kernels (AVX2 or AVX-512) and on BLAS."""
    text = _normalize(actual)
    pattern, numbers = _pattern(expected)
    found = re.fullmatch(pattern, text + "\n" if text else "")
    if found is None:
        return False
    return all(
        math.isclose(float(got), want, rel_tol=NUMBER_RTOL, abs_tol=NUMBER_RTOL)
        for got, want in zip(found.groups(), numbers, strict=True)
    )


#: how close a long decimal of an output must be to the one written in the docs
NUMBER_RTOL = 1e-6
_LONG_NUMBER = re.compile(r"[-+]?\d+\.\d+(?:e[-+]?\d+)?")
_ANY_NUMBER = r"([-+]?\d+\.\d+(?:e[-+]?\d+)?)"


def _significant(number: str) -> int:
    mantissa = number.lstrip("+-").split("e")[0].replace(".", "").lstrip("0")
    return len(mantissa)


def _escape(piece: str, numbers: list[float]) -> str:
    """``piece`` as a regex, each long decimal a capture of any decimal (its value kept)."""
    out, at = [], 0
    for match in _LONG_NUMBER.finditer(piece):
        if _significant(match.group()) < 7:
            continue
        out.append(re.escape(piece[at : match.start()]) + _ANY_NUMBER)
        numbers.append(float(match.group()))
        at = match.end()
    out.append(re.escape(piece[at:]))
    return "".join(out)


def _normalize(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines()).strip("\n")


def _pattern(expected: str) -> tuple[str, list[float]]:
    text = _normalize(expected)
    numbers: list[float] = []
    if not text:
        return "", numbers
    parts = []
    for line in text.split("\n"):
        if line.strip() == "...":
            parts.append(r"(?:[^\n]*\n)*?")
            continue
        pieces = [_escape(piece, numbers) for piece in line.split("...")]
        parts.append("[^\n]*".join(pieces) + "\n")
    return "".join(parts), numbers
