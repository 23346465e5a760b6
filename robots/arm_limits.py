"""Safety envelopes of the arms, shared by each MuJoCo twin and its (future) real driver.

Pure numpy, no SDK and no MuJoCo, so a real driver imports the very same numbers its twin runs with.

An arm's action is an end-effector Cartesian velocity (vx, vy, vz) in m/s, in the robot base frame
(x forward, away from the base; z up; the table top is z = 0), plus, for arms with a gripper, the rate
of change of the finger opening in m/s. Two limits apply, in this order:
  1. the action is clipped elementwise into the spec bounds (`ActionSafety`, robots/safety.py);
  2. while the end effector is at a face of the workspace box, the velocity component that would push
     it out is zeroed (`hold_inside_workspace`), so the tool tip can never leave the box, e.g. dig into
     the table or reach past the arm's comfortable reach.
Orientation is fixed (tool pointing straight down); the policy never commands it. A task may lower the
workspace ceiling further (`within_task_box`; push-cube keeps the tip below the cube's top); a real
driver running that task applies the same box.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np


@dataclass(frozen=True)
class ArmLimits:
    """One arm's envelope: speeds in m/s, positions in metres of the tool tip in the base frame."""

    robot: str  # robot family name, e.g. "franka"
    control_hz: float  # policy rate
    max_speed: float  # per-axis Cartesian speed limit of the tool tip
    workspace_low: tuple[float, float, float]  # (x, y, z) lower corner of the allowed tool-tip box
    workspace_high: tuple[float, float, float]  # (x, y, z) upper corner
    gripper_max_width: float = 0.0  # finger opening range is [0, this]; 0: the arm has no gripper
    gripper_max_speed: float = 0.0  # opening rate limit

    def __post_init__(self) -> None:
        if self.control_hz <= 0 or self.max_speed <= 0:
            raise ValueError("control_hz and max_speed must be positive")
        if not all(lo < hi for lo, hi in zip(self.workspace_low, self.workspace_high)):
            raise ValueError(f"{self.robot}: empty workspace {self.workspace_low} / {self.workspace_high}")
        if self.workspace_low[2] < 0.0:
            raise ValueError(f"{self.robot}: the workspace must stay above the table (z >= 0)")
        if self.has_gripper and self.gripper_max_speed <= 0:
            raise ValueError(f"{self.robot}: a gripper needs a positive speed limit")

    @property
    def has_gripper(self) -> bool:
        return self.gripper_max_width > 0.0

    @property
    def action_dim(self) -> int:
        return 4 if self.has_gripper else 3

    @property
    def action_low(self) -> tuple[float, ...]:
        return (-self.max_speed,) * 3 + ((-self.gripper_max_speed,) if self.has_gripper else ())

    @property
    def action_high(self) -> tuple[float, ...]:
        return (self.max_speed,) * 3 + ((self.gripper_max_speed,) if self.has_gripper else ())

    @cached_property
    def low_array(self) -> np.ndarray:
        """workspace_low as an array (computed once: the twins check it every physics step)."""
        return np.asarray(self.workspace_low, dtype=np.float64)

    @cached_property
    def high_array(self) -> np.ndarray:
        """workspace_high as an array."""
        return np.asarray(self.workspace_high, dtype=np.float64)

    @property
    def workspace_center(self) -> np.ndarray:
        return (np.asarray(self.workspace_low) + np.asarray(self.workspace_high)) / 2.0

    @property
    def workspace_half_size(self) -> np.ndarray:
        return (np.asarray(self.workspace_high) - np.asarray(self.workspace_low)) / 2.0


def hold_inside_workspace(position: np.ndarray, velocity: np.ndarray, limits: ArmLimits) -> np.ndarray:
    """`velocity` with every component that would carry `position` further out of the box set to zero."""
    velocity = np.array(velocity, dtype=np.float64)
    outward = ((position <= limits.low_array) & (velocity < 0.0)) | ((position >= limits.high_array) & (velocity > 0.0))
    velocity[outward] = 0.0
    return velocity


def within_task_box(limits: ArmLimits, max_tool_height: float | None) -> ArmLimits:
    """`limits` with the workspace ceiling lowered to a task's `max_tool_height` (never raised).

    A task box inside the safety box, as SERL-style setups clip the tool pose per task: for pushing,
    keeping the tip below the cube's top removes a whole dimension of useless exploration.
    """
    if max_tool_height is None or max_tool_height >= limits.workspace_high[2]:
        return limits
    high = (*limits.workspace_high[:2], float(max_tool_height))
    return replace(limits, workspace_high=high)


# Franka FR3 with the Franka Hand. 0.15 m/s is a tenth of the FR3's rated Cartesian speed, a common
# envelope for learning on hardware; the hand opens to 80 mm and its fingers move at most 50 mm/s.
FRANKA_LIMITS = ArmLimits(
    robot="franka", control_hz=10.0, max_speed=0.15,
    workspace_low=(0.30, -0.25, 0.01), workspace_high=(0.75, 0.25, 0.30),
    gripper_max_width=0.08, gripper_max_speed=0.05,
)

# RealMan RM65-B as in the paper's push-cube setup: 6-DoF, 610 mm reach, no gripper (a rigid pusher
# tool on the flange), so the action is (vx, vy, vz) only.
RM65_LIMITS = ArmLimits(
    robot="rm65", control_hz=10.0, max_speed=0.10,
    workspace_low=(0.20, -0.22, 0.01), workspace_high=(0.58, 0.22, 0.28),
)
