"""The slalom task for the legged twins (paper §5.1: weave past boxes placed at random; boxes can be pushed).

Course: the robot starts near the origin facing +x. Three 25 cm boxes stand in a region ahead, box i
near x = 1.4 (i + 1) m (+-0.15 m) and y in +-0.25 m (times `lateral_spread`); the goal line is at x = 5.6 m.
The `box_spacing` option (1.4 m) can stretch the course up to 2.5 m between boxes (goal at 4 x spacing);
`n_boxes` (3) = 1 or 2 gives a shorter, easier course (goal at (n_boxes + 1) x spacing).

Success, precisely: the robot's centre must cross the line x = box_x of each box, in order, on the
required side (box 0 on the robot's right, i.e. robot y > box y when crossing; box 1 on its left; box 2
on its right; the boxes' colours say which: white = keep it on your right, black = on your left), and
then reach the goal line x >= goal_x. Box positions are read live, so a pushed box counts where it is.
Walking back over a passed box's line un-passes it. Sparse reward: 1.0 and terminated on success.
Failure (0.0, terminated): crossing a box line on the wrong side or out of order, reaching the goal line
with a box not passed, or leaving the corridor |y| <= 1.5 m, x >= -0.8 m; with the `stall_steps` option
(0, off, by default) also gaining no new ground (10 cm past the furthest point so far) for that many steps,
as an operator would end the episode of a robot standing or dithering. Otherwise 0.0 and the
episode runs to the step limit (twins set it: 200 steps = 20 s for the Go2, 250 for the G1).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from common.types import Observation
from robots.base import Task
from robots.sim.expert import EXPERTS, wrap_angle
from robots.sim.legged_scene import BOX_HALF, N_BOXES, REQUIRED_SIDES, LeggedSceneState, SlalomLayout
from robots.sim.tasks import TASKS

if TYPE_CHECKING:  # the twins import this module to build their task; avoid the import cycle at run time
    from robots.sim.legged import LeggedSim

BOX_SPACING = 1.4  # metres between nominal box positions along the course
CORRIDOR_HALF_WIDTH = 1.5
CORRIDOR_MIN_X = -0.8
LATERAL_RANGE = 0.25  # metres, boxes' sideways randomisation at lateral_spread 1
STALL_PROGRESS_M = 0.1  # new ground along the course that counts as progress (`stall_steps`)
PARKED_XY = ((-2.5, -0.8), (-2.5, 0.0), (-2.5, 0.8))  # where unused boxes wait (n_boxes < 3), behind the start


def sample_slalom_layout(rng: np.random.Generator, lateral_spread: float = 1.0, longitudinal_jitter: float = 0.15,
                         spacing: float = BOX_SPACING, n_boxes: int = N_BOXES) -> SlalomLayout:
    """A randomised course: robot near the origin facing +x, boxes at random in their slots, fixed goal line.

    `lateral_spread` scales the boxes' sideways randomisation (1.0: y in +-0.25 m), as in the other tasks.
    With `n_boxes` < 3 the unused boxes are parked behind the start (out of play and out of view).
    """
    robot_xy = rng.uniform(-0.05, 0.05, size=2)
    robot_yaw = rng.uniform(-0.1, 0.1)
    boxes = tuple(
        (spacing * (i + 1) + rng.uniform(-longitudinal_jitter, longitudinal_jitter),
         lateral_spread * rng.uniform(-LATERAL_RANGE, LATERAL_RANGE))
        for i in range(N_BOXES)
    )
    boxes = boxes[:n_boxes] + tuple(PARKED_XY[i] for i in range(n_boxes, N_BOXES))
    return SlalomLayout(tuple(robot_xy), float(robot_yaw), boxes, spacing * (n_boxes + 1))


@dataclass
class SlalomProgress:
    """Which boxes the robot has passed correctly, updated from successive scene states.

    `update` returns "running", "success" or a failure reason ("wrong_side", "out_of_order",
    "missed_box", "left_corridor").
    """

    previous_robot_x: float
    previous_box_x: np.ndarray
    passed: int = 0  # boxes 0..passed-1 have been passed on the right side, in order
    sides: tuple[int, ...] = field(default=REQUIRED_SIDES)
    stall_steps: int = 0  # > 0: "stalled" after this many updates without STALL_PROGRESS_M of new ground
    best_x: float = -np.inf
    since_progress: int = 0

    @classmethod
    def start(cls, scene: LeggedSceneState, n_boxes: int = N_BOXES, stall_steps: int = 0) -> "SlalomProgress":
        """Track the first `n_boxes` boxes of `scene` (the others are out of play)."""
        x = float(scene.robot_xy[0])
        return cls(x, scene.box_xy[:n_boxes, 0].copy(), sides=REQUIRED_SIDES[:n_boxes], stall_steps=stall_steps,
                   best_x=x)  # fmt: skip

    def _stalled(self, robot_x: float) -> bool:
        """No new ground (STALL_PROGRESS_M past the furthest x so far) for `stall_steps` updates in a row."""
        if robot_x >= self.best_x + STALL_PROGRESS_M:
            self.best_x, self.since_progress = robot_x, 0
            return False
        self.since_progress += 1
        return 0 < self.stall_steps <= self.since_progress

    def update(self, scene: LeggedSceneState) -> str:
        robot_x, robot_y = (float(v) for v in scene.robot_xy)
        boxes = scene.box_xy[:len(self.sides)]
        outcome = "running"
        for index, (box_x, box_y) in enumerate(boxes):
            was_behind = self.previous_robot_x < self.previous_box_x[index]
            now_behind = robot_x < box_x
            if was_behind and not now_behind:  # crossed this box's line going forward
                if index != self.passed:
                    outcome = "out_of_order"
                elif np.sign(robot_y - box_y) != self.sides[index]:
                    outcome = "wrong_side"
                else:
                    self.passed += 1
            elif now_behind and not was_behind:  # walked back over it
                self.passed = min(self.passed, index)
        self.previous_robot_x, self.previous_box_x = robot_x, boxes[:, 0].copy()
        if outcome != "running":
            return outcome
        if abs(robot_y) > CORRIDOR_HALF_WIDTH or robot_x < CORRIDOR_MIN_X:
            return "left_corridor"
        if robot_x >= scene.goal_x:
            return "success" if self.passed == len(self.sides) else "missed_box"
        return "stalled" if self._stalled(robot_x) else "running"


@TASKS.register("slalom")
class SlalomTask(Task):
    """Weave past the three boxes on alternating sides, then cross the goal line (details: module doc)."""

    def __init__(self, max_steps: int = 200, lateral_spread: float = 1.0, longitudinal_jitter: float = 0.15,
                 box_spacing: float = BOX_SPACING, n_boxes: int = N_BOXES, stall_steps: int = 0) -> None:
        if max_steps < 1 or not 0 <= lateral_spread <= 2.5 or not 0 <= longitudinal_jitter <= 0.4:
            raise ValueError("max_steps >= 1, 0 <= lateral_spread <= 2.5, 0 <= longitudinal_jitter <= 0.4 required")
        if not BOX_SPACING <= box_spacing <= 2.5:  # closer than 1.4 m a 0.7 m long Go2 barely fits between boxes
            raise ValueError(f"box_spacing must be in [{BOX_SPACING}, 2.5] m, got {box_spacing}")
        if int(n_boxes) != n_boxes or not 1 <= n_boxes <= N_BOXES:
            raise ValueError(f"n_boxes must be 1..{N_BOXES}, got {n_boxes}")
        if int(stall_steps) != stall_steps or stall_steps < 0:
            raise ValueError(f"stall_steps must be a whole number >= 0 (0: off), got {stall_steps}")
        self.n_boxes = int(n_boxes)
        self.stall_steps = int(stall_steps)
        self.max_steps = int(max_steps)
        self.box_spacing = float(box_spacing)
        self.lateral_spread = float(lateral_spread)
        self.longitudinal_jitter = float(longitudinal_jitter)
        self.end_reason = "running"
        self._robot: LeggedSim | None = None
        self._progress: SlalomProgress | None = None

    def reset(self, robot: "LeggedSim") -> Observation:
        """Draw a course from the robot's seeded RNG and start the episode there."""
        self._robot = robot
        layout = sample_slalom_layout(robot.rng, self.lateral_spread, self.longitudinal_jitter, self.box_spacing,
                                      self.n_boxes)
        observation = robot.reset(layout)
        self.start_from_current_state()
        return observation

    def start_from_current_state(self) -> None:
        """Restart progress tracking from the robot's current scene (reset() does this; tests use it too)."""
        if self._robot is None:
            raise RuntimeError("SlalomTask needs reset(robot) first")
        self._progress = SlalomProgress.start(self._robot.scene_state(), self.n_boxes, self.stall_steps)
        self.end_reason = "running"

    def reward(self, observation: Observation) -> tuple[float, bool]:
        # Privileged: the outcome is read from the simulator, not from the (possibly image) observation.
        if self._robot is None or self._progress is None:
            raise RuntimeError("SlalomTask.reward() called before reset(robot)")
        self.end_reason = self._progress.update(self._robot.scene_state())
        if self.end_reason == "success":
            return 1.0, True
        return 0.0, self.end_reason != "running"


