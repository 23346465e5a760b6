"""A scripted corrector: a simulated operator who takes a twin over when its policy is failing.

ALOE's data (paper 003, Fig. 1 and §IV-A) comes from rollouts that a human watches: when the policy fails or
times out, the human takes over by teleoperation and guides the robot to the goal, and the replay holds the
policy's fragments and the human's side by side, stitched by TD. This is that human for the twins, so the
effect of corrections can be measured without one:

- In a training episode, after `after_steps` policy steps without the task ending, the corrector presses the
  operator's intervene key and drives the task's scripted expert (`robots/sim/expert.py`, privileged state)
  through the operator's continuous teleop input, as a VR controller would.
- After `correct_steps` steps it presses the key again and the policy, which re-plans from where the robot
  is, drives until the next `after_steps`; a new episode always starts with the policy. Evaluation episodes
  are never corrected: they measure the policy.

It acts only through `Operator.handle_key` and `Operator.set_device_action`, the inputs a human's console and
teleop device use, so its steps take the human's path: marked as interventions in replay, the policy's chunk
queue cleared at the takeover, the intervention counters and the episodes file.

The paper's human also labels the policy's fragment a failure and resets the scene to the failure state
before correcting; an actor cannot reset a real scene to a state, so the twin's corrector takes over inside
the episode, which is the paper's other path (intervening when a failure is imminent).
"""

from __future__ import annotations

from dataclasses import dataclass

from actor.operator import Operator
from robots.base import Robot
from robots.sim.expert import EXPERTS
from robots.sim.tasks import TASKS


@dataclass(frozen=True)
class CorrectorConfig:
    """When the corrector takes over and for how long."""

    after_steps: int
    """Policy steps without the episode ending before each takeover (the 'times out' of the paper's human)."""
    correct_steps: int = 20
    """Steps the expert drives before control returns to the policy (0: to the episode's end)."""

    def __post_init__(self) -> None:
        if self.after_steps < 1 or self.correct_steps < 0:
            raise ValueError(f"the corrector needs after_steps >= 1 and correct_steps >= 0, got {self}")


class ScriptedCorrector:
    """Takes `robot` (a twin) over through `operator` when its policy has not finished in time."""

    def __init__(self, robot: Robot, operator: Operator, config: CorrectorConfig) -> None:
        task = getattr(robot, "task", None)
        if task is None or not hasattr(robot, "scene_state"):
            raise ValueError(f"the scripted corrector needs a simulated twin, not {type(robot).__name__}")
        task_name = TASKS.name_of(type(task))
        if task_name not in EXPERTS:
            raise ValueError(f"no scripted expert for task {task_name!r}; experts exist for {EXPERTS.names()}")
        keys = operator.keymap.bindings.get("intervene", ())
        if not keys:
            raise ValueError("the scripted corrector presses the intervene key, and none is bound")
        self.config = config
        self._robot, self._operator, self._intervene_key = robot, operator, keys[0]
        self._expert = EXPERTS.get(task_name)()
        self._since = 0  # steps since the last hand-over, in this episode
        self.takeovers = 0  # over the whole run

    def before_step(self, step: int, evaluation: bool) -> None:
        """Called by the control loop before it chooses the action of `step` (0: a new episode starts)."""
        if step == 0:
            self._since = 0
            if self._operator.intervening:
                self._press_intervene()  # every episode starts with the policy
        if evaluation:
            return
        if self._operator.intervening:
            if self.config.correct_steps and self._since >= self.config.correct_steps:
                self._press_intervene()
                self._since = 0
        elif self._since >= self.config.after_steps:
            self._press_intervene()
            self._expert.reset()
            self.takeovers += 1
            self._since = 0
        if self._operator.intervening:
            physical = self._expert.act(self._robot.scene_state())
            self._operator.set_device_action(self._robot.spec.normalize_action(physical))
        self._since += 1

    def _press_intervene(self) -> None:
        self._operator.handle_key(self._intervene_key)
