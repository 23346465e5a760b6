"""What an algorithm asks replay for: the sampling spec. Lives here (not in `learner/algorithms/`) so that
replay owns sampling and imports nothing from the algorithms.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SamplingSpec:
    """What one update consumes from replay.

    Start rows are drawn uniformly from the demo and online buffers, `round(batch_size * demo_ratio)` of
    them from the demo buffer (all from one buffer if the other has no row to offer); demo rows come first.

    `horizon == 1` gives transitions: every column has shape (B, ...).

    `horizon == h > 1` gives h-step sequences that start at the drawn row and follow the same actor's
    episode step by step, never crossing its end:
    - `observation` (B, ...) is the first step's; `next_observation` (B, ...) is the one after the last
      valid step (the bootstrap state). Observations of the steps in between are not gathered.
    - `action`, `reward`, `terminated` and `extras["intervention"]` are per step, (B, h, ...). Steps
      after the last valid one repeat the last valid step's row: mask them with `valid`.
    - No other stored column is carried: the bookkeeping no update reads (`truncated`, `episode`,
      `step`, `policy_version`, `evaluation`, `proposal`, any extra column) is in transition batches
      only. (Gathering it, even for the first step alone, cost ~10% of a state sequence batch.)
    - `extras["valid"]` (B, h) float32: 1 for the first step and each step that follows it in the same
      episode, up to and including the episode's last step; 0 after it, and 0 from the first step that
      is not in replay (not arrived yet, or lost).
    - `extras["n_step_return"]` (B,): sum_k gamma^k r_k over the valid steps.
    - `extras["bootstrap"]` (B,): gamma^n (n = the number of valid steps) if the last valid step did not
      terminate, else 0. This holds however the sequence stopped (complete, the episode truncated, the
      next step not stored yet), because a stored row's `next_observation` is always the true next state:
      the target is `n_step_return + bootstrap * V(next_observation)`.
    - An operator intervention does not end a sequence (the episode goes on and the actions were really
      executed); the per-step `extras["intervention"]` says which steps the operator chose, so an
      algorithm can mask or weight them.

    `returns_to_go` adds `extras["mc_return"]` (B,): the first step's discounted return to the end of
    its episode, from the rewards as stored (see `learner.replay.returns`); rows of an episode still
    running are then not drawn.
    """

    batch_size: int
    """Rows (transitions or sequences) per batch."""
    horizon: int = 1
    """1: transitions; h > 1: h-step sequences."""
    demo_ratio: float = 0.5
    """Fraction of the batch drawn from the demo buffer."""
    gamma: float = 0.99
    """Discount of n_step_return, bootstrap and mc_return (replay computes returns with its own gamma)."""
    returns_to_go: bool = False
    """Add extras["mc_return"] and draw only rows of finished episodes."""
    full_sequences: bool = False
    """Draw only start rows whose h steps are all valid (Q-chunking); default False masks with `valid` (ALOE)."""

    def __post_init__(self) -> None:
        if self.batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {self.batch_size}")
        if self.horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {self.horizon}")
        if not 0.0 <= self.demo_ratio <= 1.0:
            raise ValueError(f"demo_ratio must be in [0, 1], got {self.demo_ratio}")
        if not 0.0 < self.gamma <= 1.0:
            raise ValueError(f"gamma must be in (0, 1], got {self.gamma}")
