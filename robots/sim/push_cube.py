"""The push-cube task (paper §5.1, manipulator) and its scripted expert, for any arm twin.

Layout, relative to the arm's workspace (x0 = its near edge): the tool tip starts near (x0 + 0.05, 0,
0.03), below the cube's top, with a few cm of jitter; the cube is placed at random in x0 + [0.12, 0.20]
by [-0.10, 0.10] with a random heading; the goal region is a disc of radius 5 cm at (x0 + 0.33, 0), the
paper's "designated goal region", fixed unless `goal_spread` > 0. The task box keeps the tool tip at
most 4 cm above the table (`max_tool_height`), so pushing is planar and the tool must go around the
cube, never over it. Sparse reward: 1.0 and terminated when the cube's centre is inside the disc (cube
on the table); terminated with 0.0 if the cube leaves the table area or is knocked off it; otherwise
0.0. 100 steps (10 s at 10 Hz).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from common.types import Observation
from robots.arm_limits import ArmLimits
from robots.base import Task
from robots.sim import arm_scene
from robots.sim.arm_scene import ArmLayout, ArmSceneState
from robots.sim.expert import EXPERTS
from robots.sim.tasks import TASKS

if TYPE_CHECKING:  # the twin imports the task registry; avoid the import cycle at run time
    from robots.sim.arm_twin import ArmSim

START_HEIGHT = 0.03  # m, tool tip above the table at the start (the cube is 0.05 high)
MAX_TOOL_HEIGHT = 0.04  # m, task-box ceiling: the tool pushes in the plane and cannot pass over the cube
OFF_TABLE_MARGIN = 0.05  # metres past the workspace's xy edges that still count as "on the table"


def sample_push_cube_layout(rng: np.random.Generator, limits: ArmLimits, lateral_spread: float = 1.0,
                            goal_spread: float = 0.0) -> ArmLayout:
    """A randomised start for `limits`' workspace; the spreads scale the cube's and the goal's y range."""
    x0 = limits.workspace_low[0]
    tool = (x0 + 0.05 + rng.uniform(-0.02, 0.02), rng.uniform(-0.03, 0.03), START_HEIGHT + rng.uniform(-0.005, 0.005))
    cube = (x0 + rng.uniform(0.12, 0.20), lateral_spread * rng.uniform(-0.10, 0.10))
    goal = (x0 + 0.33, goal_spread * rng.uniform(-0.08, 0.08))
    return ArmLayout(tool_xyz=tool, cube_xy=cube, cube_yaw=float(rng.uniform(-math.pi / 4, math.pi / 4)),
                     goal_xy=goal)


def cube_on_table(scene: ArmSceneState, limits: ArmLimits) -> bool:
    """Whether the cube rests on the table inside the workspace's xy area (plus a margin)."""
    low = np.asarray(limits.workspace_low[:2]) - OFF_TABLE_MARGIN
    high = np.asarray(limits.workspace_high[:2]) + OFF_TABLE_MARGIN
    xy = scene.cube_xyz[:2]
    return bool(np.all(xy >= low) and np.all(xy <= high) and scene.cube_xyz[2] > 0.5 * arm_scene.CUBE_HALF)


def cube_in_goal(scene: ArmSceneState, goal_radius: float = arm_scene.GOAL_RADIUS) -> bool:
    """Whether the cube's centre is inside the goal disc and the cube is on the table (not lifted)."""
    on_table = scene.cube_xyz[2] < 1.5 * arm_scene.CUBE_HALF
    return bool(on_table and np.linalg.norm(scene.cube_xyz[:2] - scene.goal_xy) <= goal_radius)


@TASKS.register("push_cube")
class PushCubeTask(Task):
    """Push the cube into the goal disc (see the module docstring for layout, reward and episode end)."""

    def __init__(self, max_steps: int = 100, goal_radius: float = arm_scene.GOAL_RADIUS,
                 lateral_spread: float = 1.0, goal_spread: float = 0.0,
                 max_tool_height: float = MAX_TOOL_HEIGHT) -> None:
        if max_steps < 1 or goal_radius <= 0 or lateral_spread < 0 or goal_spread < 0:
            raise ValueError("max_steps >= 1, goal_radius > 0 and non-negative spreads are required")
        if max_tool_height <= START_HEIGHT:
            raise ValueError(f"max_tool_height must be above the start height {START_HEIGHT} m")
        self.max_tool_height = float(max_tool_height)  # the twin lowers its workspace ceiling to this
        self.max_steps = int(max_steps)
        self.goal_radius = float(goal_radius)
        self.lateral_spread = float(lateral_spread)
        self.goal_spread = float(goal_spread)
        self._robot: ArmSim | None = None

    def reset(self, robot: "ArmSim") -> Observation:
        """Draw a layout from the robot's seeded RNG and start the episode there."""
        self._robot = robot
        layout = sample_push_cube_layout(robot.rng, robot.limits, self.lateral_spread, self.goal_spread)
        return robot.reset(layout)

    def reward(self, observation: Observation) -> tuple[float, bool]:
        # Privileged: the outcome is read from the simulator, not from the (possibly image) observation.
        if self._robot is None:
            raise RuntimeError("PushCubeTask.reward() called before reset(robot)")
        scene = self._robot.scene_state()
        if cube_in_goal(scene, self.goal_radius):
            self.end_reason = "success"
            return 1.0, True
        if not cube_on_table(scene, self._robot.limits):
            self.end_reason = "cube_off_table"
            return 0.0, True
        return 0.0, False


