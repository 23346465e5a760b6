"""A dependency-free, deterministic robot for tests and CLI smoke runs.

A point in the plane whose velocity is the action: `state = [x, y, vx, vy]`, and each `send_action`
integrates one control period (1 / control_hz seconds), independent of wall time. `FakeTask` rewards
reaching a small disc ahead of the start. Same seed, same actions -> same observations.

`image_size=S` adds a camera: a uint8[S, S, 1] top view of the plane with the robot a bright square on a
textured floor, so transport and ingest can be measured with image-sized transitions and no renderer.
"""

from __future__ import annotations

import numpy as np

from common.specs import ArraySpec, BoundedSpec, ImageSpec, RobotSpec
from common.types import Observation
from robots.base import ROBOTS, Robot, Task
from robots.driver_kit import GuardedRobot
from robots.lifecycle import Lifecycle
from robots.safety import ActionSafety

FAKE_CONTROL_HZ = 50.0
CAMERA_VIEW_M = 1.0  # the camera image spans [-CAMERA_VIEW_M, CAMERA_VIEW_M] in x and y


class FakeTask(Task):
    """Reward 1 and terminate when the fake robot's position is inside the goal disc."""

    def __init__(self, goal=(0.3, 0.0), goal_radius: float = 0.1, max_steps: int = 20) -> None:
        if max_steps <= 0:
            raise ValueError(f"max_steps must be positive, got {max_steps}")
        self.goal = np.asarray(goal, dtype=np.float32)
        self.goal_radius = float(goal_radius)
        self.max_steps = int(max_steps)

    def reset(self, robot: Robot) -> Observation:
        return robot.reset()

    def reward(self, observation: Observation) -> tuple[float, bool]:
        position = observation["state"][:2]
        reached = float(np.linalg.norm(position - self.goal)) <= self.goal_radius
        return (1.0, True) if reached else (0.0, False)


@ROBOTS.register("fake")
class FakeRobot(GuardedRobot):
    """A seeded point robot: observation {"state": float32[4]} (and "image" with `image_size`), action 2-d
    velocity in [-1, 1]."""

    def __init__(self, *, seed: int = 0, max_steps: int = 20, start_jitter: float = 0.05, image_size: int = 0) -> None:
        if image_size < 0 or 0 < image_size < 8:
            raise ValueError(f"image_size must be 0 (no camera) or at least 8 pixels, got {image_size}")
        observation = {"state": ArraySpec("state", (4,), "float32")}
        if image_size:
            observation["image"] = ImageSpec("image", (image_size, image_size, 1))
        self._spec = RobotSpec(
            name="fake",
            observation=observation,
            action=BoundedSpec("action", (2,), "float32", low=(-1.0, -1.0), high=(1.0, 1.0)),
            control_hz=FAKE_CONTROL_HZ,
            metadata={"simulated": "true"},
        )
        self.task = FakeTask(max_steps=max_steps)
        self.safety = ActionSafety(self._spec.action)
        self._lifecycle = Lifecycle("fake")
        self._rng = np.random.default_rng(seed)
        self._start_jitter = float(start_jitter)
        self._position = np.zeros(2, dtype=np.float32)
        self._velocity = np.zeros(2, dtype=np.float32)
        self._floor = _floor_texture(image_size, self._rng) if image_size else None
        self.stop_count = 0  # how many times stop() halted motion (tests read it)

    def connect(self) -> None:
        self._lifecycle.connect()

    def enable(self) -> None:
        self._lifecycle.enable()

    def reset(self) -> Observation:
        with self._lifecycle.lock:
            self._lifecycle.require_connected("reset")
            jitter = self._rng.uniform(-self._start_jitter, self._start_jitter, size=2)
            self._position = jitter.astype(np.float32)
            self._velocity = np.zeros(2, dtype=np.float32)
            return self._observe()

    def stop(self) -> None:
        with self._lifecycle.lock:
            self._velocity = np.zeros(2, dtype=np.float32)
            self.stop_count += 1

    def disconnect(self) -> None:
        with self._lifecycle.lock:
            self.stop()
            self._lifecycle.disconnect()

    def _execute(self, action: np.ndarray) -> np.ndarray:
        self._velocity = action.astype(np.float32)
        self._position = (self._position + self._velocity / FAKE_CONTROL_HZ).astype(np.float32)
        return action

    def _observe(self) -> Observation:
        observation = {"state": np.concatenate([self._position, self._velocity]).astype(np.float32)}
        if self._floor is not None:
            observation["image"] = self._camera_image()
        return observation

    def _camera_image(self) -> np.ndarray:
        """The floor with the robot as a white square (a fresh array: observations must not alias)."""
        image = self._floor.copy()
        size = image.shape[0]
        pixel = np.clip((self._position / CAMERA_VIEW_M + 1.0) * 0.5 * size, 0, size - 1).astype(int)
        half = max(1, size // 32)
        row, column = size - 1 - pixel[1], pixel[0]  # image rows grow downwards, y upwards
        image[max(0, row - half):row + half + 1, max(0, column - half):column + half + 1] = 255
        return image


def _floor_texture(size: int, rng: np.random.Generator) -> np.ndarray:
    """A seeded grey texture, so images are not trivially compressible, as a camera's are not."""
    return rng.integers(40, 120, size=(size, size, 1), dtype=np.uint8)
