#!/usr/bin/env bash
# Install Tandem into ./.venv (idempotent; safe to run again).
#   - Debian packages for headless MuJoCo rendering (EGL, OSMesa fallback), when run as root with apt.
#   - torch pinned to 2.13.0 (constraints/cpu.txt) so pip takes the CPU build on our machines.
#     On a GPU box, install the CUDA build of torch into .venv first (see README); the pin then only
#     applies if you keep constraints/cpu.txt — set TANDEM_TORCH_CONSTRAINTS= to skip it.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(libegl1 libegl-mesa0 libgl1-mesa-dri libosmesa6)
# Optional: the monitoring/deployment tools the tests run for real (a real Prometheus scraping a run,
# `docker-compose config` on docker-compose.yml). Failing to get them only skips those tests.
# TANDEM_APT_OPTIONAL=0 skips them.
APT_OPTIONAL=(prometheus docker-compose)
apt_missing() {
  local pkg
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || echo "$pkg"; done
}
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  mapfile -t missing < <(apt_missing "${APT_PACKAGES[@]}")
  optional=()
  if [ "${TANDEM_APT_OPTIONAL:-1}" != 0 ]; then mapfile -t optional < <(apt_missing "${APT_OPTIONAL[@]}"); fi
  if [ ${#missing[@]} -gt 0 ] || [ ${#optional[@]} -gt 0 ]; then
    apt-get update -qq || [ ${#missing[@]} -eq 0 ]  # only a required package makes a failed update fatal
  fi
  if [ ${#missing[@]} -gt 0 ]; then
    echo "[install] apt: ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  for pkg in "${optional[@]}"; do  # one at a time, so one unavailable package does not block the others
    echo "[install] apt (optional): $pkg"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null \
      || echo "[install] warning: could not install $pkg; the tests that need it will be skipped"
  done
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "[install] creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
CONSTRAINTS=${TANDEM_TORCH_CONSTRAINTS-constraints/cpu.txt}
echo "[install] pip install -e .[dev] ${CONSTRAINTS:+(constraints: $CONSTRAINTS)}"
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q ${CONSTRAINTS:+-c "$CONSTRAINTS"} -e ".[dev]"
echo "[install] done: $(.venv/bin/python -c 'import torch, mujoco; print("torch", torch.__version__, "| mujoco", mujoco.__version__)')"

# ---- Optional: robot SDKs for the go2/g1 (Unitree) and franka drivers and their CI peers ----
# scripts/install_robot_sdks.sh (~1 min: apt cyclonedds-dev, a 10 s CycloneDDS build, franky + franky-sim).
# TANDEM_ROBOT_SDKS=0 skips it; a failure only warns, and the driver tests then skip naming what is missing.
if [ "${TANDEM_ROBOT_SDKS:-1}" != 0 ]; then
  bash scripts/install_robot_sdks.sh || echo "[install] warning: robot SDKs not installed; go2/g1/franka driver tests will skip"
fi
