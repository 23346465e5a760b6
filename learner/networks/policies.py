"""The tanh-Gaussian policy network shared by the learner and the actor."""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch import nn

from learner.networks.distributions import TanhGaussian
from learner.networks.encoders import ObservationEncoder
from learner.networks.mlp import MLP


class TanhGaussianPolicy(nn.Module):
    """encoder -> MLP trunk -> (mean, log_std) with a state-dependent std; actions in [-1, 1].

    The learner passes the critic's encoder in (shared, DrQ style) and feeds `distribution` detached
    features; the actor builds its own copy via the algorithm's `make_policy` and calls `act`.
    """

    def __init__(
        self,
        encoder: ObservationEncoder,
        action_dim: int,
        hidden_dims: Sequence[int] = (256, 256),
        log_std_min: float = -20.0,
        log_std_max: float = 2.0,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        # RLPD's actor has no LayerNorm; only its critics do.
        self.trunk = MLP(encoder.out_dim, hidden_dims)
        self.head = nn.Linear(self.trunk.out_dim, 2 * action_dim)
        self.log_std_min = log_std_min
        self.log_std_max = log_std_max

    def distribution(self, features: torch.Tensor) -> TanhGaussian:
        """The action distribution for already-encoded observations."""
        mean, log_std = self.head(self.trunk(features)).chunk(2, dim=-1)
        return TanhGaussian(mean, log_std.clamp(self.log_std_min, self.log_std_max))

    def forward(self, observation: Mapping[str, torch.Tensor]) -> TanhGaussian:
        return self.distribution(self.encoder(observation))

    @torch.no_grad()
    def act(
        self,
        observation: Mapping[str, torch.Tensor],
        deterministic: bool,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Batch-first actions in [-1, 1]: tanh(mean) if `deterministic`, else a sample."""
        dist = self(observation)
        if deterministic:
            return dist.deterministic_action()
        return dist.sample(generator)[0]

    def head_parameters(self) -> list[nn.Parameter]:
        """Parameters the actor loss trains (everything except the shared encoder)."""
        return [*self.trunk.parameters(), *self.head.parameters()]
