"""The shape of the code base, kept as the layout issue set it (see docs/design/layout.md):
small modules and functions, a short top level in ``training/``, the rules on imports
(``lint-imports``, run by scripts/test.sh) and a README that stays a front page."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("inference", "training", "linreg")


def _modules() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_modules_and_functions_stay_small(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    assert len(source.splitlines()) <= 500, f"{path}: over 500 lines"
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            assert length <= 80, f"{path}:{node.lineno}: {node.name} is {length} lines"


def test_training_keeps_at_most_twelve_top_level_modules() -> None:
    top = sorted(p.name for p in (ROOT / "training").glob("*.py"))
    assert len(top) <= 12, top


def test_readme_is_a_front_page() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines"
