"""Program "ensembled": a frozen base chunk policy's action combined with a learned one-step policy's.

CSIL++'s acting rule: the base (e.g. a VLA) plans a chunk every `every` steps, whose first `every`
actions are queued as in "chunked"; each step the learned policy acts on the newest observation, and
the executed action is their mean (`combine="mean"`) or their sum (`"residual"`), clipped to [-1, 1].
The queue is cleared like a chunk's, and new weights take over only at a base re-plan.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from actor.programs.base import PROGRAMS, NetworkProgram, ProgramConfig, batch_of_one
from common.types import Observation

COMBINE = ("mean", "residual")


@runtime_checkable
class EnsembleModule(Protocol):
    """What "ensembled" needs from the module."""

    base_chunk_length: int  # actions one base plan proposes

    def act_base_chunk(self, observation: dict[str, torch.Tensor], deterministic: bool) -> torch.Tensor:
        """(B, h, d) actions in [-1, 1] planned by the frozen base policy."""

    def act(self, observation: dict[str, torch.Tensor], deterministic: bool) -> torch.Tensor:
        """(B, d) actions in [-1, 1] of the learned policy."""


@dataclass(frozen=True)
class EnsembledConfig(ProgramConfig):
    """Settings of "ensembled"."""

    every: int = 1
    """Steps between base re-plans; each plan's first `every` actions are used (1 <= every <= base_chunk_length)."""
    combine: str = "mean"
    """How the base and learned actions combine: "mean" (ensemble) or "residual" (their sum)."""

    def __post_init__(self) -> None:
        if self.combine not in COMBINE:
            raise ValueError(f"ensembled: combine must be one of {COMBINE}, got {self.combine!r}")


@PROGRAMS.register("ensembled")
class Ensembled(NetworkProgram):
    """Base chunk action (re-planned every `every` steps) combined with the learned policy's action."""

    Config = EnsembledConfig
    Module = EnsembleModule

    def __init__(self, module: torch.nn.Module, spec, version: int, config: EnsembledConfig) -> None:
        super().__init__(module, spec, version, config)
        if not 1 <= config.every <= module.base_chunk_length:
            raise ValueError(f"ensembled: every must be in [1, {module.base_chunk_length}], got {config.every}")
        self.queue: collections.deque[np.ndarray] = collections.deque()

    def _next_action(self, observation: Observation, deterministic: bool) -> np.ndarray:
        batch = batch_of_one(observation)
        self.step_kind = "forward" if self.queue else "replan"
        if not self.queue:
            chunk = self.module.act_base_chunk(batch, deterministic=deterministic)
            self.queue.extend(self._checked_chunk(chunk, self.module.base_chunk_length)[: self.config.every])
        base = self.queue.popleft()
        learned = self._checked(self.module.act(batch, deterministic=deterministic))
        return base + learned if self.config.combine == "residual" else 0.5 * (base + learned)

    def interrupt(self) -> None:
        self.queue.clear()

    @property
    def mid_chunk(self) -> bool:
        return bool(self.queue)
