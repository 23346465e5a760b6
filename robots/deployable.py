"""Deployable observations: exactly what a real robot senses, reproduced by its MuJoCo twin.

A twin's "state" mode observes privileged scene state (ball, boxes, cube) that no real robot senses, so a
policy trained on it cannot run on hardware. `-o observation=deploy` gives twin and driver the same
observation, built from the definitions in this module (so the two cannot drift):

  {"image":   uint8[S, S, 1]  the single-view grayscale camera image (the twin's camera; the driver's
                              `-o camera=SOURCE`, grayscale and resized to S x S),
   "proprio": float32[P]      the robot's proprioceptive fields below, normalised to order 1 and clipped
                              to +-3, named in the spec (`ArraySpec.fields`, covered by the spec hash)}

  limo    v, w: measured forward speed / 0.5 m/s and yaw rate / 1.5 rad/s (the action bounds);
          sin_yaw, cos_yaw: of the heading (real: the base's IMU yaw; twin: the base joint's yaw).
  go2     vx, vy, yaw_rate: measured body-frame velocity (m/s, m/s, rad/s) / the largest magnitude
          GO2_LIMITS allows on that axis; sin_yaw, cos_yaw of the heading (real: rt/sportmodestate).
  g1      yaw_rate: body z angular rate (real: the IMU gyroscope in rt/lowstate) / G1_LIMITS' yaw bound;
          sin_yaw, cos_yaw (IMU yaw); command_vx, command_vy, command_yaw_rate: the velocity command in
          force (zero after a stop) / the G1_LIMITS bounds. rt/lowstate carries no base velocity, so the
          command stands in for it.
  franka  x, y, z: tool-tip position in the base frame, scaled to [-1, 1] over the workspace box of
          FRANKA_LIMITS; vx, vy, vz: measured tool velocity / max_speed; gripper_width: finger opening /
          gripper_max_width.
  rm65    x, y, z: tool-tip position scaled to [-1, 1] over RM65_LIMITS' workspace; command_vx,
          command_vy, command_vz: the velocity last commanded (after the workspace hold) / max_speed.

Fields a twin cannot reproduce (roll/pitch and body height of its planar legged base, the G1's 29 joint
angles, odometry positions whose origin is wherever the robot booted) are left out on purpose: a policy
must not learn from a value that is constant in simulation and moving on hardware.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from common.specs import ArraySpec, ImageSpec
from common.types import Observation
from robots.arm_limits import ArmLimits
from robots.legged_limits import VelocityLimits

DEPLOY = "deploy"  # the observation mode's name, on twins and drivers alike
IMAGE_KEY, PROPRIO_KEY = "image", "proprio"
PROPRIO_CLIP = 3.0

PROPRIO_FIELDS: dict[str, tuple[str, ...]] = {
    "limo": ("v", "w", "sin_yaw", "cos_yaw"),
    "go2": ("vx", "vy", "yaw_rate", "sin_yaw", "cos_yaw"),
    "g1": ("yaw_rate", "sin_yaw", "cos_yaw", "command_vx", "command_vy", "command_yaw_rate"),
    "franka": ("x", "y", "z", "vx", "vy", "vz", "gripper_width"),
    "rm65": ("x", "y", "z", "command_vx", "command_vy", "command_vz"),
}


def deploy_observation_specs(robot: str, image_size: int) -> dict[str, ArraySpec]:
    """The deployable observation specs of real robot `robot` ("limo", "go2", ...; a twin passes its real
    robot's name): the camera image and the named proprioceptive vector."""
    fields = PROPRIO_FIELDS[robot]
    return {IMAGE_KEY: ImageSpec(IMAGE_KEY, (image_size, image_size, 1)),
            PROPRIO_KEY: ArraySpec(PROPRIO_KEY, (len(fields),), "float32", fields=fields)}


def deploy_observation(image: np.ndarray, proprio: Sequence[float]) -> Observation:
    """A deployable observation from a camera image and the (already normalised) proprioceptive values."""
    values = np.clip(np.asarray(proprio, dtype=np.float64), -PROPRIO_CLIP, PROPRIO_CLIP)
    return {IMAGE_KEY: image, PROPRIO_KEY: values.astype(np.float32)}


def heading(yaw: float) -> list[float]:
    """(sin, cos) of a heading in radians: continuous across +-pi, unlike the angle."""
    return [math.sin(yaw), math.cos(yaw)]


def limo_proprio(v: float, w: float, yaw: float, max_v: float, max_w: float) -> list[float]:
    """LIMO: measured (v, w) over the action bounds, then the heading."""
    return [v / max_v, w / max_w, *heading(yaw)]


def velocity_scales(limits: VelocityLimits) -> np.ndarray:
    """The largest magnitude each of (vx, vy, yaw_rate) may have: what legged velocities are divided by."""
    return np.array([max(abs(low), abs(high)) for low, high in (limits.vx, limits.vy, limits.yaw_rate)])


def go2_proprio(limits: VelocityLimits, body_velocity: Sequence[float], yaw: float) -> list[float]:
    """Go2: measured body-frame (vx, vy, yaw_rate) over the envelope's scales, then the heading."""
    return [*(np.asarray(body_velocity, dtype=np.float64) / velocity_scales(limits)), *heading(yaw)]


def g1_proprio(limits: VelocityLimits, yaw_rate: float, yaw: float, command: Sequence[float]) -> list[float]:
    """G1: measured yaw rate over its scale, the heading, then the command in force over the scales."""
    scales = velocity_scales(limits)
    return [yaw_rate / scales[2], *heading(yaw), *(np.asarray(command, dtype=np.float64) / scales)]


def workspace_position(limits: ArmLimits, position: Sequence[float]) -> np.ndarray:
    """A tool-tip position in metres scaled to [-1, 1] over the arm's safety workspace box."""
    return (np.asarray(position, dtype=np.float64) - limits.workspace_center) / limits.workspace_half_size


def franka_proprio(limits: ArmLimits, position, velocity, gripper_width: float) -> list[float]:
    """Franka: scaled tool position, measured tool velocity / max_speed, finger opening / its maximum."""
    velocity = np.asarray(velocity, dtype=np.float64) / limits.max_speed
    return [*workspace_position(limits, position), *velocity, gripper_width / limits.gripper_max_width]


def rm65_proprio(limits: ArmLimits, position, commanded_velocity) -> list[float]:
    """RM65: scaled tool position, then the last commanded velocity / max_speed."""
    return [*workspace_position(limits, position), *(np.asarray(commanded_velocity, np.float64) / limits.max_speed)]
