"""CSIL's stationary heteroscedastic policy ("HetStat", Watson et al. 2023; google-deepmind/csil sil/networks.py).

    x = MLP(s)                                         ELU, orthogonal init, ends in a narrow bottleneck
    f = [tri(W diag(exp(l)) x + pi/4), tri(W diag(exp(l)) x - pi/4)] / sqrt(width)   periodic features
    mean_d = f . w_d,   var_d = ||L_d^T f||^2,   std_d = sqrt(0.75) tanh(sqrt(MIN_VAR + var_d))
    a = tanh(u),  u ~ N(mean, std^2)

A wide last layer with a periodic activation makes the model stationary (Meronen et al. 2021): far from
the data the features decorrelate from the training states, the mean shrinks toward 0 and the variance
toward its prior, so pi_BC approaches the uniform prior there and the coherent reward log pi_BC - log p
goes to 0 off the data (CSIL++ Sec. III-A, Fig. 2). w_d starts at 0 and L_d at the identity (the code's
FillScaleTriL). The policy is a `TanhGaussian`, so it plugs into every tanh-Gaussian tool Tandem has.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import torch
from torch import nn

from learner.networks.distributions import TanhGaussian
from learner.networks.encoders import ObservationEncoder

MIN_VAR = 1e-5  # the code's variance floor
MAX_STD = math.sqrt(0.75)  # the code's std ceiling: std = MAX_STD * tanh(sqrt(MIN_VAR + var))


def triangle_wave(x: torch.Tensor) -> torch.Tensor:
    """The periodic triangle activation: period 2 pi, range [-1, 1], equal to sin(x) at multiples of pi/2."""
    return 1.0 - 2.0 * torch.abs(2.0 * torch.remainder(x / (2.0 * math.pi) + 0.25, 1.0) - 1.0)


class HetStatPolicy(nn.Module):
    """encoder -> ELU MLP -> stationary periodic features -> tanh-Gaussian with a per-dimension feature-dependent
    variance. Same interface as `TanhGaussianPolicy` (`distribution`, `act`, `head_parameters`, `encoder`)."""

    def __init__(self, encoder: ObservationEncoder, action_dim: int, hidden_dims: Sequence[int] = (256, 256),
                 bottleneck: int = 12, width: int = 256, log_lengthscale: float = 0.0,
                 layer_norm: bool = False) -> None:  # fmt: skip
        super().__init__()
        self.encoder = encoder
        layers: list[nn.Module] = []
        for a, b in zip([encoder.out_dim, *hidden_dims], [*hidden_dims, bottleneck]):
            linear = nn.Linear(a, b)
            nn.init.orthogonal_(linear.weight)
            nn.init.zeros_(linear.bias)
            layers += [linear, *([nn.LayerNorm(b)] if layer_norm else []), nn.ELU()]
        self.trunk = nn.Sequential(*layers[:-1])  # no activation on the bottleneck, as the code's MLP output
        half = width // 2
        self.frequencies = nn.Parameter(torch.randn(bottleneck, half))  # W ~ N(0, 1), trainable
        self.log_lengthscale = nn.Parameter(torch.full((bottleneck,), float(log_lengthscale)))
        self.loc = nn.Parameter(torch.zeros(2 * half, action_dim))
        self.scale_tril = nn.Parameter(torch.eye(2 * half).repeat(action_dim, 1, 1))  # (d, F, F)
        self.register_buffer("lower", torch.tril(torch.ones(2 * half, 2 * half)), persistent=False)

    def features(self, encoded: torch.Tensor) -> torch.Tensor:
        """(B, width) stationary features of already-encoded observations."""
        projected = (self.trunk(encoded) * self.log_lengthscale.exp()) @ self.frequencies
        both = torch.cat([triangle_wave(projected + math.pi / 4), triangle_wave(projected - math.pi / 4)], dim=-1)
        return both / math.sqrt(both.shape[-1])

    def distribution(self, encoded: torch.Tensor) -> TanhGaussian:
        """The action distribution at already-encoded observations."""
        f = self.features(encoded)
        mean = f @ self.loc
        scaled = torch.einsum("bi,dij->bdj", f, self.scale_tril * self.lower)  # L_d^T f for every d
        std = MAX_STD * torch.tanh(torch.sqrt(MIN_VAR + scaled.square().sum(-1)))
        return TanhGaussian(mean, std.log())

    def forward(self, observation: Mapping[str, torch.Tensor]) -> TanhGaussian:
        return self.distribution(self.encoder(observation))

    @torch.no_grad()
    def act(self, observation: Mapping[str, torch.Tensor], deterministic: bool,
            generator: torch.Generator | None = None) -> torch.Tensor:  # fmt: skip
        """Batch-first actions in [-1, 1]: tanh(mean) if `deterministic`, else a sample."""
        dist = self(observation)
        return dist.deterministic_action() if deterministic else dist.sample(generator)[0]

    def head_parameters(self) -> list[nn.Parameter]:
        """Parameters the actor loss trains (everything except the shared encoder)."""
        return [p for name, p in self.named_parameters() if not name.startswith("encoder.")]


def gaussian_kl(mean_p: torch.Tensor, log_std_p: torch.Tensor, mean_q: torch.Tensor,
                log_std_q: torch.Tensor) -> torch.Tensor:  # fmt: skip
    """KL(p || q) between diagonal Gaussians, summed over the last dimension.

    For the tanh-squashed policies this is also the KL in action space: a KL divergence is unchanged by a
    bijection applied to both distributions (CSIL++ Sec. III-B), and tanh is one.
    """
    variance_ratio = torch.exp(2.0 * (log_std_p - log_std_q))
    mahalanobis = ((mean_p - mean_q) * torch.exp(-log_std_q)).square()
    return 0.5 * (variance_ratio + mahalanobis - 1.0 - 2.0 * (log_std_p - log_std_q)).sum(-1)
