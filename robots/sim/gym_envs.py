"""Every MuJoCo twin and its task as a gymnasium environment, so other libraries' agents can train on them.

    import gymnasium
    import robots.sim.gym_envs  # registers the tandem/ environments
    env = gymnasium.make("tandem/LimoBallToGoal-v0")
    # or, without importing Tandem first (gymnasium imports the module named before the colon):
    env = gymnasium.make("robots.sim.gym_envs:tandem/LimoBallToGoal-v0")

One `TandemEnv` class wraps a twin built exactly as the actor builds it (`ROBOTS.get(name)(**options)`,
with the twin's own task), and steps it as `actor/loop.py` does: the [-1, 1] action is denormalised by the
spec and sent through the twin's safety layer, then the task gives (reward, terminated), and the episode is
truncated (not terminated) at the task's `max_steps`. `info["success"]` follows the loop's rule (terminated
with a positive reward) and `info["executed_action"]` is the normalised action the robot executed, the one
Tandem's replay stores. The registered `max_episode_steps` is the task's default `max_steps`, so
gymnasium's TimeLimit ends an episode at the same step; pass `max_steps=N` with `max_episode_steps=N`.

Task options (e.g. `lateral_spread=0.5`, `n_boxes=2`) pass through `gymnasium.make` as for `actor -o`.
The task's randomisation draws from gymnasium's `np_random`, so `reset(seed=s)` starts the same episodes as
the actor's `-o seed=s`. Gymnasium 1.x has no entry-point plugins: the `module:` prefix above is its way
to register on demand.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from common.specs import ArraySpec, BoundedSpec, RobotSpec
from common.types import Observation
from robots.base import ROBOTS

NAMESPACE = "tandem"
VERSION = 0
# gymnasium name -> (registered twin, its task): every twin-and-task pair Tandem has.
TWIN_TASKS = {
    "LimoBallToGoal": ("limo_sim", "ball_to_goal"),
    "FrankaPushCube": ("franka_sim", "push_cube"),
    "RM65PushCube": ("rm65_sim", "push_cube"),
    "Go2Slalom": ("go2_sim", "slalom"),
    "G1Slalom": ("g1_sim", "slalom"),
}
# Every twin clips its state vector to +-3 (limo.py, arm_twin.py, legged.py), so the space says so: libraries
# that normalise observations need finite bounds, and gymnasium's checker warns on infinite ones.
STATE_BOUND = 3.0
IMAGE_SUFFIX = "Image"  # tandem/<name>Image-v0: the same twin and task, observing its 64x64 grayscale camera


class TandemEnv(gymnasium.Env):
    """A Tandem twin and its task behind gymnasium's API (see the module docstring for the rules)."""

    # render_fps: every twin runs at 10 Hz; each instance states its own spec's control_hz.
    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, robot: str = "limo_sim", task: str | None = None, observation: str = "state",
                 image_size: int = 64, render_mode: str | None = None, **task_options: Any) -> None:
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        if "seed" in task_options:
            raise ValueError("seed the environment with env.reset(seed=...), not with a `seed` option")
        options = {"observation": observation, "image_size": image_size, **task_options}
        if task is not None:
            options["task"] = task
        self.robot = ROBOTS.get(robot)(**options)  # the construction the actor uses (actor.app.make_robot)
        self.task = self.robot.task
        self.robot_spec = self.robot.spec  # Tandem's RobotSpec (gymnasium's `spec` is the registration)
        self.render_mode = render_mode
        self.observation_space = observation_space(self.robot_spec)
        self.action_space = spaces.Box(-1.0, 1.0, shape=self.robot_spec.action.shape, dtype=np.float32)
        self.metadata = {**self.metadata, "render_fps": self.robot_spec.control_hz}
        self._steps: int | None = None  # steps in this episode; None until the first reset
        self.robot.connect()
        self.robot.enable()

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Observation, dict]:
        """Start an episode: the task draws its layout from `np_random` (seeded by `seed`)."""
        super().reset(seed=seed)
        # The task samples from the twin's generator; sharing gymnasium's makes reset(seed=s) reproducible
        # and equal to the actor's `-o seed=s` (both are PCG64 seeded through SeedSequence(s)).
        self.robot.rng = self.np_random
        self._steps = 0
        return self.task.reset(self.robot), {}

    def step(self, action: np.ndarray) -> tuple[Observation, float, bool, bool, dict[str, Any]]:
        """One control period, as one step of the actor's loop (clipped to [-1, 1], then safety-clipped)."""
        if self._steps is None:
            raise gymnasium.error.ResetNeeded("call reset() before step()")
        normalized = self._checked(action)
        executed = self.robot.send_action(self.robot_spec.denormalize_action(normalized))
        observation = self.robot.get_observation()
        reward, terminated = self.task.reward(observation)
        self._steps += 1
        truncated = not terminated and self._steps >= self.task.max_steps  # the loop's step limit
        info = {
            "success": bool(terminated and reward > 0),  # the loop's rule (ActorLoop._finish)
            "executed_action": self.robot_spec.normalize_action(executed),
        }
        return observation, float(reward), bool(terminated), bool(truncated), info

    def render(self) -> np.ndarray | None:
        """A 320x240 colour frame of the whole scene (the view episode videos show) in "rgb_array" mode, else None."""
        if self.render_mode != "rgb_array":
            return None
        return self.robot.render_view()

    def close(self) -> None:
        """Stop the twin and free its GL contexts and render threads. Idempotent."""
        self.robot.disconnect()

    def _checked(self, action: np.ndarray) -> np.ndarray:
        """`action` as float32 of the action shape. Out-of-range values are clipped later, as Tandem clips
        every action; a wrong shape or a NaN/Inf is refused (the actor treats a non-finite policy output as
        a policy error, never as an action to execute)."""
        array = np.asarray(action, dtype=np.float32)
        if array.shape != self.action_space.shape:
            raise ValueError(f"action shape {array.shape} != {self.action_space.shape}")
        if not np.all(np.isfinite(array)):
            raise ValueError(f"action contains NaN or Inf: {array}")
        return array


