"""Tasks for the simulated twins: reward and episode end from privileged simulator state.

`BallToGoalTask` is the paper's wheeled ball-to-goal family (§5.1: ball and a movable, collidable
obstacle placed at random), sized so SAC with one demonstration can learn it from state in a few
thousand steps: the ball starts just ahead of the LIMO, the goal further along roughly the same line,
and the obstacle is placed off that line, so the straight push usually works.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from common.registry import Registry
from common.types import Observation
from robots.base import Task
from robots.sim import limo_scene
from robots.sim.limo_scene import SceneLayout

if TYPE_CHECKING:  # the twin imports this module to build its task; avoid the import cycle at run time
    from robots.sim.limo import LimoSim

# name -> factory(**options) -> Task, chosen by the twins' `task=` option.
TASKS: Registry = Registry("task")

OBSTACLE_PATH_CLEARANCE = 0.35  # metres between obstacle centre and the robot->ball->goal path


def distance_to_segment(point: np.ndarray, start: np.ndarray, end: np.ndarray) -> float:
    """Euclidean distance from `point` to the segment start-end."""
    direction = end - start
    t = np.clip(np.dot(point - start, direction) / max(np.dot(direction, direction), 1e-12), 0.0, 1.0)
    return float(np.linalg.norm(point - (start + t * direction)))


def sample_ball_to_goal_layout(rng: np.random.Generator, lateral_spread: float = 1.0) -> SceneLayout:
    """A randomised start: LIMO near the origin facing +x, ball ahead, goal further ahead, obstacle aside.

    `lateral_spread` scales the sideways randomisation of ball and goal (1.0: ball +-0.12 m, goal +-0.3 m).
    """
    robot_xy = rng.uniform(-0.05, 0.05, size=2)
    robot_yaw = rng.uniform(-0.1, 0.1)
    ball_xy = np.array([rng.uniform(0.4, 0.6), lateral_spread * rng.uniform(-0.12, 0.12)])
    goal_xy = np.array([rng.uniform(1.2, 1.5), lateral_spread * rng.uniform(-0.3, 0.3)])
    obstacle_xy = _sample_obstacle(rng, robot_xy, ball_xy, goal_xy)
    return SceneLayout(tuple(robot_xy), float(robot_yaw), tuple(ball_xy), tuple(goal_xy), tuple(obstacle_xy))


def _sample_obstacle(rng: np.random.Generator, robot_xy, ball_xy, goal_xy) -> np.ndarray:
    # Rejection sampling in a box around the path; the fallback (never reached in practice, but keeps
    # reset bounded) is a fixed spot well to the side.
    for _ in range(100):
        candidate = np.array([rng.uniform(0.0, 1.8), rng.uniform(-0.9, 0.9)])
        clear_of_path = min(distance_to_segment(candidate, robot_xy, ball_xy),
                            distance_to_segment(candidate, ball_xy, goal_xy)) >= OBSTACLE_PATH_CLEARANCE
        clear_of_goal = np.linalg.norm(candidate - goal_xy) >= limo_scene.GOAL_RADIUS + 0.2
        if clear_of_path and clear_of_goal:
            return candidate
    return np.array([0.9, 0.9])


def inside_arena(xy: np.ndarray, margin: float = 0.0) -> bool:
    """Whether a world-frame point lies on the arena floor (shrunk by `margin`)."""
    offset = np.abs(np.asarray(xy) - np.asarray(limo_scene.ARENA_CENTER))
    return bool(np.all(offset <= limo_scene.ARENA_HALF_SIZE - margin))


@TASKS.register("ball_to_goal")
class BallToGoalTask(Task):
    """Push the ball into the goal disc. Sparse: 1.0 and terminated when the ball centre is in the disc;
    terminated with 0.0 if the ball or the robot leaves the arena; otherwise 0.0. 100 steps (10 s)."""

    def __init__(self, max_steps: int = 100, goal_radius: float = limo_scene.GOAL_RADIUS,
                 lateral_spread: float = 1.0) -> None:
        if max_steps < 1 or goal_radius <= 0 or lateral_spread < 0:
            raise ValueError("max_steps >= 1, goal_radius > 0 and lateral_spread >= 0 are required")
        self.max_steps = int(max_steps)
        self.goal_radius = float(goal_radius)
        self.lateral_spread = float(lateral_spread)
        self._robot: LimoSim | None = None

    def reset(self, robot: "LimoSim") -> Observation:
        """Draw a layout from the robot's seeded RNG and start the episode there."""
        self._robot = robot
        return robot.reset(sample_ball_to_goal_layout(robot.rng, self.lateral_spread))

    def reward(self, observation: Observation) -> tuple[float, bool]:
        # Privileged: the outcome is read from the simulator, not from the (possibly image) observation.
        if self._robot is None:
            raise RuntimeError("BallToGoalTask.reward() called before reset(robot)")
        scene = self._robot.scene_state()
        if np.linalg.norm(scene.ball_xy - scene.goal_xy) <= self.goal_radius:
            self.end_reason = "success"
            return 1.0, True
        ball_out = not inside_arena(scene.ball_xy)
        if ball_out or not inside_arena(scene.robot_xy):
            self.end_reason = "ball_left_arena" if ball_out else "robot_left_arena"
            return 0.0, True
        return 0.0, False
