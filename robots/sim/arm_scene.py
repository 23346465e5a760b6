"""The tabletop push scene shared by the arm twins: MJCF built in code, and the layout/state records.

Model (what we chose and why): the policy acts on end-effector Cartesian velocity, so the twin models
exactly that level and nothing below it. The tool (Franka: hand + two fingers; RM65: a rigid pusher
rod on the flange) hangs on three slide joints x, y, z, each driven by a MuJoCo `velocity` actuator
(force = kv * (target - velocity)); with kv = mass / tau this is a first-order Cartesian velocity
tracker with tau = 0.05 s, like the real arms' Cartesian velocity controllers, while still producing
real contact forces on the cube. The arm's links, joint limits and IK are not simulated: the workspace
box of robots/arm_limits.py stands in for reach, and the orientation stays fixed (pointing down).
The tool is gravity-compensated (`gravcomp`), as the real controllers are.

Frame: the robot base frame; the table top is the plane z = 0. The wrist camera rides on the tool,
30 cm above the tip and 4 cm ahead of it (on a bracket above the flange), pitched 60 degrees down
towards +x (the push direction): the hand/flange edge is a strip at the bottom of the image, the cube
being pushed sits just above it, and the goal region ahead is in view from the start. Gray levels are
far apart (table dark, cube white, goal light, tool mid/black).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

os.environ.setdefault("MUJOCO_GL", "egl")

import mujoco  # noqa: E402
import numpy as np  # noqa: E402

from robots.arm_limits import ArmLimits  # noqa: E402
from robots.sim.mjcf import goal_disc, scene_preamble  # noqa: E402

TIMESTEP = 0.01  # physics step, seconds (10 per 10 Hz control period)
CUBE_HALF = 0.025  # a 5 cm cube
CUBE_MASS = 0.1
TOOL_MASS = 1.0
TRACKING_TAU = 0.05  # seconds; Cartesian velocity tracking time constant
FINGER_HALF = (0.01, 0.008, 0.027)  # Franka finger pad half sizes (x, y, z)
PUSHER_RADIUS = 0.012  # RM65 pusher rod
GOAL_RADIUS = 0.05
TABLE_MARGIN = 0.15  # table extends this far past the workspace in x and y
CAMERA_POS = (0.04, 0.0, 0.30)  # wrist camera, relative to the tool tip: on a bracket above the flange
CAMERA_PITCH_DEG = 60.0  # below horizontal
CAMERA_FOVY = 70.0


@dataclass(frozen=True)
class ArmLayout:
    """Where everything starts in an episode: tool tip (x, y, z), cube (x, y, yaw), goal (x, y)."""

    tool_xyz: tuple[float, float, float]
    cube_xy: tuple[float, float]
    cube_yaw: float
    goal_xy: tuple[float, float]


@dataclass(frozen=True)
class ArmSceneState:
    """Privileged simulator state, for tasks and scripted experts (never for the policy)."""

    tool_xyz: np.ndarray  # tool tip position
    tool_velocity: np.ndarray  # tool tip linear velocity
    gripper_width: float  # finger opening, metres (0 without a gripper)
    cube_xyz: np.ndarray
    cube_yaw: float
    goal_xy: np.ndarray
    tool_half_width: float  # half the tool's footprint along the push direction (for the expert)
    limits: ArmLimits  # the arm's envelope (speeds, workspace, gripper)


def tool_half_width(limits: ArmLimits) -> float:
    """Half the footprint of the closed tool: finger pad thickness for Franka, rod radius for RM65."""
    return FINGER_HALF[0] if limits.has_gripper else PUSHER_RADIUS


def _gripper_xml(limits: ArmLimits) -> str:
    """Franka Hand: a palm box and two finger pads on slide joints along y (each moves half the width)."""
    fx, fy, fz = FINGER_HALF
    half_range = limits.gripper_max_width / 2.0
    fingers = "".join(
        f"""<body name="finger_{side}" pos="0 {sign * fy:.4f} {fz}" gravcomp="1">
          <joint name="finger_{side}" type="slide" axis="0 {sign} 0" range="0 {half_range}" damping="5"/>
          <geom name="finger_{side}" class="tool" type="box" size="{fx} {fy} {fz}" mass="0.05" rgba=".1 .1 .1 1"/>
        </body>"""
        for side, sign in (("left", 1), ("right", -1))
    )
    palm = f'<geom name="palm" class="tool" type="box" size="0.03 0.1 0.025" pos="0 0 {2 * fz + 0.035}"/>'
    return palm + fingers


def _pusher_xml() -> str:
    """RM65-B with a rigid pusher rod on the flange, and the flange itself."""
    return (
        f'<geom name="pusher" class="tool" type="cylinder" size="{PUSHER_RADIUS} 0.04" pos="0 0 0.04"'
        ' rgba=".1 .1 .1 1"/>'
        '<geom name="flange" class="tool" type="cylinder" size="0.035 0.02" pos="0 0 0.1"/>'
    )


def _gripper_actuators(limits: ArmLimits) -> str:
    if not limits.has_gripper:
        return ""
    return "".join(
        f'<position name="finger_{side}" joint="finger_{side}" kp="200" ctrlrange="0 {limits.gripper_max_width / 2}"/>'
        for side in ("left", "right")
    )


def arm_mjcf(limits: ArmLimits) -> str:
    """The whole scene for one arm as an MJCF string."""
    kv = TOOL_MASS / TRACKING_TAU
    center = limits.workspace_center
    half = limits.workspace_half_size + TABLE_MARGIN
    pitch = np.deg2rad(CAMERA_PITCH_DEG)
    tool = _gripper_xml(limits) if limits.has_gripper else _pusher_xml()
    slides = "".join(
        f'<joint name="tool_{axis}" type="slide" axis="{vec}" damping="0"/>'
        for axis, vec in (("x", "1 0 0"), ("y", "0 1 0"), ("z", "0 0 1"))
    )
    drives = "".join(
        f'<velocity name="drive_{axis}" joint="tool_{axis}" kv="{kv}" forcelimited="true" forcerange="-40 40"/>'
        for axis in "xyz"
    )
    return scene_preamble(f"{limits.robot}_push_cube", TIMESTEP, 0.6, "tool", 0.5) + f"""
    <geom name="table" type="plane" size="{half[0]} {half[1]} 0.1" pos="{center[0]} {center[1]} 0"
          rgba="0.3 0.3 0.3 1" contype="1" conaffinity="1"/>
    <body name="tool" pos="0 0 0" gravcomp="1">
      {slides}
      <inertial pos="0 0 0.05" mass="{TOOL_MASS}" diaginertia="0.01 0.01 0.01"/>
      {tool}
      <camera name="wrist" pos="{CAMERA_POS[0]} {CAMERA_POS[1]} {CAMERA_POS[2]}" fovy="{CAMERA_FOVY}"
              xyaxes="0 -1 0 {np.sin(pitch):.6f} 0 {np.cos(pitch):.6f}"/>
    </body>
    <body name="cube" pos="{center[0]} 0 {CUBE_HALF}">
      <freejoint name="cube_joint"/>
      <geom name="cube" type="box" size="{CUBE_HALF} {CUBE_HALF} {CUBE_HALF}" mass="{CUBE_MASS}"
            rgba="0.95 0.95 0.95 1" contype="3" conaffinity="3" condim="4"/>
    </body>
    {goal_disc(f"{limits.workspace_high[0]} 0 0", GOAL_RADIUS, 0.001, 0.7)}
  </worldbody>
  <actuator>
    {drives}
    {_gripper_actuators(limits)}
  </actuator>
</mujoco>
"""


def build_arm_model(limits: ArmLimits) -> mujoco.MjModel:
    """Compile the push scene for the arm with these limits."""
    return mujoco.MjModel.from_xml_string(arm_mjcf(limits))
