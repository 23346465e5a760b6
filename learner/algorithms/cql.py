"""CQL (Kumar et al. 2020) and Cal-QL (Nakamoto et al. 2023) as implemented in nakamotoo/Cal-QL.

One update = SAC's actor and temperature steps plus a critic step with the conservative term
  R_CQL = logsumexp_j [Q(s, a_j) - log p(a_j)] - Q(s, a)        (importance-sampled, as the reference)
over n uniform actions (p = 0.5^d), n actions from pi(.|s) and n from pi(.|s') (all scored at s, like
the reference's `q_next`), each weighted by its sampling density. The data action is NOT inside the
log-sum-exp, so R_CQL can be negative; what always holds is its gradient: -1 on the data value and a
softmax (non-negative, summing to +1) over the sampled values, i.e. push data up, sampled down.

Cal-QL changes one thing: the sampled POLICY actions' values are replaced by max(Q, G_MC), with G_MC
the Monte-Carlo return-to-go of the data row (never for the uniform actions). Once the policy's
values sit below the return of the behaviour that produced the data, the term stops pushing them down.
Replay computes G_MC per episode from the stored (already shaped) rewards (`SamplingSpec.returns_to_go`).

The critic target is `r + gamma (1 - d) min_k Q'_k(s', a')` with a' ~ pi(.|s') and no entropy term
(the reference's `backup_entropy=False`); rewards arrive as the learner stored them (`learner.reward_shaping`).

Stages, as nakamotoo/Cal-QL's conservative_sac_main.py runs them: an offline stage of `offline_updates`
conservative updates on the demonstrations alone (the reference's `n_pretrain_epochs` loop calls the
same `sac.train` it uses online), then online with the SAME update on 50/50 demo/online batches
(`mixing_ratio=0.5` in scripts/run_adroit.sh) and the calibration kept on online (the original; CORL
switches it off). CQL runs the identical schedule with the calibration off.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import torch

from common.specs import RobotSpec
from common.types import Batch
from learner.algorithms.actor_critic import (
    ActorCritic,
    OfflineToOnlineConfig,
    check_offline_stage,
    make_tanh_policy,
    mc_returns,
    offline_then_online,
)
from learner.algorithms.base import ALGORITHMS, Algorithm, SamplingSpec, Stage, config_to_dict
from learner.networks.policies import TanhGaussianPolicy


@dataclass(frozen=True)
class CQLConfig(OfflineToOnlineConfig):
    """Hyper-parameters of CQL; defaults are Cal-QL's Adroit-binary settings (sparse, few demos)."""

    cql_weight: float = 1.0
    """Weight of the conservative term (Cal-QL uses 1.0 without Lagrange on binary Adroit)."""
    cql_actions: int = 10
    """n: actions drawn uniformly, from pi(.|s) and from pi(.|s') each (3n critic passes)."""
    calibrated: bool = False
    """Cal-QL: lower-bound the sampled policy actions' values by the data row's Monte-Carlo return."""
    actor_lr: float = 1e-4
    """Adam learning rate of the actor (the reference's policy_lr)."""
    temperature_lr: float = 1e-4
    """Adam learning rate of log(alpha)."""
    init_temperature: float = 1.0
    """Initial entropy temperature alpha."""
    target_entropy: float | None = None
    """Entropy the temperature tunes towards, in nats; None = -|A| (the reference)."""

    def __post_init__(self) -> None:
        self.check({
            "cql_weight must be >= 0": self.cql_weight >= 0,
            "cql_actions must be >= 1": self.cql_actions >= 1,
            "temperature_lr and init_temperature must be positive": min(self.temperature_lr, self.init_temperature) > 0,
        })  # fmt: skip


@dataclass(frozen=True)
class CalQLConfig(CQLConfig):
    """Cal-QL: CQL with the calibration switched on (every other default shared with CQL)."""

    calibrated: bool = True
    """Lower-bound the sampled policy actions' values by the data row's Monte-Carlo return."""


# --- losses ------------------------------------------------------------------------------------------


def calibrate(q_policy: torch.Tensor, mc_return: torch.Tensor) -> torch.Tensor:
    """Cal-QL: max(Q(s, a~pi), G_MC(s, a)); `q_policy` (E, n, B), `mc_return` (B,)."""
    return torch.maximum(q_policy, mc_return.view(1, 1, -1))


def cql_regularizer(q_uniform, q_policy, log_prob_policy, q_data, action_dim: int) -> torch.Tensor:
    """LSE over importance-weighted sampled values minus the data value, summed over critics, batch mean.

    q_uniform (E, n, B); q_policy (E, 2n, B) with log_prob_policy (2n, B) their detached log-densities;
    q_data (E, B). Uniform actions on [-1, 1]^d have density 0.5^d.
    """
    log_uniform = action_dim * math.log(0.5)
    weighted = torch.cat([q_uniform - log_uniform, q_policy - log_prob_policy.unsqueeze(0)], dim=1)
    return (torch.logsumexp(weighted, dim=1) - q_data).sum(0).mean()


def critic_target(reward, terminated, next_q_min, gamma: float) -> torch.Tensor:
    """y = r + gamma (1 - d) min_k Q'_k(s', a'), no entropy term; d is the TRUE termination."""
    return reward + gamma * (1.0 - terminated) * next_q_min


# --- the algorithm -----------------------------------------------------------------------------------


