#!/usr/bin/env bash
# Install everything, then run the whole test suite (pytest's "no tests collected" fails like any error).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
export MUJOCO_GL=${MUJOCO_GL:-egl} TORCHINDUCTOR_COMPILE_THREADS=1
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
