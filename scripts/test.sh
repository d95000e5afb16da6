#!/usr/bin/env bash
# The test command: set up, lint and format check (ruff), type check (mypy on the
# inference package), then the pytest suite (CPU only, offline).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