@EXPERTS.register("push_cube")
class PushCubeExpert:
    """Scripted pusher for any arm twin; returns (vx, vy, vz[, gripper rate]) in physical units.

    The "push line" runs through the cube's centre towards the goal. The expert brings the tool tip to
    a pre-push point on that line just behind the cube (orbiting around the cube when the straight path
    would hit it), then pushes along the line while steering the tip back onto it (the line is
    recomputed every step, so the push keeps aiming at the goal). If the tip drifts off the line, it
    goes back to the pre-push point. The tip stays at pushing height and the gripper is held closed.
    """

    push_height = 0.02  # m, tool tip above the table while pushing (cube centre is at 0.025)
    gain = 4.0  # 1/s, position error -> velocity
    lateral_gain = 6.0  # 1/s, line offset -> sideways velocity while pushing
    clearance = 0.02  # m, gap between tool and cube face at the pre-push point
    max_push_offset = 0.03  # m, off-line drift that ends a push and starts a new approach
    tool_reach = 0.016  # m, largest half-extent of the tool footprint (closed fingers, rod), for clearance

    def __init__(self) -> None:
        self._pushing = False

    def reset(self) -> None:
        """Forget the push phase; call at the start of every episode."""
        self._pushing = False

    def act(self, scene: ArmSceneState) -> np.ndarray:
        """The expert's action for the current privileged scene state."""
        limits = scene.limits
        xy = np.clip(self._planar_velocity(scene, limits.max_speed), -limits.max_speed, limits.max_speed)
        vz = np.clip(self.gain * (self.push_height - scene.tool_xyz[2]), -limits.max_speed, limits.max_speed)
        action = [*xy, vz] + ([-limits.gripper_max_speed] if limits.has_gripper else [])  # fingers closed
        return np.asarray(action, dtype=np.float32)

    def _planar_velocity(self, scene: ArmSceneState, speed: float) -> np.ndarray:
        cube, tip = scene.cube_xyz[:2], scene.tool_xyz[:2]
        line = _unit(scene.goal_xy - cube)
        normal = np.array([-line[1], line[0]])
        along, lateral = float((tip - cube) @ line), float((tip - cube) @ normal)
        contact = cube_extent_along(line, scene.cube_yaw) + scene.tool_half_width  # tip distance when touching
        lined_up = abs(lateral) < 0.006 and -contact - 2 * self.clearance < along < -contact + 0.005
        if self._pushing and (abs(lateral) > self.max_push_offset or along > -contact + 0.01):
            self._pushing = False
        elif not self._pushing and lined_up:
            self._pushing = True
        if self._pushing:
            return speed * line - self.lateral_gain * lateral * normal
        pre_push = cube - (contact + self.clearance) * line
        keep_out = arm_scene.CUBE_HALF * math.sqrt(2) + self.tool_reach
        if np.linalg.norm(pre_push - tip) > 0.01 and _segment_hits_cube(tip, pre_push, cube, keep_out):
            return self._orbit_velocity(tip, cube, lateral, keep_out + 0.01, speed)
        return self.gain * (pre_push - tip)

    def _orbit_velocity(self, tip: np.ndarray, cube: np.ndarray, lateral: float, radius: float,
                        speed: float) -> np.ndarray:
        """Circle the cube at `radius`, on the side the tip is on, towards the back of the cube."""
        outward = _unit(tip - cube)
        side = 1.0 if lateral >= 0.0 else -1.0  # left of the line: turn counter-clockwise to get behind
        tangent = side * np.array([-outward[1], outward[0]])
        return speed * tangent + self.gain * (radius - float(np.linalg.norm(tip - cube))) * outward


def cube_extent_along(direction: np.ndarray, cube_yaw: float) -> float:
    """Distance from the cube's centre to its boundary along the unit xy `direction`."""
    angle = math.atan2(direction[1], direction[0]) - cube_yaw
    return arm_scene.CUBE_HALF / max(abs(math.cos(angle)), abs(math.sin(angle)))


def _segment_hits_cube(start: np.ndarray, end: np.ndarray, cube: np.ndarray, radius: float) -> bool:
    """Whether the straight xy path start->end passes within `radius` of the cube's centre."""
    direction = end - start
    t = np.clip(np.dot(cube - start, direction) / max(float(np.dot(direction, direction)), 1e-12), 0.0, 1.0)
    return bool(np.linalg.norm(start + t * direction - cube) < radius)


def _unit(vector: np.ndarray) -> np.ndarray:
    return vector / max(float(np.linalg.norm(vector)), 1e-9)
