#!/usr/bin/env bash
# The test command: set up, lint and format check (ruff), type check (mypy), the import
# rules (lint-imports), then the pytest suite (CPU only, offline). Arguments go to pytest:
#   bash scripts/test.sh --fast        the day-to-day subset: no test that starts a
#                                      process, a server, a browser or a cluster
#   bash scripts/test.sh -m slow       only those
#   bash scripts/test.sh tests/inference -k parquet
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/lint-imports --no-cache
args=()
for arg in "$@"; do
    if [ "$arg" = "--fast" ]; then args+=(-m "not slow"); else args+=("$arg"); fi
done
.venv/bin/python -m pytest ${args[@]+"${args[@]}"}
