"""CSIL++'s frozen base policy and the ensembled action (CSIL++ Sec. IV, Eqs. 2-3).

The base is any policy a Tandem run saved (`best_policy.npz`, learner/best_policy.py): its file names the
algorithm, the config and the named policy that rebuild its network, so ALOE's flow-matching chunk policy,
a BC policy or any registered algorithm's policy can serve. A base with `act_chunk` plans chunks; a
one-step base is a chunk of one. The actor's "ensembled" program re-plans the base every N steps
(`base_every`, the paper's N = 10, at most the base's chunk length) and executes
  mean:     a = (a_base + a_pi) / 2        (Eq. 3, the paper's choice)
  residual: a = a_base + a_pi              (Eq. 2, the ablation)
clipped to [-1, 1]. Replay stores that executed action, which the critic and the reward score; the actor
loss and the critic target form it from a_pi with the base's action at the same state (the first action
of a chunk planned there: the learner does not know where in its chunk the actor was, so this is exact
on re-plan steps and an approximation on the N - 1 steps between).

Slotting in a large pretrained model later: register an algorithm whose `make_named_policy` builds the
model (with `act_chunk(observation, deterministic) -> (B, h, d)` in [-1, 1]) and save its weights with
`learner.best_policy.save_weights`; `--set base_policy=FILE` then uses it unchanged. Both the learner and
the actor read FILE (one machine: the same path), and its weights travel with every publication.
"""

from __future__ import annotations

import json
import zipfile
from typing import Mapping

import torch
from torch import nn

from common.specs import RobotSpec

COMBINE = ("mean", "residual")


class FrozenBase(nn.Module):
    """A saved policy as a chunk planner: `act_chunk` (B, h, d) whether it plans chunks or single actions."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module.requires_grad_(False).eval()
        self.chunk_length = int(getattr(module, "chunk_length", 1)) if hasattr(module, "act_chunk") else 1

    @torch.no_grad()
    def act_chunk(self, observation: Mapping[str, torch.Tensor], deterministic: bool = True) -> torch.Tensor:
        if hasattr(self.module, "act_chunk"):
            return self.module.act_chunk(observation, deterministic)
        return self.module.act(observation, deterministic).unsqueeze(1)

    def train(self, mode: bool = True) -> "FrozenBase":
        return super().train(False)  # frozen: batch statistics or dropout of the base never switch on


def load_base_policy(path: str, spec: RobotSpec) -> FrozenBase:
    """Rebuild and load the policy saved at `path` (a `save_weights` file) for this robot; clear errors."""
    from learner.algorithms.base import ALGORITHMS, config_from_overrides
    from learner.best_policy import load_weights

    try:
        weights, _ = load_weights(path)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as error:
        raise ValueError(f"base_policy {path!r} is not a saved Tandem policy: {error}") from None
    if weights.spec_hash != spec.spec_hash:
        raise ValueError(f"base_policy {path!r} is for spec {weights.spec_hash}, this robot is {spec.spec_hash}")
    config = config_from_overrides(weights.algorithm, json.loads(weights.policy_config_json))
    module = ALGORITHMS.get(weights.algorithm).make_named_policy(config, spec, weights.policy)
    module.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in weights.tensors.items()}, strict=True)
    return FrozenBase(module)


def combine_actions(base: torch.Tensor, learned: torch.Tensor, how: str) -> torch.Tensor:
    """The executed action of Eq. 3 ("mean") or Eq. 2 ("residual"), clipped to [-1, 1]."""
    combined = 0.5 * (base + learned) if how == "mean" else base + learned
    return combined.clamp(-1.0, 1.0)


class BaseEnsemble(nn.Module):
    """What the actor's "ensembled" program runs: the frozen base's chunks beside the learned one-step policy."""

    def __init__(self, base: FrozenBase, learned: nn.Module) -> None:
        super().__init__()
        self.base, self.learned = base, learned

    @property
    def base_chunk_length(self) -> int:
        return self.base.chunk_length

    @torch.no_grad()
    def act_base_chunk(self, observation: Mapping[str, torch.Tensor], deterministic: bool) -> torch.Tensor:
        return self.base.act_chunk(observation, True)  # the base acts by its mode: it is not explored

    @torch.no_grad()
    def act(self, observation: Mapping[str, torch.Tensor], deterministic: bool) -> torch.Tensor:
        return self.learned.act(observation, deterministic)
