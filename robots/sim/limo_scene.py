"""The LIMO ball-to-goal scene: geometry constants, the MJCF model, and the layout/state records.

Base model (what we chose and why): the LIMO body has three joints, slide x, slide y and hinge yaw, each
driven by a MuJoCo `velocity` actuator (force = kv * (target - velocity)). With kv = mass / tau this is a
first-order velocity tracker with time constant tau = 0.1 s, like the real base's motor controllers,
while still producing real contact forces on the ball and the obstacle. The twin turns the (v, w)
command into world-frame targets every physics step, with zero lateral velocity, which is what makes
the base differential-drive (non-holonomic). The body has no z/roll/pitch freedom, so it never tips
and is kept out of floor collisions.

Collision groups: floor (1), robot (2), objects (3 = collides with both).
Gray levels are far apart (floor dark, ball white, goal light gray, obstacle black) so a 64x64 grayscale
camera image is easy to learn from.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

os.environ.setdefault("MUJOCO_GL", "egl")

import mujoco  # noqa: E402
import numpy as np  # noqa: E402

from robots.sim.mjcf import goal_disc, planar_base_drives, planar_base_joints, scene_preamble  # noqa: E402

TIMESTEP = 0.005  # physics step, seconds
ARENA_CENTER = (0.75, 0.0)  # the start is near the origin and the goal ~1.3 m ahead, so centre between them
ARENA_HALF_SIZE = 2.0  # 4 m x 4 m
BODY_HALF = (0.16, 0.11, 0.07)  # LIMO chassis ~0.32 x 0.22 m
BODY_MASS = 4.2
BALL_RADIUS = 0.07
BALL_MASS = 0.2
OBSTACLE_HALF = 0.08
OBSTACLE_MASS = 1.0
GOAL_RADIUS = 0.25
PUSHER_CUP_X = 0.25  # x (robot frame) of a ball centre resting in the pusher's cup
TRACKING_TAU = 0.1  # seconds; first-order velocity tracking time constant
_YAW_INERTIA = BODY_MASS * (4 * BODY_HALF[0] ** 2 + 4 * BODY_HALF[1] ** 2) / 12.0


@dataclass(frozen=True)
class SceneLayout:
    """Where everything starts in an episode (world frame, metres and radians)."""

    robot_xy: tuple[float, float] = (0.0, 0.0)
    robot_yaw: float = 0.0
    ball_xy: tuple[float, float] = (0.5, 0.0)
    goal_xy: tuple[float, float] = (1.35, 0.0)
    obstacle_xy: tuple[float, float] = (0.9, 0.6)


@dataclass(frozen=True)
class SceneState:
    """Privileged simulator state, for tasks and scripted experts (never for the policy)."""

    robot_xy: np.ndarray
    robot_yaw: float
    robot_v: float  # forward velocity, m/s
    robot_w: float  # yaw rate, rad/s
    ball_xy: np.ndarray
    goal_xy: np.ndarray
    obstacle_xy: np.ndarray


def to_robot_frame(scene: SceneState, world_xy: np.ndarray) -> np.ndarray:
    """A world-frame point expressed in the robot frame (x forward, y left)."""
    cos_yaw, sin_yaw = np.cos(scene.robot_yaw), np.sin(scene.robot_yaw)
    dx, dy = np.asarray(world_xy) - scene.robot_xy
    return np.array([cos_yaw * dx + sin_yaw * dy, -sin_yaw * dx + cos_yaw * dy])


def _pusher_xml() -> str:
    """A shallow U in front of the chassis: a plate and two short prongs that keep a pushed ball centred."""
    plate = '<geom name="pusher_plate" class="robot" type="box" size="0.01 0.11 0.035" pos="0.17 0 0.06"/>'
    prongs = "".join(
        f'<geom name="pusher_prong_{side}" class="robot" type="box" size="0.04 0.01 0.035" pos="0.21 {y} 0.06"/>'
        for side, y in (("left", 0.10), ("right", -0.10))
    )
    return plate + prongs


def _wheels_xml() -> str:
    """Four wheels, visual only: the base is velocity-driven, so wheels carry no physics."""
    return "".join(
        f'<geom class="visual" type="cylinder" size="0.045 0.02" pos="{x} {y} 0.045" euler="90 0 0" rgba=".1 .1 .1 1"/>'
        for x in (-0.1, 0.1)
        for y in (-0.125, 0.125)
    )


def limo_mjcf(camera_pitch_deg: float = 25.0, camera_fovy: float = 75.0) -> str:
    """The whole scene as an MJCF string."""
    bx, by, bz = BODY_HALF
    kv_linear, kv_yaw = BODY_MASS / TRACKING_TAU, _YAW_INERTIA / TRACKING_TAU
    pitch = np.deg2rad(camera_pitch_deg)
    cx, cy = ARENA_CENTER
    return scene_preamble("limo_ball_to_goal", TIMESTEP, 0.8, "robot", 0.5) + f"""
    <geom name="floor" type="plane" size="{ARENA_HALF_SIZE} {ARENA_HALF_SIZE} 0.1" pos="{cx} {cy} 0"
          rgba="0.3 0.3 0.3 1" contype="1" conaffinity="1"/>
    <body name="limo" pos="0 0 0">
      {planar_base_joints()}
      <inertial pos="0 0 {0.05 + bz}" mass="{BODY_MASS}" diaginertia="0.03 0.04 {_YAW_INERTIA}"/>
      <geom name="chassis" class="robot" type="box" size="{bx} {by} {bz}" pos="0 0 {0.05 + bz}"/>
      {_pusher_xml()}
      {_wheels_xml()}
      <camera name="front" pos="0.15 0 0.22" fovy="{camera_fovy}"
              xyaxes="0 -1 0 {np.sin(pitch):.6f} 0 {np.cos(pitch):.6f}"/>
    </body>
    <body name="ball" pos="0.5 0 {BALL_RADIUS}">
      <freejoint name="ball_joint"/>
      <geom name="ball" type="sphere" size="{BALL_RADIUS}" mass="{BALL_MASS}" rgba="0.95 0.95 0.95 1"
            contype="3" conaffinity="3" condim="6" friction="0.8 0.01 0.01"/>
    </body>
    <body name="obstacle" pos="0.9 0.6 {OBSTACLE_HALF}">
      <freejoint name="obstacle_joint"/>
      <geom name="obstacle" type="box" size="{OBSTACLE_HALF} {OBSTACLE_HALF} {OBSTACLE_HALF}"
            mass="{OBSTACLE_MASS}" rgba="0.05 0.05 0.05 1" contype="3" conaffinity="3"/>
    </body>
    {goal_disc("1.35 0 0", GOAL_RADIUS, 0.002, 0.85)}
  </worldbody>
  <actuator>
    {planar_base_drives(kv_linear, kv_yaw, 40, 5)}
  </actuator>
</mujoco>
"""


def build_limo_model() -> mujoco.MjModel:
    """Compile the LIMO ball-to-goal scene."""
    return mujoco.MjModel.from_xml_string(limo_mjcf())
