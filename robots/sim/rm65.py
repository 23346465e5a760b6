"""`rm65_sim`: the MuJoCo twin of the RealMan RM65-B used in the paper's push-cube task.

The RM65-B is the base model, without a gripper: the paper pushes the cube with a tool on the flange,
so the action (physical units, 10 Hz) is the tool-tip Cartesian velocity (vx, vy, vz) in m/s, each
within +-0.10 m/s, inside the smaller workspace of a 610 mm-reach arm. Bounds and workspace are
`RM65_LIMITS` in robots/arm_limits.py, shared with the real driver. No RM65 model ships offline, so the
twin is the Cartesian tool model built in code (see arm_scene.py).
"""

from __future__ import annotations

from robots.arm_limits import RM65_LIMITS
from robots.base import ROBOTS
from robots.sim import push_cube  # noqa: F401  (registers the push_cube task and expert)
from robots.sim.arm_twin import ArmSim, make_arm_spec


def make_rm65_spec(observation: str = "state", image_size: int = 64, task: str = "push_cube"):
    """The RM65 twin's spec for one observation mode."""
    return make_arm_spec("rm65_sim", RM65_LIMITS, observation, image_size, task)


@ROBOTS.register("rm65_sim")
def make_rm65_sim(**options) -> ArmSim:
    """Build the RM65 twin; options as for `ArmSim` (observation, image_size, task, seed, task options)."""
    return ArmSim("rm65_sim", RM65_LIMITS, **options)
