"""`franka_sim`: the MuJoCo twin of the Franka FR3 with the Franka Hand, for the push-cube task.

Action (physical units, 10 Hz): tool-tip Cartesian velocity (vx, vy, vz) in m/s, each within
+-0.15 m/s, plus the finger opening rate in m/s within +-0.05 m/s (opening 0..80 mm); the workspace box
and these bounds are `FRANKA_LIMITS` in robots/arm_limits.py, shared with the real driver. The model is
a Cartesian tool twin built in code (see arm_scene.py), not the FR3 meshes: the policy acts on tool
velocity, and primitive geometry keeps the wrist camera cheap to render on a CPU.
"""

from __future__ import annotations

from robots.arm_limits import FRANKA_LIMITS
from robots.base import ROBOTS
from robots.sim import push_cube  # noqa: F401  (registers the push_cube task and expert)
from robots.sim.arm_twin import ArmSim, make_arm_spec


def make_franka_spec(observation: str = "state", image_size: int = 64, task: str = "push_cube"):
    """The Franka twin's spec for one observation mode."""
    return make_arm_spec("franka_sim", FRANKA_LIMITS, observation, image_size, task)


@ROBOTS.register("franka_sim")
def make_franka_sim(**options) -> ArmSim:
    """Build the Franka twin; options as for `ArmSim` (observation, image_size, task, seed, task options)."""
    return ArmSim("franka_sim", FRANKA_LIMITS, **options)
