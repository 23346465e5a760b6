"""The legged slalom scene: a velocity-tracked floating base, three movable boxes and a goal line.

Base model (what we chose and why): the policy acts through Unitree's high-level velocity interface,
so the twin models what that interface delivers, not the legs. The robot body has three joints, slide
x, slide y and hinge yaw, each driven by a MuJoCo `velocity` actuator (force = kv * (target - velocity),
kv = mass / tau, force-limited). That is a first-order tracker of the commanded (vx, vy, yaw rate) with
the robot's real mass, so the body still collides with the boxes and pushes them with realistic
forces. Height, roll and pitch are fixed (the gait controller keeps the trunk level); the legs are
collision capsules frozen in the standing pose, and the robot is kept out of floor collisions.
The robot geometry is simple MJCF built in code with the real robots' main dimensions (see go2.py and
g1.py): the vendor meshes (28 MB for the Go2) are too heavy to ship and add nothing at this level.

Collision groups: floor (1), robot (2), boxes (3 = collide with both and with each other).
Gray levels for the 64x64 camera: mid-gray floor, white boxes (keep them on the robot's right while
passing), black boxes (keep them on its left), a white goal line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

os.environ.setdefault("MUJOCO_GL", "egl")

import mujoco  # noqa: E402
import numpy as np  # noqa: E402

from robots.legged_limits import VelocityLimits  # noqa: E402
from robots.sim.mjcf import planar_base_drives, planar_base_joints, scene_preamble  # noqa: E402

TIMESTEP = 0.005  # physics step, seconds
N_BOXES = 3
BOX_HALF = 0.125  # 25 cm cardboard cubes
BOX_MASS = 1.5
# Which side the robot must pass each box on: +1 = robot left of the box (box on its right), -1 = right.
REQUIRED_SIDES = (1, -1, 1)
# Floor extent: much larger than the task's corridor, so the cameras see a uniform floor up to the horizon.
ARENA_X = (-5.0, 15.0)
ARENA_HALF_WIDTH = 10.0
GOAL_LINE_HALF_WIDTH = 1.5


@dataclass(frozen=True)
class LeggedBody:
    """What the scene needs to know about one legged robot (geometry in its body frame, z up from the floor)."""

    name: str
    mass: float  # kg
    yaw_inertia: float  # kg m^2 about the vertical axis
    half_length: float  # m, footprint half-extent along x (for experts' clearances)
    half_width: float  # m, footprint half-extent along y
    collision_xml: str  # <geom class="robot" .../> elements
    visual_xml: str  # <geom class="visual" .../> elements
    camera_pos: tuple[float, float, float]  # head camera position
    camera_pitch_deg: float  # downward tilt of the head camera
    camera_fovy: float  # vertical field of view, degrees
    tracking_tau: float  # s, velocity tracking time constant of the gait controller
    max_force: float  # N, per horizontal axis
    max_torque: float  # N m, yaw


@dataclass(frozen=True)
class SlalomLayout:
    """Where everything starts in an episode (world frame; the course runs along +x)."""

    robot_xy: tuple[float, float] = (0.0, 0.0)
    robot_yaw: float = 0.0
    box_xy: tuple[tuple[float, float], ...] = ((1.4, 0.0), (2.8, 0.0), (4.2, 0.0))
    goal_x: float = 5.6


@dataclass(frozen=True)
class LeggedSceneState:
    """Privileged simulator state, for tasks and scripted experts (never for the policy)."""

    robot_xy: np.ndarray
    robot_yaw: float
    robot_velocity: np.ndarray  # (vx, vy) body frame, m/s
    robot_yaw_rate: float
    box_xy: np.ndarray  # (N_BOXES, 2)
    goal_x: float
    limits: VelocityLimits  # the robot's command envelope (for experts)
    half_length: float  # robot footprint half-extents, m (for experts' clearances)
    half_width: float


def to_body_frame(robot_xy: np.ndarray, robot_yaw: float, world_xy: np.ndarray) -> np.ndarray:
    """World-frame points (..., 2) expressed in the robot's body frame (x forward, y left)."""
    cos_yaw, sin_yaw = np.cos(robot_yaw), np.sin(robot_yaw)
    delta = np.asarray(world_xy, dtype=np.float64) - robot_xy
    return np.stack([cos_yaw * delta[..., 0] + sin_yaw * delta[..., 1],
                     -sin_yaw * delta[..., 0] + cos_yaw * delta[..., 1]], axis=-1)


def box_gray(index: int) -> float:
    """Box colour: white for boxes passed on their left (+1), black for boxes passed on their right."""
    return 0.95 if REQUIRED_SIDES[index] > 0 else 0.05


def _boxes_xml() -> str:
    boxes = []
    for i in range(N_BOXES):
        gray = box_gray(i)
        boxes.append(f"""
    <body name="box{i}" pos="{1.4 * (i + 1)} 0 {BOX_HALF}">
      <freejoint name="box{i}_joint"/>
      <geom name="box{i}" type="box" size="{BOX_HALF} {BOX_HALF} {BOX_HALF}" mass="{BOX_MASS}"
            rgba="{gray} {gray} {gray} 1" contype="3" conaffinity="3"/>
    </body>""")
    return "".join(boxes)


def legged_mjcf(body: LeggedBody) -> str:
    """The whole slalom scene around `body` as an MJCF string."""
    kv_linear, kv_yaw = body.mass / body.tracking_tau, body.yaw_inertia / body.tracking_tau
    pitch = np.deg2rad(body.camera_pitch_deg)
    floor_cx, floor_hx = (ARENA_X[0] + ARENA_X[1]) / 2, (ARENA_X[1] - ARENA_X[0]) / 2
    return scene_preamble(f"{body.name}_slalom", TIMESTEP, 0.7, "robot", 0.6, headlight=(0.5, 0.45)) + f"""
    <geom name="floor" type="plane" size="{floor_hx} {ARENA_HALF_WIDTH} 0.1" pos="{floor_cx} 0 0"
          rgba="0.45 0.45 0.45 1" contype="1" conaffinity="1"/>
    <body name="robot" pos="0 0 0">
      {planar_base_joints()}
      <inertial pos="0 0 0.3" mass="{body.mass}"
                diaginertia="{body.yaw_inertia} {body.yaw_inertia} {body.yaw_inertia}"/>
      {body.collision_xml}
      {body.visual_xml}
      <camera name="head" pos="{body.camera_pos[0]} {body.camera_pos[1]} {body.camera_pos[2]}" fovy="{body.camera_fovy}"
              xyaxes="0 -1 0 {np.sin(pitch):.6f} 0 {np.cos(pitch):.6f}"/>
    </body>{_boxes_xml()}
    <body name="goal" mocap="true" pos="5.6 0 0">
      <geom name="goal_line" class="visual" type="box" size="0.1 {GOAL_LINE_HALF_WIDTH} 0.002" pos="0 0 0.002"
            rgba="0.95 0.95 0.95 1"/>
    </body>
  </worldbody>
  <actuator>
    {planar_base_drives(kv_linear, kv_yaw, body.max_force, body.max_torque)}
  </actuator>
</mujoco>
"""


def build_legged_model(body: LeggedBody) -> mujoco.MjModel:
    """Compile the slalom scene for one legged robot."""
    return mujoco.MjModel.from_xml_string(legged_mjcf(body))
