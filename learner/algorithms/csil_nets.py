"""CSIL's networks and optimisers: the HetStat actor (its encoder shared with the critic), the frozen BC prior,
the reward network, and either CSIL's LayerNorm critic with a Polyak target or CSIL++'s normalised
categorical critic (one joint s/s' pass, no target network).

Three optimisers, one per phase: BC (policy and encoder, the code's 1e-3), critic pretraining (critic and
encoder, 1e-4), and online (critic + encoder, actor head, reward: 3e-4 / 3e-4 / 1e-3).
"""

from __future__ import annotations

import copy
from typing import Any, Callable, Mapping

import torch
from torch import nn

from common.specs import RobotSpec
from learner.networks.distributions import TanhGaussian
from learner.networks.encoders import encoder_for, random_shift
from learner.networks.ensemble import CriticEnsemble
from learner.networks.hetstat import HetStatPolicy
from learner.networks.normalized_critic import NormalizedCategoricalCritic, categorical_loss

Observation = Mapping[str, torch.Tensor]
NextAction = Callable[[TanhGaussian, TanhGaussian], tuple[torch.Tensor, torch.Tensor]]


class CSILNets:
    """Everything CSIL trains or reads, with its optimisers and RNG (see the module doc)."""

    def __init__(self, config: Any, spec: RobotSpec, device: torch.device, seed: int) -> None:
        self.plus_plus = config.variant == "plus_plus"
        with torch.random.fork_rng(devices=[]):  # seeded weights without disturbing the global RNG
            torch.manual_seed(seed)
            self.policy = self.make_policy(config, spec).to(device)
            self.encoder = self.policy.encoder
            in_dim, action_dim = self.encoder.out_dim, spec.action_dim
            if self.plus_plus:
                self.critic: nn.Module = NormalizedCategoricalCritic(in_dim + action_dim, config.critic_hidden_dims,
                                                                     config.num_bins, config.v_min, config.v_max)
            else:
                self.critic = CriticEnsemble(1, in_dim, action_dim, config.critic_hidden_dims, layer_norm=True)
            self.critic.to(device)
        # Before the BC stage ends (or when it is skipped) the prior and the reward are the initial policy.
        self.prior = copy.deepcopy(self.policy).requires_grad_(False)
        self.reward = copy.deepcopy(self.policy)
        self.targets = None if self.plus_plus else nn.ModuleDict(
            {"encoder": copy.deepcopy(self.encoder), "critic": copy.deepcopy(self.critic)}).requires_grad_(False)
        critic_params = [*self.critic.parameters(), *self.encoder.parameters()]
        fused = device.type in ("cpu", "cuda")
        self.optimizer = torch.optim.Adam([
            {"params": critic_params, "lr": config.critic_lr},
            {"params": self.policy.head_parameters(), "lr": config.actor_lr},
            {"params": list(self.reward.parameters()), "lr": config.reward_lr}], fused=fused)  # fmt: skip
        self.bc_optimizer = torch.optim.Adam(self.policy.parameters(), lr=config.bc_lr, fused=fused)
        self.pretrain_optimizer = torch.optim.Adam(critic_params, lr=config.critic_pretrain_lr, fused=fused)
        self.tau, self.image_shift_pad = config.tau, config.image_shift_pad
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(seed)

    @staticmethod
    def make_policy(config: Any, spec: RobotSpec) -> HetStatPolicy:
        """The HetStat actor with its own observation encoder (what the actor process rebuilds)."""
        encoder = encoder_for(spec.observation, config)
        return HetStatPolicy(encoder, spec.action_dim, config.hidden_dims, config.bottleneck, config.stationary_width,
                             config.log_lengthscale, config.policy_layer_norm)  # fmt: skip

    def augment(self, observation: Observation) -> Observation:
        """DrQ random shift of every image key (a fresh shift per row); state keys pass through."""
        pad, images = self.image_shift_pad, set(self.encoder.image_keys)
        if pad == 0 or not images:
            return observation
        return {k: random_shift(v, pad, self.generator) if k in images else v for k, v in observation.items()}

    def copy_bc_policy(self) -> None:
        """The policy is pi_BC now: the prior and the reward start from it (coherence)."""
        self.prior.load_state_dict(self.policy.state_dict())
        self.reward.load_state_dict(self.policy.state_dict())

    # ---- the critic ------------------------------------------------------------------------------
    def critic_and_target(self, observation: Observation, next_observation: Observation, action: torch.Tensor,
                          next_action: NextAction) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
        """(critic output at (s, a), soft next value (B,) without gradient). CSIL: Q (1, B) and the target
        critic's value; CSIL++: logits (B, bins) from one train-mode pass over [s; s'] (CrossQ)."""
        if not self.plus_plus:
            q = self.critic(self.encoder(observation), action)
            with torch.no_grad():
                a_next, kl_term = next_action(self.policy.distribution(self.encoder(next_observation)),
                                              self.prior(next_observation))  # fmt: skip
                next_features = self.targets["encoder"](next_observation)
                return q, self.targets["critic"](next_features, a_next).min(dim=0).values - kl_term
        both = {k: torch.cat([observation[k], next_observation[k]]) for k in observation}
        features, next_features = self.encoder(both).chunk(2)
        with torch.no_grad():
            a_next, kl_term = next_action(self.policy.distribution(next_features.detach()),
                                          self.prior(next_observation))  # fmt: skip
        logits, next_logits = self.critic(torch.cat([features, next_features]), torch.cat([action, a_next])).chunk(2)
        return logits, self.critic.q_value(next_logits).detach() - kl_term

    def critic_loss(self, q: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Squared TD error (CSIL) or cross-entropy to the two-hot target (CSIL++)."""
        if self.plus_plus:
            return categorical_loss(q, target, self.critic.support)
        return (q - target).square().mean()

    def q_value(self, q: torch.Tensor) -> torch.Tensor:
        """(B,) scalar values of `critic_and_target`'s first output."""
        return self.critic.q_value(q) if self.plus_plus else q.min(dim=0).values

    def actor_q(self, features: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Q(s, a) with the critic's weights cut from autograd; CSIL++ reads BN's running statistics (CrossQ)."""
        if not self.plus_plus:
            return self.critic(features, action, detach_params=True).min(dim=0).values
        self.critic.eval()
        try:
            return self.critic.q_value(self.critic(features, action, detach_params=True))
        finally:
            self.critic.train()

    # ---- steps and state -------------------------------------------------------------------------
    def step(self, optimizer: torch.optim.Optimizer, loss: torch.Tensor, polyak: bool = False) -> None:
        """One backward pass and step of `optimizer`; then CSIL++'s weight projection, or CSIL's Polyak step."""
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if self.plus_plus:
            self.critic.project_weights()
        elif polyak:
            with torch.no_grad():
                online = [*self.encoder.parameters(), *self.critic.parameters()]
                targets = [*self.targets["encoder"].parameters(), *self.targets["critic"].parameters()]
                torch._foreach_lerp_(targets, online, self.tau)

    def _modules(self) -> dict[str, nn.Module]:
        modules = {"policy": self.policy, "prior": self.prior, "reward": self.reward, "critic": self.critic}
        return modules if self.targets is None else {**modules, "targets": self.targets}

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"optimizer": self.optimizer, "bc_optimizer": self.bc_optimizer,
                "pretrain_optimizer": self.pretrain_optimizer}  # fmt: skip

    def state_dict(self) -> dict[str, Any]:
        state = {name: module.state_dict() for name, module in {**self._modules(), **self._optimizers()}.items()}
        return {**state, "generator": self.generator.get_state()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        for name, item in {**self._modules(), **self._optimizers()}.items():
            item.load_state_dict(state[name])
        self.generator.set_state(state["generator"])
