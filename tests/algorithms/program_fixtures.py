"""Fixture algorithm for the actor's policy programs, loaded by `TANDEM_PLUGINS=tests.algorithms.program_fixtures`.

"program_fixture" trains exactly like SAC. Besides its "online" policy it names one policy per actor
program, each a reference network of learner/networks/programs.py: "chunked", "gated", "ensembled".
Tests write weights of these policies and run a real actor process on them, before the seed
algorithms that need the programs exist.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from common.specs import RobotSpec
from learner.algorithms.base import ALGORITHMS
from learner.algorithms.sac import SAC
from learner.networks.programs import ChunkPolicy, EnsembledPolicies, GatedPolicies

CHUNK_LENGTH = 5  # h of the "chunked" policy
BASE_CHUNK_LENGTH = 4  # h of the "ensembled" policy's base
PROGRAM_OF: dict[str, tuple[str, dict[str, Any]]] = {
    "online": ("one_step", {}),
    "chunked": ("chunked", {"execute": 3}),
    "gated": ("gated", {}),
    "ensembled": ("ensembled", {"every": 2, "combine": "mean"}),
}


@ALGORITHMS.register("program_fixture")
class ProgramFixture(SAC):
    """SAC, plus a named policy for each actor program (for tests of the programs)."""

    def policy_program(self, policy: str = "online") -> tuple[str, dict[str, Any]]:
        return PROGRAM_OF[policy]

    @classmethod
    def make_named_policy(cls, config: Any, spec: RobotSpec, policy: str = "online") -> nn.Module:
        observation, action_dim, hidden = spec.observation, spec.action_dim, config.hidden_dims
        if policy == "chunked":
            return ChunkPolicy(observation, action_dim, CHUNK_LENGTH, hidden)
        if policy == "gated":
            return GatedPolicies(observation, action_dim, hidden)
        if policy == "ensembled":
            return EnsembledPolicies(observation, action_dim, BASE_CHUNK_LENGTH, hidden)
        return super().make_named_policy(config, spec, policy)

    def named_policy_state_dict(self, policy: str = "online") -> dict[str, torch.Tensor]:
        if policy == "online":
            return self.policy_state_dict()
        with torch.random.fork_rng():  # untrained but reproducible: the seed's initial weights
            torch.manual_seed(self.seed)
            module = self.make_named_policy(self.config, self.spec, policy)
        return {name: value.detach().clone() for name, value in module.state_dict().items()}
