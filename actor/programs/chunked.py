"""Program "chunked": the module plans h actions at once; the actor executes the first e, then re-plans.

The e planned actions wait in a queue. It is cleared at the episode's end, when the operator takes over
and on pause or e-stop (`interrupt`), so a stale plan never resumes in a world that moved on. New
weights take over only once the queue is empty (the loop asks `mid_chunk`), never in the middle of one.
A re-plan runs synchronously in the control step that needs it: the plan must start from the newest
observation, and a small network's plan costs far less than a control period (benchmarks/policy_programs.py).
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from actor.programs.base import PROGRAMS, NetworkProgram, ProgramConfig, batch_of_one
from common.types import Observation


@runtime_checkable
class ChunkModule(Protocol):
    """What "chunked" needs from the module."""

    chunk_length: int  # h, the number of actions one plan proposes

    def act_chunk(self, observation: dict[str, torch.Tensor], deterministic: bool) -> torch.Tensor:
        """(B, h, d) planned actions in [-1, 1] for a batch of observations."""


@dataclass(frozen=True)
class ChunkedConfig(ProgramConfig):
    """Settings of "chunked"."""

    execute: int = 1
    """Actions executed from each chunk before re-planning (1 <= execute <= the module's chunk_length)."""


@PROGRAMS.register("chunked")
class Chunked(NetworkProgram):
    """Plans `chunk_length` actions, executes the first `execute` from a queue, then plans again."""

    Config = ChunkedConfig
    Module = ChunkModule

    def __init__(self, module: torch.nn.Module, spec, version: int, config: ChunkedConfig) -> None:
        super().__init__(module, spec, version, config)
        if not 1 <= config.execute <= module.chunk_length:
            raise ValueError(f"chunked: execute must be in [1, {module.chunk_length}], got {config.execute}")
        self.queue: collections.deque[np.ndarray] = collections.deque()

    def _next_action(self, observation: Observation, deterministic: bool) -> np.ndarray:
        self.step_kind = "queued" if self.queue else "replan"
        if not self.queue:
            chunk = self.module.act_chunk(batch_of_one(observation), deterministic=deterministic)
            self.queue.extend(self._checked_chunk(chunk, self.module.chunk_length)[: self.config.execute])
        return self.queue.popleft()

    def interrupt(self) -> None:
        self.queue.clear()

    @property
    def mid_chunk(self) -> bool:
        return bool(self.queue)
