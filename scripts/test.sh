#!/usr/bin/env bash
# The test command: set up, lint and format check (ruff), type check (mypy), the import
# rules (lint-imports), the docs site (mkdocs build --strict, offline, into a temporary
# directory), then the pytest suite (CPU only, offline; tests/docs runs the docs' code
# blocks). Arguments go to pytest:
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
site_dir=$(mktemp -d)
NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict --quiet --site-dir "$site_dir"
rm -rf "$site_dir"
args=()
for arg in "$@"; do
    if [ "$arg" = "--fast" ]; then args+=(-m "not slow"); else args+=("$arg"); fi
done
.venv/bin/python -m pytest ${args[@]+"${args[@]}"}
