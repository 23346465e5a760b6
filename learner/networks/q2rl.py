"""Q2RL's networks: the tanh-Gaussian's exact entropy, Eq. 6's Q_BC, and the gated module the actor runs.

Eq. 6 (Dodeja et al. 2026, alpha = 1): Q_BC(s, a) = V(s) + log pi_BC(a|s) + H[pi_BC(.|s)]. It is exact for a
Boltzmann pi_BC only with the exact entropy, in nats, summed over action dimensions: then
E_{a~pi_BC}[Q_BC(s, a)] = V(s). (The public code's first version used 0.5 log2(2 pi e mean_i sigma_i^2),
bits and a mean, roughly |A| times too small; its `fix_logprob_entropy` fixes it.)

The entropy of a tanh-squashed Gaussian has no closed form: H[tanh u] = H[u] + E_u[log(1 - tanh(u)^2)]
(change of variables). The dimensions are independent, so the expectation is one-dimensional per
dimension and Gauss-Hermite quadrature computes it (tests check it against sampling).
"""

from __future__ import annotations

import functools

import math
from typing import Mapping, Sequence

import torch
from torch import nn

from learner.networks.distributions import TanhGaussian, log_one_minus_tanh_sq
from learner.networks.encoders import ObservationEncoder
from learner.networks.ensemble import CriticEnsemble
from learner.networks.mlp import MLP
from learner.networks.policies import TanhGaussianPolicy

Observation = Mapping[str, torch.Tensor]

LOG_PROB_FLOOR = -100.0  # the code's clip(log pi_BC(a|s), -100): a far-off action's Q_BC stays finite
# Gauss-Hermite nodes per dimension. log(1 - tanh^2 u) bends over |u| ~ 1, so wide Gaussians need many nodes:
# against dense numerical integration, 256 nodes err by < 4e-4 nats per dimension at the widest std the
# policies allow (log std 2) and < 1e-8 for std <= 1.6 (48 nodes: 0.04 at log std 2).
HERMITE_NODES = 256


@functools.cache
def standard_normal_rule(count: int = HERMITE_NODES) -> tuple[torch.Tensor, torch.Tensor]:
    """Gauss-Hermite nodes and weights with E_{x~N(0,1)}[f(x)] = sum_k w_k f(x_k) (float64, CPU).

    Golub-Welsch on the probabilists' Hermite recurrence, computed once on first use with torch (whose thread
    count the actor pins to one), not at import: numpy's LAPACK at import time ran in every actor that loads
    the algorithms, and with OpenBLAS threads spinning on a loaded 2-core box it took minutes.
    """
    off_diagonal = torch.arange(1, count, dtype=torch.float64).sqrt()
    jacobi = torch.diag(off_diagonal, 1) + torch.diag(off_diagonal, -1)
    nodes, vectors = torch.linalg.eigh(jacobi)
    return nodes, vectors[0].square()


def tanh_gaussian_entropy(distribution: TanhGaussian) -> torch.Tensor:
    """Exact entropy (nats, summed over dimensions) of a batch of tanh-Gaussians: (B,)."""
    mean, std = distribution.mean, distribution.std
    nodes, weights = (value.to(mean.device, mean.dtype) for value in standard_normal_rule())
    u = mean.unsqueeze(-1) + std.unsqueeze(-1) * nodes  # (B, d, K)
    squash = (log_one_minus_tanh_sq(u) * weights).sum(-1)
    gaussian = 0.5 * math.log(2.0 * math.pi * math.e) + distribution.log_std
    return (gaussian + squash).sum(-1)


def estimated_q_bc(value: torch.Tensor, log_prob: torch.Tensor, entropy: torch.Tensor) -> torch.Tensor:
    """Eq. 6 with alpha = 1: V(s) + log pi_BC(a|s) (floored at -100, as the code) + H[pi_BC(.|s)]."""
    return value + log_prob.clamp(min=LOG_PROB_FLOOR) + entropy


class ValueNetwork(nn.Module):
    """V(s): its own observation encoder, then Dense -> LayerNorm -> ReLU layers and one output."""

    def __init__(self, encoder: ObservationEncoder, hidden_dims: Sequence[int]) -> None:
        super().__init__()
        self.encoder = encoder
        self.mlp = MLP(self.encoder.out_dim, hidden_dims, 1, layer_norm=True)

    def forward(self, observation: Observation) -> torch.Tensor:
        return self.mlp(self.encoder(observation)).squeeze(-1)


class FrozenQBC(nn.Module):
    """Q_BC of Eq. 6 from the BC policy and V: what the gate scores the BC proposal with (never trained online)."""

    def __init__(self, bc_policy: TanhGaussianPolicy, value: ValueNetwork) -> None:
        super().__init__()
        self.policy, self.value = bc_policy, value

    def forward(self, observation: Observation, action: torch.Tensor) -> torch.Tensor:
        distribution = self.policy(observation)
        return estimated_q_bc(self.value(observation), distribution.log_prob(action),
                              tanh_gaussian_entropy(distribution))  # fmt: skip


class Q2RLPolicies(nn.Module):
    """What the actor runs online (program "gated", `actor/programs/gated.py`): the BC policy scored by the
    frozen Q_BC, the RL policy scored by the min over the Q_RL ensemble (which shares the RL policy's encoder,
    as in the learner). Proposal 0 is BC's, 1 is RL's; `act` applies the same rule batch-wise.

    `gate_q_bc=False` scores both proposals by Q_RL (the paper's "No Q-Gating" ablation, Fig. 6).
    """

    def __init__(self, q_bc: FrozenQBC, rl_policy: TanhGaussianPolicy, critic: CriticEnsemble,
                 gate_q_bc: bool = True) -> None:  # fmt: skip
        super().__init__()
        self.q_bc, self.rl_policy, self.critic, self.gate_q_bc = q_bc, rl_policy, critic, gate_q_bc

    @torch.no_grad()
    def propose(self, observation: Observation, deterministic: bool) -> torch.Tensor:
        first = self.q_bc.policy.act(observation, deterministic)
        return torch.stack([first, self.rl_policy.act(observation, deterministic)], dim=1)

    @torch.no_grad()
    def value(self, observation: Observation, proposals: torch.Tensor) -> torch.Tensor:
        features = self.rl_policy.encoder(observation)
        q_rl = self.critic(features, proposals[:, 1]).min(dim=0).values
        if self.gate_q_bc:
            return torch.stack([self.q_bc(observation, proposals[:, 0]), q_rl], dim=1)
        return torch.stack([self.critic(features, proposals[:, 0]).min(dim=0).values, q_rl], dim=1)

    @torch.no_grad()
    def act(self, observation: Observation, deterministic: bool) -> torch.Tensor:
        """(B, d): per row the RL proposal if it is valued strictly higher, else the BC proposal (Eq. 10)."""
        proposals = self.propose(observation, deterministic)
        values = self.value(observation, proposals)
        return torch.where((values[:, 1] > values[:, 0]).unsqueeze(-1), proposals[:, 1], proposals[:, 0])
