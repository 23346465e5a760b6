"""Program "gated": two policies propose an action each; the one their value functions rate higher runs.

Q2RL's acting rule: a_BC scored by the frozen Q_BC, a_RL by the min over the Q_RL ensemble, and a_RL runs
only if it scores strictly higher (a tie keeps the first, the BC proposal). Which one ran is recorded in
the transition's `proposal` column and counted in `tandem_actor_proposal_actions_total`.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import torch

from actor.policy import PolicyOutputError
from actor.programs.base import PROGRAMS, NetworkProgram, ProgramConfig, batch_of_one
from common.types import PROPOSAL_FIRST, PROPOSAL_SECOND, Observation


@runtime_checkable
class GatedModule(Protocol):
    """What "gated" needs from the module."""

    def propose(self, observation: dict[str, torch.Tensor], deterministic: bool) -> torch.Tensor:
        """(B, 2, d): the first (e.g. BC) and the second (e.g. RL) policy's action for each observation."""

    def value(self, observation: dict[str, torch.Tensor], proposals: torch.Tensor) -> torch.Tensor:
        """(B, 2): each proposal's value under its own policy's value function."""


@PROGRAMS.register("gated")
class Gated(NetworkProgram):
    """Runs the higher-valued of two proposals every step; settings: `ProgramConfig` (deterministic)."""

    Config = ProgramConfig
    Module = GatedModule

    def _next_action(self, observation: Observation, deterministic: bool) -> np.ndarray:
        self.step_kind = "forward"
        batch = batch_of_one(observation)
        proposals = self.module.propose(batch, deterministic=deterministic)
        values = self.module.value(batch, proposals)[0].numpy()
        if values.shape != (2,) or not np.all(np.isfinite(values)):
            raise PolicyOutputError(f"policy v{self.version} valued its proposals {values}")
        checked = self._checked_chunk(proposals, 2)  # both checked: a broken network stops the robot, chosen or not
        self.proposal = PROPOSAL_SECOND if values[1] > values[0] else PROPOSAL_FIRST
        return checked[self.proposal]
