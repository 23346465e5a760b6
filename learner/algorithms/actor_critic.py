"""The parts every SAC-family algorithm owns: policy, shared encoder, critic ensemble, targets, optimisers.

An algorithm composes one `ActorCritic` and writes only its losses; building the networks, the
Polyak update, the single backward pass, checkpoint state and the actor's weights live here once.
Config objects passed in need the fields: hidden_dims, num_critics, critic_layer_norm, log_std_min,
log_std_max, image_feature_dim, image_shift_pad, actor_lr, critic_lr, max_grad_norm.
"""

from __future__ import annotations

import copy
from typing import Any, Mapping

import torch
from torch import nn

from common.specs import RobotSpec
from learner.networks.encoders import ObservationEncoder, random_shift
from learner.networks.ensemble import CriticEnsemble
from learner.networks.policies import TanhGaussianPolicy


def make_tanh_policy(config: Any, spec: RobotSpec) -> TanhGaussianPolicy:
    """The actor network (with its own observation encoder) an actor process rebuilds from the config."""
    encoder = ObservationEncoder(spec.observation, config.image_feature_dim)
    return TanhGaussianPolicy(encoder, spec.action_dim, config.hidden_dims, config.log_std_min, config.log_std_max)


class ActorCritic:
    """Networks and optimisers of a tanh-Gaussian actor with a critic ensemble; the encoder is trained by the critic."""

    def __init__(
        self, config: Any, spec: RobotSpec, device: torch.device, seed: int, extra_groups: tuple[dict, ...] = ()
    ) -> None:
        with torch.random.fork_rng(devices=[]):  # seeded weights without disturbing the global RNG
            torch.manual_seed(seed)
            self.policy = make_tanh_policy(config, spec).to(device)
            self.encoder = self.policy.encoder
            self.critic = CriticEnsemble(
                config.num_critics, self.encoder.out_dim, spec.action_dim, config.hidden_dims, config.critic_layer_norm
            ).to(device)
        self.target_encoder = copy.deepcopy(self.encoder).requires_grad_(False)
        self.target_critic = copy.deepcopy(self.critic).requires_grad_(False)
        # One Adam with a parameter group per loss: the losses touch disjoint parameters, and one fused
        # optimiser step costs a third of three (Python overhead dominates small nets on CPU).
        self.optimizer = torch.optim.Adam(
            [
                {"params": [*self.critic.parameters(), *self.encoder.parameters()], "lr": config.critic_lr},
                {"params": self.policy.head_parameters(), "lr": config.actor_lr},
                *extra_groups,  # e.g. SAC's temperature
            ],
            fused=device.type in ("cpu", "cuda"),
        )
        self._online = [*self.encoder.parameters(), *self.critic.parameters()]
        self._targets = [*self.target_encoder.parameters(), *self.target_critic.parameters()]
        self.max_grad_norm = config.max_grad_norm
        self.image_shift_pad = config.image_shift_pad
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(seed)

    def augment(self, observation: Mapping[str, torch.Tensor]) -> Mapping[str, torch.Tensor]:
        """DrQ random shift of every image key (a fresh shift per row); state keys pass through."""
        pad, images = self.image_shift_pad, set(self.encoder.image_keys)
        if pad == 0 or not images:
            return observation
        return {k: random_shift(v, pad, self.generator) if k in images else v for k, v in observation.items()}

    def optimize(self, loss: torch.Tensor) -> None:
        """One backward pass of the summed losses (disjoint parameters), then one optimiser step."""
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.max_grad_norm > 0:  # critic and actor groups are clipped separately
            for group in self.optimizer.param_groups[:2]:
                nn.utils.clip_grad_norm_(group["params"], self.max_grad_norm)
        self.optimizer.step()

    @torch.no_grad()
    def soft_update(self, tau: float) -> None:
        """Polyak: target <- tau * online + (1 - tau) * target, for encoder and critics."""
        torch._foreach_lerp_(self._targets, self._online, tau)

    def policy_state_dict(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in self.policy.state_dict().items()}

    def state_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy.state_dict(),  # includes the shared encoder
            "critic": self.critic.state_dict(),
            "target_encoder": self.target_encoder.state_dict(),
            "target_critic": self.target_critic.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.policy.load_state_dict(state["policy"])
        self.critic.load_state_dict(state["critic"])
        self.target_encoder.load_state_dict(state["target_encoder"])
        self.target_critic.load_state_dict(state["target_critic"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