class CQL(Algorithm):
    """Conservative SAC; with `calibrated=True` (registered as "cal_ql") it is Cal-QL."""

    Config = CQLConfig

    def __init__(self, config: CQLConfig, spec: RobotSpec, device: torch.device, seed: int = 0) -> None:
        super().__init__(config, spec, device, seed)
        self.log_alpha = torch.tensor(float(config.init_temperature), device=self.device).log().requires_grad_()
        temperature_group = {"params": [self.log_alpha], "lr": config.temperature_lr}
        self.nets = ActorCritic(config, spec, self.device, seed, extra_groups=(temperature_group,))
        self.target_entropy = -float(spec.action_dim) if config.target_entropy is None else config.target_entropy
        self.num_updates = 0

    @staticmethod
    def make_policy(config: CQLConfig, spec: RobotSpec) -> TanhGaussianPolicy:
        return make_tanh_policy(config, spec)

    @property
    def sampling(self) -> SamplingSpec:
        """Single transitions; Cal-QL also asks replay for each row's Monte-Carlo return-to-go."""
        cfg = self.config
        return SamplingSpec(cfg.batch_size, 1, cfg.demo_ratio, cfg.gamma, returns_to_go=cfg.calibrated)

    def stages(self) -> list[Stage]:
        return offline_then_online(self.config.offline_updates)

    def offline_update(self, stage: str, batch: Batch) -> dict[str, float]:
        """The offline stage: the same conservative update as online (the reference's pretraining loop)."""
        check_offline_stage(type(self).__name__, stage)
        return self.update(batch)

    def update(self, batch: Batch) -> dict[str, float]:
        cfg, nets = self.config, self.nets
        action, reward = batch.action.reshape(batch.size, -1), batch.reward
        observation, next_observation = nets.augment(batch.observation), nets.augment(batch.next_observation)
        alpha = self.log_alpha.exp().detach()

        with torch.no_grad():
            next_features = nets.encoder(next_observation)
            next_action, _ = nets.policy.distribution(next_features).sample(nets.generator)
            next_q = nets.target_critic(nets.target_encoder(next_observation), next_action).min(0).values
            target = critic_target(reward, batch.terminated, next_q, cfg.gamma)

        features = nets.encoder(observation)
        q_data = nets.critic(features, action)
        q_uniform, q_policy, log_prob_policy = self._q_of_sampled_actions(features, next_features)
        if cfg.calibrated:
            q_policy = calibrate(q_policy, mc_returns(batch, "Cal-QL"))
        loss_cql = cql_regularizer(q_uniform, q_policy, log_prob_policy, q_data, self.spec.action_dim)
        loss_td = (q_data - target).square().sum(0).mean()
        loss_critic = loss_td + cfg.cql_weight * loss_cql

        new_action, log_prob = nets.policy.distribution(features.detach()).sample(nets.generator)
        q_new = nets.critic(features.detach(), new_action, detach_params=True).min(0).values
        loss_actor = (alpha * log_prob - q_new).mean()
        entropy = -log_prob.detach().mean()
        loss_temperature = self.log_alpha.exp() * (entropy - self.target_entropy)

        nets.optimize(loss_critic + loss_actor + loss_temperature)
        nets.soft_update(cfg.tau)
        self.num_updates += 1
        q_data = q_data.detach()
        values = [loss_td, loss_cql, loss_actor, alpha, entropy, q_data.mean(), q_data.std(), target.mean()]
        names = ("critic_loss", "cql_loss", "actor_loss", "alpha", "entropy", "q_mean", "q_std", "target_q_mean")
        return dict(zip(names, torch.stack([v.detach() for v in values]).tolist()))

    def _q_of_sampled_actions(self, features: torch.Tensor, next_features: torch.Tensor):
        """Q at s of n uniform, n pi(.|s) and n pi(.|s') actions: (E, n, B), (E, 2n, B) and log pi (2n, B)."""
        n, nets, batch = self.config.cql_actions, self.nets, features.shape[0]
        with torch.no_grad():
            uniform = torch.rand((n, batch, self.spec.action_dim), generator=nets.generator, device=self.device)
            uniform = uniform * 2.0 - 1.0
            policy, log_prob = zip(*(self._sample_actions(f, n) for f in (features.detach(), next_features)))
            policy, log_prob = torch.cat(policy), torch.cat(log_prob)
        actions = torch.cat([uniform, policy])  # (3n, B, A)
        repeated = features.unsqueeze(0).expand(3 * n, *features.shape).reshape(3 * n * batch, -1)
        q = nets.critic(repeated, actions.reshape(3 * n * batch, -1)).reshape(-1, 3 * n, batch)
        return q[:, :n], q[:, n:], log_prob

    def _sample_actions(self, features: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        expanded = features.unsqueeze(0).expand(n, *features.shape)
        return self.nets.policy.distribution(expanded).sample(self.nets.generator)

    def policy_state_dict(self) -> dict[str, torch.Tensor]:
        return self.nets.policy_state_dict()

    def state_dict(self) -> dict[str, Any]:
        return {
            "config": config_to_dict(self.config),
            "nets": self.nets.state_dict(),
            "log_alpha": self.log_alpha.detach().clone(),
            "num_updates": self.num_updates,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.nets.load_state_dict(state["nets"])
        with torch.no_grad():
            self.log_alpha.copy_(state["log_alpha"])
        self.num_updates = int(state["num_updates"])


class CalQL(CQL):
    """Cal-QL: `CQL` with `CalQLConfig` (calibration on)."""

    Config = CalQLConfig


ALGORITHMS.register("cql")(CQL)
ALGORITHMS.register("cal_ql")(CalQL)
