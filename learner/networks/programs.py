"""Reference networks for the actor's chunked, gated and ensembled policy programs (actor/programs).

Each follows the Protocol its program documents, built from the shared blocks (observation encoder,
tanh-Gaussian policy, critic ensemble). The seed algorithms may use them or bring their own (a flow-
matching chunk policy, a Q_BC of V + log pi + H); the benchmark and the program tests run these.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch import nn

from common.specs import ArraySpec
from learner.networks.encoders import ObservationEncoder
from learner.networks.ensemble import CriticEnsemble
from learner.networks.policies import TanhGaussianPolicy

Observation = Mapping[str, torch.Tensor]


class ChunkPolicy(nn.Module):
    """A tanh-Gaussian policy over a whole chunk: (B, chunk_length, action_dim) actions in [-1, 1]."""

    def __init__(self, observation_specs: Mapping[str, ArraySpec], action_dim: int, chunk_length: int,
                 hidden_dims: Sequence[int] = (256, 256)) -> None:  # fmt: skip
        super().__init__()
        self.chunk_length = chunk_length
        self.policy = TanhGaussianPolicy(ObservationEncoder(observation_specs), action_dim * chunk_length, hidden_dims)

    @torch.no_grad()
    def act_chunk(self, observation: Observation, deterministic: bool) -> torch.Tensor:
        flat = self.policy.act(observation, deterministic)
        return flat.reshape(flat.shape[0], self.chunk_length, -1)


class GatedPolicies(nn.Module):
    """Two policies, each valued by its own critic (Q2RL's shape): the first (BC) by a single frozen critic,
    the second (RL) by the min over an ensemble of `num_critics`."""

    def __init__(self, observation_specs: Mapping[str, ArraySpec], action_dim: int,
                 hidden_dims: Sequence[int] = (256, 256), num_critics: int = 2) -> None:  # fmt: skip
        super().__init__()
        self.first = TanhGaussianPolicy(ObservationEncoder(observation_specs), action_dim, hidden_dims)
        self.second = TanhGaussianPolicy(ObservationEncoder(observation_specs), action_dim, hidden_dims)
        self.encoder = ObservationEncoder(observation_specs)
        self.first_critic = CriticEnsemble(1, self.encoder.out_dim, action_dim, hidden_dims)
        self.second_critic = CriticEnsemble(num_critics, self.encoder.out_dim, action_dim, hidden_dims)

    @torch.no_grad()
    def propose(self, observation: Observation, deterministic: bool) -> torch.Tensor:
        first, second = self.first.act(observation, deterministic), self.second.act(observation, deterministic)
        return torch.stack([first, second], dim=1)

    @torch.no_grad()
    def value(self, observation: Observation, proposals: torch.Tensor) -> torch.Tensor:
        features = self.encoder(observation)
        first = self.first_critic(features, proposals[:, 0]).min(dim=0).values
        second = self.second_critic(features, proposals[:, 1]).min(dim=0).values
        return torch.stack([first, second], dim=1)


class EnsembledPolicies(nn.Module):
    """A frozen base chunk policy (CSIL++'s VLA stand-in) beside a learned one-step policy."""

    def __init__(self, observation_specs: Mapping[str, ArraySpec], action_dim: int, base_chunk_length: int,
                 hidden_dims: Sequence[int] = (256, 256)) -> None:  # fmt: skip
        super().__init__()
        self.base = ChunkPolicy(observation_specs, action_dim, base_chunk_length, hidden_dims)
        self.learned = TanhGaussianPolicy(ObservationEncoder(observation_specs), action_dim, hidden_dims)

    @property
    def base_chunk_length(self) -> int:
        return self.base.chunk_length

    @torch.no_grad()
    def act_base_chunk(self, observation: Observation, deterministic: bool) -> torch.Tensor:
        return self.base.act_chunk(observation, deterministic)

    @torch.no_grad()
    def act(self, observation: Observation, deterministic: bool) -> torch.Tensor:
        return self.learned.act(observation, deterministic)
