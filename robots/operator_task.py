"""`OperatorTask`: the task of a real robot with no automatic success detection.

A real LIMO or RM65 cannot see the privileged scene state the simulated tasks use, so reward and episode
end come from the operator's keys (success / failure / reset, actor/operator.py) and from `max_steps`;
the task itself returns reward 0 and never terminates. reset() stops the robot and returns its observation.
"""

from __future__ import annotations

from common.types import Observation
from robots.base import Robot, Task


class OperatorTask(Task):
    """Reward 0 and no termination by itself; the operator labels outcomes; episodes end at max_steps."""

    def __init__(self, max_steps: int = 200) -> None:
        if max_steps <= 0:
            raise ValueError(f"max_steps must be positive, got {max_steps}")
        self.max_steps = int(max_steps)

    def reset(self, robot: Robot) -> Observation:
        return robot.reset()

    def reward(self, observation: Observation) -> tuple[float, bool]:
        return 0.0, False
