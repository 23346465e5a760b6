"""A flow-matching policy over action chunks (ALOE's actor, a small stand-in for pi_0.5's action head).

A velocity field f(x, eta, s) moves a noise chunk x(0) = eps ~ N(0, I) to an action chunk x(1) along the
straight path x(eta) = eta a + (1 - eta) eps, whose velocity is a - eps; sampling integrates it with a
fixed number of Euler steps. The flow-matching error ||a - eps - f(x(eta), eta, s)||^2 is the surrogate
for -log pi(a|s) (ALOE Eq. 15; the paper writes the target as eps - a, the same loss for f of opposite
sign). `distribution(features)` is the chunk distribution at already-encoded observations, so the
learner can feed it the shared encoder's features detached, as it does for the tanh-Gaussian actors.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch import nn

from learner.networks.encoders import ObservationEncoder
from learner.networks.mlp import MLP


class ChunkFlow:
    """The chunk distribution a flow policy defines at a batch of encoded observations."""

    def __init__(self, policy: "FlowChunkPolicy", features: torch.Tensor) -> None:
        self.policy = policy
        self.features = features

    def sample(self, generator: torch.Generator | None = None, deterministic: bool = False) -> torch.Tensor:
        """(B, h, d) chunks in [-1, 1]: Euler steps of the flow from noise (from the zero chunk if deterministic)."""
        policy, features = self.policy, self.features
        shape = (features.shape[0], policy.chunk_length, policy.action_dim)
        x = torch.zeros(shape, device=features.device, dtype=features.dtype)
        if not deterministic:
            x = torch.randn(shape, generator=generator, device=features.device, dtype=features.dtype)
        step = 1.0 / policy.flow_steps
        for k in range(policy.flow_steps):
            eta = torch.full((shape[0],), k * step, device=features.device, dtype=features.dtype)
            x = x + step * policy.velocity(features, x, eta)
        return x.clamp(-1.0, 1.0)  # the flow ends near the data's [-1, 1]; clamping keeps every action in range

    def matching_error(self, chunk: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """(B, h) squared flow-matching error per step of data chunks (B, h, d), eta ~ U[0, 1], eps ~ N(0, I)."""
        eps = torch.randn(chunk.shape, generator=generator, device=chunk.device, dtype=chunk.dtype)
        eta = torch.rand((chunk.shape[0],), generator=generator, device=chunk.device, dtype=chunk.dtype)
        noisy = eta.view(-1, 1, 1) * chunk + (1.0 - eta.view(-1, 1, 1)) * eps
        return (chunk - eps - self.policy.velocity(self.features, noisy, eta)).square().sum(-1)


class FlowChunkPolicy(nn.Module):
    """encoder -> velocity MLP over (features, noisy chunk, eta); plans (B, chunk_length, action_dim) chunks.

    Follows the actor's "chunked" program (`chunk_length`, `act_chunk`) and answers `act` with a chunk's
    first action, so any one-step caller (diagnostics, the contract tests) can run it too.
    """

    def __init__(self, encoder: ObservationEncoder, action_dim: int, chunk_length: int, flow_steps: int,
                 hidden_dims: Sequence[int] = (256, 256)) -> None:  # fmt: skip
        super().__init__()
        self.encoder = encoder
        self.action_dim, self.chunk_length, self.flow_steps = action_dim, chunk_length, flow_steps
        flat = action_dim * chunk_length
        self.field = MLP(encoder.out_dim + flat + 1, hidden_dims, flat, layer_norm=True)

    def velocity(self, features: torch.Tensor, noisy: torch.Tensor, eta: torch.Tensor) -> torch.Tensor:
        """f(noisy, eta, s): (B, h, d) for features (B, F), noisy chunks (B, h, d) and flow times (B,)."""
        inputs = torch.cat([features, noisy.flatten(1), eta.unsqueeze(-1)], dim=-1)
        return self.field(inputs).view_as(noisy)

    def distribution(self, features: torch.Tensor) -> ChunkFlow:
        """The chunk distribution at already-encoded observations."""
        return ChunkFlow(self, features)

    def forward(self, observation: Mapping[str, torch.Tensor]) -> ChunkFlow:
        return self.distribution(self.encoder(observation))

    @torch.no_grad()
    def act_chunk(self, observation: Mapping[str, torch.Tensor], deterministic: bool,
                  generator: torch.Generator | None = None) -> torch.Tensor:  # fmt: skip
        """(B, h, d) planned actions in [-1, 1]."""
        return self(observation).sample(generator, deterministic)

    @torch.no_grad()
    def act(self, observation: Mapping[str, torch.Tensor], deterministic: bool,
            generator: torch.Generator | None = None) -> torch.Tensor:  # fmt: skip
        """(B, d): the first action of a planned chunk."""
        return self.act_chunk(observation, deterministic, generator)[:, 0]

    def head_parameters(self) -> list[nn.Parameter]:
        """Parameters the actor loss trains (everything except the shared encoder)."""
        return list(self.field.parameters())
