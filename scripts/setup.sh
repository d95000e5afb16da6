#!/usr/bin/env bash
# Create .venv and install the project with every extra the jobs and tests use.
# torch is installed first, pinned to the CPU build (torch==2.13.0); pyproject.toml's
# range (<=2.13.0) is then already satisfied, so pip never pulls a CUDA build.
# GPU users: see "Using a GPU" in the README.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1
.venv/bin/python -m pip install --quiet "torch==2.13.0"
.venv/bin/python -m pip install --quiet -e ".[cpu,training,tables,dask,bench,dev,serve,serve-test,docs,spark,mlflow,signing,signing-test]"
# The project's bytecode, as pip writes it for an installed package: an editable
# install leaves it to the first import, which never writes it where
# PYTHONDONTWRITEBYTECODE is set (each command would compile the modules again).
.venv/bin/python -m compileall -q inference training > /dev/null
