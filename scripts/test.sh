#!/usr/bin/env bash
# Install everything, then run the whole test suite (pytest's "no tests collected" fails like any error).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
export MUJOCO_GL=${MUJOCO_GL:-egl} TORCHINDUCTOR_COMPILE_THREADS=1
# Lint first: a ruff finding (rules in pyproject.toml [tool.ruff]) fails CI before the tests run.
.venv/bin/ruff check .
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
