"""CSIL++'s critic (XQC, Palenicek et al. 2026): batch norm, weight norm and a categorical value head.

    h = ReLU(BN(W_k h)) per hidden layer, rows of W_k on the unit sphere;  logits = W_out h + b
    Q(s, a) = sum_i softmax(logits)_i z_i over a fixed support z (101 atoms on [-8, 0] by default)

Weight normalisation is a projection after every optimiser step (`project_weights`), not a
reparameterisation: BN after each hidden layer makes it scale-invariant, so the projection leaves the
function unchanged and only keeps the effective learning rate from decaying as the weights grow (CSIL++
Sec. III-B, Lyle et al. 2024). The target is a two-hot distribution on the two atoms around the clipped
scalar target, so the expected value of the converged head is the target itself. The atoms are evenly
spaced: Table II's "distribution of bins: by quantile" is not defined in the paper's text and no code is
public, so that placement is not reproduced.
CrossQ's rule applies: s and s' go through the critic in ONE train-mode pass so the batch statistics
see both (`forward` takes the concatenation); there is no target network.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class NormalizedCategoricalCritic(nn.Module):
    """Q(features, action) with BN + unit-norm hidden weights and a categorical head; `forward` gives logits."""

    def __init__(self, in_dim: int, hidden_dims: Sequence[int], num_bins: int = 101, v_min: float = -8.0,
                 v_max: float = 0.0) -> None:  # fmt: skip
        super().__init__()
        widths = [in_dim, *hidden_dims]
        self.hidden = nn.ModuleList(nn.Linear(a, b, bias=False) for a, b in zip(widths[:-1], widths[1:]))
        self.norms = nn.ModuleList(nn.BatchNorm1d(b, momentum=0.01) for b in hidden_dims)  # CrossQ's 0.99 decay
        self.output = nn.Linear(widths[-1], num_bins)
        self.register_buffer("support", torch.linspace(v_min, v_max, num_bins))
        self.project_weights()

    def forward(self, features: torch.Tensor, action: torch.Tensor, detach_params: bool = False) -> torch.Tensor:
        """(B, num_bins) logits; `detach_params` cuts the weights (not the inputs) from autograd."""
        x = torch.cat([features, action], dim=-1)
        for linear, norm in zip(self.hidden, self.norms):
            weight = linear.weight.detach() if detach_params else linear.weight
            x = F.linear(x, weight)
            scale, shift = (norm.weight.detach(), norm.bias.detach()) if detach_params else (norm.weight, norm.bias)
            x = F.relu(F.batch_norm(x, norm.running_mean, norm.running_var, scale, shift, self.training,
                                    norm.momentum, norm.eps))  # fmt: skip
        weight, bias = self.output.weight, self.output.bias
        if detach_params:
            weight, bias = weight.detach(), bias.detach()
        return F.linear(x, weight, bias)

    def q_value(self, logits: torch.Tensor) -> torch.Tensor:
        """(B,) expected value of the categorical distribution."""
        return torch.softmax(logits, dim=-1) @ self.support

    @torch.no_grad()
    def outside_support(self, target: torch.Tensor) -> torch.Tensor:
        """The share of `target` values beyond the support, which `two_hot` clips (near 1: the critic cannot
        represent the returns, and every value sits on an edge atom)."""
        return ((target < self.support[0]) | (target > self.support[-1])).float().mean()

    @torch.no_grad()
    def project_weights(self) -> None:
        """Put every row of every hidden weight matrix back on the unit sphere."""
        for linear in self.hidden:
            linear.weight.div_(linear.weight.norm(dim=1, keepdim=True).clamp_min(1e-12))


def two_hot(target: torch.Tensor, support: torch.Tensor) -> torch.Tensor:
    """(B, bins) distribution on the two atoms around each target (clipped to the support) whose mean is it."""
    clipped = target.clamp(float(support[0]), float(support[-1]))
    upper = torch.searchsorted(support, clipped.contiguous()).clamp(1, support.numel() - 1)
    lower = upper - 1
    weight_upper = (clipped - support[lower]) / (support[upper] - support[lower])
    probs = torch.zeros(target.shape[0], support.numel(), device=target.device, dtype=target.dtype)
    probs.scatter_(1, lower.unsqueeze(1), (1.0 - weight_upper).unsqueeze(1))
    probs.scatter_add_(1, upper.unsqueeze(1), weight_upper.unsqueeze(1))
    return probs


def categorical_loss(logits: torch.Tensor, target: torch.Tensor, support: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the critic's logits (B, bins) against the two-hot projection of scalar targets (B,)."""
    return -(two_hot(target.detach(), support) * torch.log_softmax(logits, dim=-1)).sum(-1).mean()
