"""The SigEnt-SAC paper's training diagnostics, measured on the learner's own batches.

* Q-value oscillation: the standard deviation of the batch-mean Q over a sliding window of updates
  (the paper's Fig. 1/4 "training oscillation"); a stable critic drifts slowly, an unstable one jumps.
* OOD action ratio (Fig. 2): the fraction of the policy's mean actions, at the batch's states, that
  lie farther than 0.3 from EVERY demonstration action in the batch, with Eq. 3's distance
  sqrt((1/d) ||a - a_e||^2).
"""

from __future__ import annotations

import math
from collections import deque

import torch

from common.types import Batch
from learner.algorithms.base import Algorithm

OOD_THRESHOLD = 0.3


def ood_action_ratio(mean_action: torch.Tensor, demo_action: torch.Tensor, threshold: float = OOD_THRESHOLD) -> float:
    """Fraction of rows of `mean_action` (B, d) whose RMS distance to every row of `demo_action` exceeds threshold."""
    if demo_action.shape[0] == 0 or mean_action.shape[0] == 0:
        return math.nan
    squared = torch.cdist(mean_action.float(), demo_action.float()).square() / mean_action.shape[-1]
    nearest = squared.min(dim=1).values
    return float((nearest > threshold**2).float().mean())


class QOscillation:
    """Standard deviation of the last `window` batch-mean Q values."""

    def __init__(self, window: int = 50) -> None:
        self.values: deque[float] = deque(maxlen=window)

    def add(self, q_mean: float) -> float:
        """Record one update's mean Q; returns the oscillation over the window so far (0 for one value)."""
        self.values.append(q_mean)
        if len(self.values) < 2:
            return 0.0
        mean = sum(self.values) / len(self.values)
        return math.sqrt(sum((v - mean) ** 2 for v in self.values) / (len(self.values) - 1))


class Diagnostics:
    """Adds `q_oscillation` every update and `ood_action_ratio` every `ood_every` updates to the metrics."""

    def __init__(self, window: int = 50, ood_every: int = 10) -> None:
        self.oscillation = QOscillation(window)
        self.ood_every = ood_every
        self._count = 0
        self._last_ood = math.nan

    @torch.no_grad()
    def measure(self, algorithm: Algorithm, batch: Batch, metrics: dict[str, float]) -> dict[str, float]:
        """The diagnostics after one update on `batch` (whose metrics are `metrics`)."""
        self._count += 1
        found = {}
        if "q_mean" in metrics:
            found["q_oscillation"] = self.oscillation.add(metrics["q_mean"])
        if self._count % self.ood_every == 1 or self.ood_every == 1:
            mean_action = algorithm.mean_action(batch.observation)
            if mean_action is not None:
                demo = batch.is_demo > 0.5
                action = batch.action[:, 0] if batch.action.dim() == 3 else batch.action  # sequences: first step
                self._last_ood = ood_action_ratio(mean_action, action.reshape(batch.size, -1)[demo])
        found["ood_action_ratio"] = self._last_ood
        return found