def observation_space(spec: RobotSpec, float_bound: float = STATE_BOUND) -> spaces.Dict:
    """A Dict space with one Box per observation key of `spec`."""
    return spaces.Dict({key: box(array_spec, float_bound) for key, array_spec in spec.observation.items()})


def box(spec: ArraySpec, float_bound: float = np.inf) -> spaces.Box:
    """The Box for one array spec: its bounds if bounded, the dtype's range if integer (uint8 images: 0..255),
    +-`float_bound` if float (Tandem's ArraySpec carries no bounds)."""
    dtype = np.dtype(spec.dtype)
    if isinstance(spec, BoundedSpec):
        return spaces.Box(spec.low_array, spec.high_array, dtype=dtype)
    if dtype.kind == "f":
        return spaces.Box(-float_bound, float_bound, shape=spec.shape, dtype=dtype)
    if dtype.kind in "iu":
        limits = np.iinfo(dtype)
        return spaces.Box(limits.min, limits.max, shape=spec.shape, dtype=dtype)
    raise ValueError(f"{spec.name}: no gymnasium Box for dtype {spec.dtype}")


def env_ids() -> list[str]:
    """Every id `register_envs` registers, state then image variant per twin-and-task pair."""
    return [env_id(name, image) for name in TWIN_TASKS for image in (False, True)]


def env_id(name: str, image: bool = False) -> str:
    return f"{NAMESPACE}/{name}{IMAGE_SUFFIX if image else ''}-v{VERSION}"


def register_envs() -> None:
    """Register every twin-and-task pair (state and image observations) with gymnasium. Idempotent."""
    for name, (robot, task) in TWIN_TASKS.items():
        max_steps = ROBOTS.get(robot)(task=task).task.max_steps  # the twin's default episode length
        for image in (False, True):
            if env_id(name, image) in gymnasium.registry:
                continue
            gymnasium.register(
                id=env_id(name, image),
                entry_point=f"{__name__}:TandemEnv",
                max_episode_steps=max_steps,
                kwargs={"robot": robot, "task": task, "observation": "image" if image else "state"},
            )


register_envs()
