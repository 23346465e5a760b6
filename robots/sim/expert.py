"""Scripted experts: privileged-state controllers that produce demonstrations for the twins.

`BallToGoalExpert` follows the line from the ball to the goal (details in its docstring).
"""

from __future__ import annotations

import math

import numpy as np

from common.registry import Registry
from robots.sim.limo import MAX_V, MAX_W
from robots.sim.limo_scene import PUSHER_CUP_X, SceneState, to_robot_frame

# task name -> expert factory() -> object with reset() and act(scene_state) -> physical action
EXPERTS: Registry = Registry("expert")


def wrap_angle(angle: float) -> float:
    """Angle wrapped to [-pi, pi)."""
    return (angle + math.pi) % (2.0 * math.pi) - math.pi


@EXPERTS.register("ball_to_goal")
class BallToGoalExpert:
    """Line-following push controller for the LIMO ball-to-goal task; returns (v, w) in m/s, rad/s.

    The "push line" runs through the ball towards the goal. The robot steers onto it with a Stanley-type
    law (heading = line heading - atan(k * lateral offset)), which carries it up behind the ball and then
    pushes the ball along the line; as the ball moves, the line is recomputed, so the push keeps aiming
    at the goal. If the robot ends up beside or past a ball that is not in its cup, it backs up first.
    """

    line_gain = 6.0  # 1/m: lateral offset -> heading correction, atan(k * e)
    max_correction = math.radians(60.0)
    heading_gain = 3.0  # rad/s per rad of heading error
    approach_speed = 0.3  # m/s, while the ball is not yet in the cup
    push_speed = 0.45  # m/s, a little under the limit so steering keeps some authority

    def reset(self) -> None:
        """No per-episode memory; kept so every expert has the same interface."""

    def act(self, scene: SceneState) -> np.ndarray:
        """The expert's action for the current privileged scene state."""
        line = _unit(scene.goal_xy - scene.ball_xy)
        line_heading = math.atan2(line[1], line[0])
        offset = scene.robot_xy - scene.ball_xy
        along = float(np.dot(offset, line))  # negative: the robot is behind the ball
        lateral = float(line[0] * offset[1] - line[1] * offset[0])  # positive: left of the line
        in_cup = _ball_in_cup(to_robot_frame(scene, scene.ball_xy))
        if not in_cup and along > -(PUSHER_CUP_X - 0.02):
            # Beside or past the ball: reverse, turning parallel to the line, so the next forward
            # approach starts behind the ball instead of sweeping it sideways.
            return self._clip(-self.approach_speed, self.heading_gain * wrap_angle(line_heading - scene.robot_yaw))
        correction = float(np.clip(math.atan(self.line_gain * lateral), -self.max_correction, self.max_correction))
        heading_error = wrap_angle(line_heading - correction - scene.robot_yaw)
        speed = self.push_speed if in_cup else self.approach_speed
        v = speed * max(0.2, math.cos(heading_error))  # slow in tight turns so a cupped ball stays put
        return self._clip(v, self.heading_gain * heading_error)

    @staticmethod
    def _clip(v: float, w: float) -> np.ndarray:
        return np.array([np.clip(v, -MAX_V, MAX_V), np.clip(w, -MAX_W, MAX_W)], dtype=np.float32)


def _ball_in_cup(ball_in_robot: np.ndarray) -> bool:
    """Whether the ball sits in (or just in front of) the pusher's U, in the robot frame."""
    forward = ball_in_robot[0] - PUSHER_CUP_X
    return -0.05 < forward < 0.12 and abs(ball_in_robot[1]) < 0.09


def _unit(vector: np.ndarray) -> np.ndarray:
    return vector / max(float(np.linalg.norm(vector)), 1e-9)