@EXPERTS.register("slalom")
class SlalomExpert:
    """Scripted slalom for any legged twin; returns body-frame (vx, vy, yaw_rate) inside the robot's limits.

    The expert works through the boxes in order. For the current box it tracks a lane beside the box on
    the required side (box centre + side * (box half + robot half-width + margin)) with a proportional
    lateral velocity, walking forward at full speed, but creeping while the lane is not yet reached and
    the robot's front is close to the box. A box is done once the robot's rear has cleared it; after the
    last box the robot walks straight over the goal line. The world-frame velocity wanted is turned into
    a body-frame command, the heading turning towards the direction of travel (at most `max_heading`
    off the course), and scaled down as a whole until it fits the limits.
    """

    margin = 0.15  # m between robot footprint and box
    lateral_gain = 2.5  # 1/s, lane error -> world sideways velocity
    heading_gain = 3.0  # rad/s per rad of heading error
    max_heading = 0.6  # rad, largest heading off the course direction
    lane_tolerance = 0.08  # m, lane error at which the robot may walk past a box at full speed

    def __init__(self) -> None:
        self._box = 0

    def reset(self) -> None:
        """Start again from the first box; call at the start of every episode."""
        self._box = 0

    def act(self, scene: LeggedSceneState) -> np.ndarray:
        """The expert's action for the current privileged scene state."""
        world_velocity = self._world_velocity(scene)
        heading = float(np.clip(np.arctan2(world_velocity[1], world_velocity[0]), -self.max_heading, self.max_heading))
        yaw_rate = self.heading_gain * wrap_angle(heading - scene.robot_yaw)
        cos_yaw, sin_yaw = np.cos(scene.robot_yaw), np.sin(scene.robot_yaw)
        body = np.array([cos_yaw * world_velocity[0] + sin_yaw * world_velocity[1],
                         -sin_yaw * world_velocity[0] + cos_yaw * world_velocity[1], yaw_rate])
        return _fit_inside(body, scene.limits.low, scene.limits.high).astype(np.float32)

    def _world_velocity(self, scene: LeggedSceneState) -> np.ndarray:
        x, y = (float(v) for v in scene.robot_xy)
        max_forward = scene.limits.vx[1]
        while self._box < N_BOXES and x - scene.half_length > scene.box_xy[self._box, 0] + BOX_HALF + 0.05:
            self._box += 1
        if self._box == N_BOXES:  # all boxes behind: straight over the goal line, staying in the corridor
            return np.array([max_forward, self.lateral_gain * (float(np.clip(y, -0.4, 0.4)) - y)])
        box_x, box_y = scene.box_xy[self._box]
        lane_y = box_y + REQUIRED_SIDES[self._box] * (BOX_HALF + scene.half_width + self.margin)
        lane_error = lane_y - y
        gap = box_x - BOX_HALF - (x + scene.half_length)  # free distance from the robot's front to the box
        forward = max_forward
        if abs(lane_error) > self.lane_tolerance and gap < 0.3:
            forward = 0.15 * max_forward
        lateral = float(np.clip(self.lateral_gain * lane_error, -max_forward, max_forward))
        return np.array([forward, lateral])


def _fit_inside(command: np.ndarray, low, high) -> np.ndarray:
    """Scale the linear part of `command` uniformly so it fits the bounds (keeping its direction); clip yaw."""
    linear = command[:2]
    scale = 1.0
    for value, lo, hi in zip(linear, low[:2], high[:2]):
        if value > hi:
            scale = min(scale, hi / value)
        elif value < lo:
            scale = min(scale, lo / value)
    return np.array([*(linear * scale), np.clip(command[2], low[2], high[2])])
