#!/usr/bin/env bash
# Robot SDKs for the go2/g1 (Unitree) and franka drivers, and the franka driver's CI peer, into ./.venv.
# Run by scripts/install.sh after the base install (TANDEM_ROBOT_SDKS=0 skips it there). Idempotent.
#   Unitree: CycloneDDS 0.10.2 -- the robots' DDS version; 0.10.x and 11.x exchange no traffic at all --
#            built against Debian's cyclonedds-dev (0.10.2 has no cp311 wheel), then the SDK
#            unitree-sdk2py-dimos with --no-deps (its opencv-python would clobber opencv-python-headless;
#            the official unitree-sdk2 wheel does not import).
#   Franka:  franky-control (bundles libfranka) + franky-sim (MuJoCo Franka on the libfranka protocol).
#   RealSense: pyrealsense2 (needs libusb-1.0-0 from apt); its CI peer is rs.software_device.
# TANDEM_ROBOT_SDKS_ONLY=unitree|franka|realsense installs just one of them. Pins: the same as pyproject's extras
# unitree / franka-sim (installed by name here, so the project itself is not reinstalled).
set -euo pipefail
cd "$(dirname "$0")/.."
PIP=(.venv/bin/python -m pip install -q)
CONSTRAINTS=${TANDEM_TORCH_CONSTRAINTS-constraints/cpu.txt}
ONLY=${TANDEM_ROBOT_SDKS_ONLY:-}

have() { .venv/bin/python -c "$1" >/dev/null 2>&1; }

if [ -z "$ONLY" ] || [ "$ONLY" = unitree ]; then
  if have 'import cyclonedds, unitree_sdk2py.core.channel; from importlib.metadata import version; assert version("cyclonedds") == "0.10.2"'; then
    echo "[install] unitree SDK: present"
  else
    echo "[install] unitree SDK: cyclonedds 0.10.2 (built against Debian's cyclonedds-dev) + unitree-sdk2py-dimos"
    if ! dpkg -s cyclonedds-dev >/dev/null 2>&1; then
      [ "$(id -u)" = 0 ] || { echo "[install] need root for: apt-get install cyclonedds-dev" >&2; exit 1; }
      apt-get update -qq || true
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends cyclonedds-dev >/dev/null
    fi
    # cyclonedds' build looks for $CYCLONEDDS_HOME/{include,lib,bin}; Debian splits them, so point a shim at them.
    libdir=$(dirname "$(dpkg -L libddsc0debian cyclonedds-dev | grep -m1 '/libddsc\.so$')")
    home=.venv/cyclonedds_home
    mkdir -p "$home"
    ln -sfn /usr/include "$home/include" && ln -sfn /usr/bin "$home/bin" && ln -sfn "$libdir" "$home/lib"
    CYCLONEDDS_HOME="$PWD/$home" "${PIP[@]}" ${CONSTRAINTS:+-c "$CONSTRAINTS"} "cyclonedds==0.10.2"
    "${PIP[@]}" --no-deps "unitree-sdk2py-dimos==1.0.3"
  fi
fi

if [ -z "$ONLY" ] || [ "$ONLY" = franka ]; then
  if have 'import franky, franky_sim'; then
    echo "[install] franky + franky-sim: present"
  else
    echo "[install] franky-control + franky-sim"
    "${PIP[@]}" ${CONSTRAINTS:+-c "$CONSTRAINTS"} "franky-control==2.0.0" "franky-sim==1.0.4"
  fi
fi

if [ -z "$ONLY" ] || [ "$ONLY" = realsense ]; then
  if have 'import pyrealsense2'; then
    echo "[install] pyrealsense2: present"
  else
    echo "[install] pyrealsense2 (+ apt libusb-1.0-0)"
    if ! dpkg -s libusb-1.0-0 >/dev/null 2>&1; then
      [ "$(id -u)" = 0 ] || { echo "[install] need root for: apt-get install libusb-1.0-0" >&2; exit 1; }
      apt-get update -qq || true
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libusb-1.0-0 >/dev/null
    fi
    "${PIP[@]}" ${CONSTRAINTS:+-c "$CONSTRAINTS"} "pyrealsense2>=2.55"
  fi
fi
