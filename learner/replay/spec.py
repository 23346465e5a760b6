"""What an algorithm asks replay for: the sampling spec. Lives here (not in `learner/algorithms/`) so that
replay owns sampling and imports nothing from the algorithms.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SamplingSpec:
    """What one update consumes from replay.

    `horizon == 1` gives transitions. `horizon > 1` gives h-step sequences starting at the sampled row,
    following the same actor's episode and never crossing its end: the batch then carries per-step
    columns of shape (B, h, ...) plus `extras["valid"]` (B, h), `extras["n_step_return"]` (B,): the
    discounted reward sum over the valid steps, `extras["bootstrap"]` (B,): gamma^k if the sequence's
    last valid step did not terminate (multiply the target critic by it), and `next_observation` is the
    observation after the last valid step. `returns_to_go` adds `extras["mc_return"]` per row, computed
    over the row's whole episode; rows of an episode still running are then not sampled.
    """

    batch_size: int
    horizon: int = 1
    demo_ratio: float = 0.5
    gamma: float = 0.99
    returns_to_go: bool = False

    def __post_init__(self) -> None:
        if self.batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {self.batch_size}")
        if self.horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {self.horizon}")
        if not 0.0 <= self.demo_ratio <= 1.0:
            raise ValueError(f"demo_ratio must be in [0, 1], got {self.demo_ratio}")
        if not 0.0 < self.gamma <= 1.0:
            raise ValueError(f"gamma must be in (0, 1], got {self.gamma}")
