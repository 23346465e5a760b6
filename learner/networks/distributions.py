"""The tanh-squashed diagonal Gaussian used by every SAC-family actor.

`u = mean + std * eps`, `a = tanh(u)`, and
`log pi(a) = sum_i [log N(u_i; mean_i, std_i) - log(1 - tanh(u_i)^2)]`.
Per-dimension log-probabilities are kept available because some algorithms (SigEnt-SAC) weight
each dimension's surprisal separately.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LOG_2 = math.log(2.0)
HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
# Scoring a given action needs atanh(a); actions at exactly +-1 would give infinite u.
ACTION_CLIP = 1.0 - 1e-6


def log_one_minus_tanh_sq(u: torch.Tensor) -> torch.Tensor:
    """log(1 - tanh(u)^2), computed as 2(log 2 - u - softplus(-2u)) so it stays exact for large |u|.

    The naive `log(1 - tanh(u)^2 + eps)` saturates at log(eps) once tanh rounds to 1, which biases
    the entropy estimate of near-deterministic policies.
    """
    return 2.0 * (LOG_2 - u - F.softplus(-2.0 * u))


class TanhGaussian:
    """A batch of independent tanh-squashed Gaussians over the last dimension."""

    def __init__(self, mean: torch.Tensor, log_std: torch.Tensor) -> None:
        self.mean = mean
        self.log_std = log_std

    @property
    def std(self) -> torch.Tensor:
        return self.log_std.exp()

    def deterministic_action(self) -> torch.Tensor:
        """tanh(mean): the action an evaluation episode executes."""
        return torch.tanh(self.mean)

    def rsample(self, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """A reparameterised sample: (action, per-dimension log-prob), both shaped like `mean`."""
        eps = torch.randn(self.mean.shape, generator=generator, device=self.mean.device, dtype=self.mean.dtype)
        u = self.mean + self.std * eps
        # On the sample path (u - mean) / std is exactly eps, so use it rather than recomputing.
        gaussian = -0.5 * eps.square() - self.log_std - HALF_LOG_2PI
        return torch.tanh(u), gaussian - log_one_minus_tanh_sq(u)

    def sample(self, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Like `rsample` but returns (action, joint log-prob summed over dimensions)."""
        action, log_prob = self.rsample(generator)
        return action, log_prob.sum(-1)

    def log_prob_per_dim(self, action: torch.Tensor) -> torch.Tensor:
        """Per-dimension log-density of a GIVEN action in (-1, 1) (clipped to +-(1 - 1e-6) first)."""
        u = torch.atanh(action.clamp(-ACTION_CLIP, ACTION_CLIP))
        z = (u - self.mean) * torch.exp(-self.log_std)
        return -0.5 * z.square() - self.log_std - HALF_LOG_2PI - log_one_minus_tanh_sq(u)

    def log_prob(self, action: torch.Tensor) -> torch.Tensor:
        """Joint log-density of a given action (summed over the last dimension)."""
        return self.log_prob_per_dim(action).sum(-1)
