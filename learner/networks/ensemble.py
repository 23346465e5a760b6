"""Vectorised ensembles: every member's weights stacked on a leading axis, one batched matmul per layer.

Each member is fully independent (its own weights, biases and LayerNorm affine), unlike ports that
share a final layer across "ensemble" members. Shapes: inputs `(E, B, in)` or `(B, in)` (broadcast to
every member), outputs `(E, B, out)`.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class EnsembleLinear(nn.Module):
    """E independent affine maps applied with one `torch.baddbmm`."""

    def __init__(self, num_members: int, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_members, in_dim, out_dim))
        self.bias = nn.Parameter(torch.empty(num_members, 1, out_dim))
        # Same distribution as nn.Linear's default, drawn independently per member.
        bound = 1.0 / math.sqrt(in_dim)
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor, detach_params: bool = False) -> torch.Tensor:
        weight, bias = self.weight, self.bias
        if detach_params:
            weight, bias = weight.detach(), bias.detach()
        if x.dim() == 2:
            x = x.expand(weight.shape[0], -1, -1)
        return torch.baddbmm(bias, x, weight)


class EnsembleLayerNorm(nn.Module):
    """LayerNorm over the feature axis with a separate affine (scale, shift) per member."""

    def __init__(self, num_members: int, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(num_members, 1, dim))
        self.bias = nn.Parameter(torch.zeros(num_members, 1, dim))
        self.eps = eps

    def forward(self, x: torch.Tensor, detach_params: bool = False) -> torch.Tensor:
        weight, bias = self.weight, self.bias
        if detach_params:
            weight, bias = weight.detach(), bias.detach()
        normalised = F.layer_norm(x, x.shape[-1:], eps=self.eps)
        return torch.addcmul(bias, normalised, weight)


class EnsembleMLP(nn.Module):
    """E independent MLPs (Dense -> [LayerNorm] -> ReLU per hidden layer), evaluated together.

    `detach_params=True` evaluates with the weights cut from autograd: gradients still flow to the
    inputs (an actor's action) but never into the ensemble, without toggling requires_grad.
    """

    def __init__(
        self, num_members: int, in_dim: int, hidden_dims: Sequence[int], out_dim: int, layer_norm: bool = True
    ) -> None:
        super().__init__()
        self.num_members = num_members
        widths = [in_dim, *hidden_dims]
        self.hidden = nn.ModuleList(EnsembleLinear(num_members, a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.norms = nn.ModuleList(EnsembleLayerNorm(num_members, b) for b in hidden_dims) if layer_norm else None
        self.output = EnsembleLinear(num_members, widths[-1], out_dim)

    def forward(self, x: torch.Tensor, detach_params: bool = False) -> torch.Tensor:
        for i, layer in enumerate(self.hidden):
            x = layer(x, detach_params)
            if self.norms is not None:
                x = self.norms[i](x, detach_params)
            x = F.relu(x)
        return self.output(x, detach_params)


class CriticEnsemble(nn.Module):
    """E independent Q(features, action) heads; returns Q values shaped `(E, B)`."""

    def __init__(
        self,
        num_members: int,
        feature_dim: int,
        action_dim: int,
        hidden_dims: Sequence[int],
        layer_norm: bool = True,
    ) -> None:
        super().__init__()
        self.num_members = num_members
        self.mlp = EnsembleMLP(num_members, feature_dim + action_dim, hidden_dims, 1, layer_norm)

    def forward(self, features: torch.Tensor, action: torch.Tensor, detach_params: bool = False) -> torch.Tensor:
        return self.mlp(torch.cat([features, action], dim=-1), detach_params).squeeze(-1)
