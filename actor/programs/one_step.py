"""Program "one_step": the module acts once per control step (every algorithm's default)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import torch

from actor.programs.base import PROGRAMS, NetworkProgram, ProgramConfig, batch_of_one
from common.types import Observation


@runtime_checkable
class OneStepModule(Protocol):
    """What "one_step" needs from the module."""

    def act(self, observation: dict[str, torch.Tensor], deterministic: bool) -> torch.Tensor:
        """(B, d) actions in [-1, 1] for a batch of observations."""


@PROGRAMS.register("one_step")
class OneStep(NetworkProgram):
    """`module.act(observation, deterministic)` every step; settings: `ProgramConfig` (deterministic)."""

    Config = ProgramConfig
    Module = OneStepModule

    def _next_action(self, observation: Observation, deterministic: bool) -> np.ndarray:
        self.step_kind = "forward"
        return self.module.act(batch_of_one(observation), deterministic=deterministic)[0].numpy()
