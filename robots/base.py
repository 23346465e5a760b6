"""The Robot, Camera and Task interfaces every driver, simulated twin and fake implements.

A robot's `spec` is valid before `connect()`. `send_action` takes an action in physical units, passes
it through the safety layer, and returns what was actually executed, which is what the replay stores.
Reward and episode end live in a `Task`, never in the driver.
"""

from __future__ import annotations

import abc
from typing import Any

import numpy as np

from common.registry import Registry
from common.specs import ImageSpec, RobotSpec
from common.types import Observation


class RobotError(RuntimeError):
    """A robot could not do what was asked (not connected, peer silent, fault)."""


class Robot(abc.ABC):
    """A robot (real, simulated or fake) behind one small interface."""

    @property
    @abc.abstractmethod
    def spec(self) -> RobotSpec:
        """Observation and action spec; available before connect()."""

    @abc.abstractmethod
    def connect(self) -> None:
        """Open the link; state becomes readable, motion stays disabled until enable()."""

    @abc.abstractmethod
    def enable(self) -> None:
        """Allow motion."""

    @abc.abstractmethod
    def reset(self) -> Observation:
        """Bring the robot to its start configuration (for sim: new episode) and return an observation."""

    @abc.abstractmethod
    def get_observation(self) -> Observation:
        """The latest observation, validated against spec.observation."""

    @abc.abstractmethod
    def send_action(self, action: np.ndarray) -> np.ndarray:
        """Command `action` (physical units) after safety clipping; return the executed action."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop all motion now. Idempotent, thread-safe, callable from a signal handler's thread."""

    @abc.abstractmethod
    def disconnect(self) -> None:
        """Stop and close the link. Idempotent."""

    def __enter__(self) -> "Robot":
        self.connect()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        try:
            self.stop()
        finally:
            self.disconnect()


class Camera(abc.ABC):
    """A camera that keeps only its newest frame."""

    @property
    @abc.abstractmethod
    def spec(self) -> ImageSpec:
        """Shape of the frames read_latest returns."""

    @abc.abstractmethod
    def connect(self) -> None:
        """Open the device; fail fast if it is missing."""

    @abc.abstractmethod
    def read_latest(self, max_age_ms: float) -> np.ndarray:
        """The newest frame (uint8 HxWxC); raises RobotError if it is older than max_age_ms."""

    @abc.abstractmethod
    def disconnect(self) -> None:
        """Release the device. Idempotent."""


class Task(abc.ABC):
    """Reward and episode end for one task, kept out of the driver. Operator keys may override it."""

    max_steps: int = 100
    end_reason: str = ""
    """Why the episode ended, once `reward` returned terminated: "success" or the failure's name ("wrong_side",
    "ball_left_arena", ...). The actor puts it in the episode's summary (episodes.csv's `end`), so a failing run
    says how it fails; "" if the task does not say."""

    @abc.abstractmethod
    def reset(self, robot: Robot) -> Observation:
        """Start an episode on `robot` (place objects, reset the robot) and return the first observation."""

    @abc.abstractmethod
    def reward(self, observation: Observation) -> tuple[float, bool]:
        """(reward, terminated) for arriving in `observation`."""

    def operator_label(self, success: bool) -> tuple[float, bool]:
        """(reward, terminated) the task's own detection gives a success or failure; used for operator labels."""
        return (1.0, True) if success else (0.0, True)


# name -> factory(**options) -> Robot. Drivers and twins register themselves here.
ROBOTS: Registry = Registry("robot")


def is_simulated(name: str) -> bool:
    """Whether the registered robot `name` is simulated (a twin, the fake): built, not connected, for its spec."""
    return ROBOTS.get(name)().spec.metadata.get("simulated") == "true"
