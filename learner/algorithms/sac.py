"""Soft Actor-Critic (Haarnoja et al. 2018), "SAC w/ prior" when demonstrations sit in the replay.

tanh-Gaussian actor, a vectorised ensemble of LayerNorm critics (2 by default), learned temperature,
Polyak target critics. Terminated rows (true task ends) do not bootstrap; truncated ones do. RLPD
(`rlpd.py`) reuses these losses in its own update block.

All three losses are computed from the same pre-update parameters and applied with ONE backward pass
(as in the original softlearning implementation); they touch disjoint parameters, so the gradients
are identical to three separate backward passes at roughly two thirds of the CPU cost. Networks,
optimiser and targets are the shared `ActorCritic` component.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import torch

from common.specs import RobotSpec
from common.types import Batch
from learner.algorithms.actor_critic import ActorCritic, ActorCriticConfig, make_tanh_policy
from learner.algorithms.base import ALGORITHMS, Algorithm, SamplingSpec, config_to_dict
from learner.networks.policies import TanhGaussianPolicy


@dataclass(frozen=True)
class SACConfig(ActorCriticConfig):
    """Hyper-parameters of SAC beyond the shared ones (defaults follow RLPD where it differs from SB3)."""

    temperature_lr: float = 3e-4
    """Adam learning rate of log(alpha)."""
    init_temperature: float = 1.0
    """Initial entropy temperature alpha."""
    target_entropy: float | None = None
    """Entropy the temperature tunes towards, in nats; None = -|A|/2."""
    backup_entropy: bool = True
    """Subtract alpha * log pi(a'|s') inside the critic target."""
    target_min_subset: int = 0
    """Critics the target takes the minimum over, a fresh random subset each update; 0 = all."""
    actor_q_reduction: str = "min"
    """How the actor combines the critics: "min" (SAC) or "mean" (RLPD)."""

    def __post_init__(self) -> None:
        self.check({
            "temperature_lr and init_temperature must be positive": min(self.temperature_lr, self.init_temperature) > 0,
            "target_min_subset must be in [0, num_critics]": 0 <= self.target_min_subset <= self.num_critics,
            "actor_q_reduction must be 'min' or 'mean'": self.actor_q_reduction in ("min", "mean"),
        })  # fmt: skip


# --- losses (numbered as in "SAC Algorithms and Applications", Haarnoja et al. 2018, arXiv 1812.05905)


def soft_q_target(
    reward: torch.Tensor,
    terminated: torch.Tensor,
    next_q: torch.Tensor,
    next_log_prob: torch.Tensor,
    alpha: torch.Tensor,
    gamma: float,
    backup_entropy: bool,
) -> torch.Tensor:
    """Eqs. 3 and 5: y = r + gamma (1 - d) (Q'(s', a') - alpha log pi(a'|s')), d the TRUE termination."""
    soft_value = next_q - alpha * next_log_prob if backup_entropy else next_q
    return reward + gamma * (1.0 - terminated) * soft_value


def critic_loss(q: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Eq. 5 (without its 1/2): squared TD error averaged over ensemble members `(E, B)` and the batch."""
    return (q - target).square().mean()


def actor_loss(log_prob: torch.Tensor, q: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Eq. 7: E[alpha log pi(a|s) - Q(s, a)] with a reparameterised."""
    return (alpha * log_prob - q).mean()


def temperature_loss(log_alpha: torch.Tensor, entropy: torch.Tensor, target_entropy: float) -> torch.Tensor:
    """Eq. 18 (RLPD form): alpha (H - H_target); alpha falls while the entropy exceeds its target."""
    return log_alpha.exp() * (entropy - target_entropy).detach()


def reduce_critics(q: torch.Tensor, how: str) -> torch.Tensor:
    """Combine `(E, B)` critic values into `(B,)` by "min" or "mean"."""
    return q.min(dim=0).values if how == "min" else q.mean(dim=0)


# --- the algorithm -----------------------------------------------------------------------------------


class SAC(Algorithm):
    """SAC over a robot's dict observation; one `update` = one step of critic, actor and temperature."""

    Config = SACConfig

    def __init__(self, config: SACConfig, spec: RobotSpec, device: torch.device, seed: int = 0) -> None:
        super().__init__(config, spec, device, seed)
        self.log_alpha = torch.tensor(float(config.init_temperature), device=self.device).log().requires_grad_()
        temperature_group = {"params": [self.log_alpha], "lr": config.temperature_lr}
        self.nets = ActorCritic(config, spec, self.device, seed, extra_groups=(temperature_group,))
        self.target_entropy = -spec.action_dim / 2.0 if config.target_entropy is None else float(config.target_entropy)
        self.num_updates = 0

    @staticmethod
    def make_policy(config: SACConfig, spec: RobotSpec) -> TanhGaussianPolicy:
        return make_tanh_policy(config, spec)

    @property
    def sampling(self) -> SamplingSpec:
        cfg = self.config
        return SamplingSpec(cfg.batch_size, 1, cfg.demo_ratio, cfg.gamma)

    def update(self, batch: Batch) -> dict[str, float]:
        cfg, nets = self.config, self.nets
        observation, next_observation = nets.augment(batch.observation), nets.augment(batch.next_observation)
        action = batch.action.reshape(batch.action.shape[0], -1)
        alpha = self.log_alpha.exp().detach()
        target = self._soft_target(batch, next_observation, alpha)

        features = nets.encoder(observation)
        q = nets.critic(features, action)
        loss_critic = critic_loss(q, target)

        # The actor neither trains the encoder (detached features) nor the critics (detached weights).
        new_action, log_prob = nets.policy.distribution(features.detach()).sample(nets.generator)
        q_new = nets.critic(features.detach(), new_action, detach_params=True)
        loss_actor = actor_loss(log_prob, reduce_critics(q_new, cfg.actor_q_reduction), alpha)
        entropy = -log_prob.detach().mean()
        loss_temperature = temperature_loss(self.log_alpha, entropy, self.target_entropy)

        nets.optimize(loss_critic + loss_actor + loss_temperature)
        nets.soft_update(cfg.tau)
        self.num_updates += 1

        q = q.detach()
        metrics = {
            "critic_loss": loss_critic,
            "actor_loss": loss_actor,
            "alpha": alpha,
            "alpha_loss": loss_temperature,
            "entropy": entropy,
            "q_mean": q.mean(),
            "q_std": q.std(),
            "target_q_mean": target.mean(),
        }
        # One stack + tolist: a single device sync instead of one .item() per metric.
        return dict(zip(metrics, torch.stack([v.detach() for v in metrics.values()]).tolist()))

    @torch.no_grad()
    def _soft_target(self, batch: Batch, next_observation: dict, alpha: torch.Tensor) -> torch.Tensor:
        """The critic target at a' ~ pi(.|s') over the (subset-)min of the target critics."""
        nets, cfg = self.nets, self.config
        next_action, next_log_prob = nets.policy(next_observation).sample(nets.generator)
        next_q = self._target_min(nets.target_critic(nets.target_encoder(next_observation), next_action))
        return soft_q_target(
            batch.reward, batch.terminated, next_q, next_log_prob, alpha, cfg.gamma, cfg.backup_entropy
        )

    def _target_min(self, next_q: torch.Tensor) -> torch.Tensor:
        """Min over all target critics, or over a fresh random subset of them (RLPD)."""
        subset = self.config.target_min_subset
        if 0 < subset < next_q.shape[0]:
            index = torch.randperm(next_q.shape[0], generator=self.nets.generator, device=self.device)[:subset]
            next_q = next_q[index]
        return next_q.min(dim=0).values

    def policy_state_dict(self) -> dict[str, torch.Tensor]:
        return self.nets.policy_state_dict()

    def state_dict(self) -> dict[str, Any]:
        return {
            "config": config_to_dict(self.config),
            "nets": self.nets.state_dict(),  # includes the optimiser, whose third group is log_alpha's
            "log_alpha": self.log_alpha.detach().clone(),
            "num_updates": self.num_updates,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.nets.load_state_dict(state["nets"])
        with torch.no_grad():
            self.log_alpha.copy_(state["log_alpha"])
        self.num_updates = int(state["num_updates"])


ALGORITHMS.register("sac")(SAC)
