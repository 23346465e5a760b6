"""AWAC (Nair et al. 2020): SAC-style critics and an advantage-weighted regression actor.

  critic  y = r + gamma (1 - d) min_k Q'_k(s', a'),  a' ~ pi(.|s')          (no entropy term)
  actor   L_pi = -E_(s,a)~replay [ w(s, a) log pi(a|s) ],
          w = min(exp((Q(s, a) - Q(s, a~)) / lambda), w_max),  a~ ~ pi(.|s),  Q = min_k Q_k, no gradient
The actor only ever raises the likelihood of actions in the replay (demo and online rows alike),
weighted by how much better than the policy's own action the critics judge them; the
`V(s) ~ Q(s, a~)` estimate with one sampled action and the clamp at w_max follow CORL's AWAC
(algorithms/finetune/awac.py `_actor_loss`, `exp_adv_max=100`).

Replay actions are clipped to |a| <= 1 - 1e-5 before the tanh-Gaussian scores them (`dataset_log_prob`,
the `clip_to_eps` of IQL's and RLPD's D4RL loaders): the demonstrations saturate at +-1 in 7.7 % of
their entries, where atanh is infinite and the likelihood of a tanh-squashed policy unbounded.

Stages, as CORL's algorithms/finetune/awac.py runs AWAC: an offline stage of `offline_updates` of the
same update on the demonstrations alone, then online with the prior data kept in replay. CORL loads the
dataset into the one buffer it appends online data to and samples it uniformly; Tandem keeps demos in
their own buffer, so `demo_ratio` fixes the demo share of each batch instead (a proportional share would
let a 40-row demo vanish from the batches within minutes).
"""

from __future__ import annotations

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
    offline_then_online,
)
from learner.algorithms.base import ALGORITHMS, Algorithm, SamplingSpec, Stage, config_to_dict
from learner.networks.distributions import TanhGaussian
from learner.networks.policies import TanhGaussianPolicy

# Replay actions are scored at most this far out (D4RL loaders' clip_to_eps, eps = 1e-5): atanh(1) = inf.
DATASET_ACTION_LIMIT = 1.0 - 1e-5


@dataclass(frozen=True)
class AWACConfig(OfflineToOnlineConfig):
    """Hyper-parameters of AWAC beyond the shared ones, named as in the paper (Nair et al. 2020)."""

    awac_lambda: float = 0.1
    """lambda of the paper: weights exp(A / lambda); 0.1 = CORL's finetune configs for Adroit and AntMaze."""
    max_weight: float = 100.0
    """Clamp of exp(A / lambda) against single rows dominating the batch (CORL's exp_adv_max)."""

    def __post_init__(self) -> None:
        self.check({"awac_lambda and max_weight must be positive": min(self.awac_lambda, self.max_weight) > 0})


def advantage_weights(advantage: torch.Tensor, temperature: float, max_weight: float) -> torch.Tensor:
    """min(exp(A / temperature), max_weight), without gradient (AWR / AWAC / IQL)."""
    return torch.exp(advantage.detach() / temperature).clamp(max=max_weight)


def dataset_log_prob(distribution: TanhGaussian, action: torch.Tensor) -> torch.Tensor:
    """log pi(a|s) of replay actions clipped to |a| <= DATASET_ACTION_LIMIT (finite where a = +-1)."""
    return distribution.log_prob(action.clamp(-DATASET_ACTION_LIMIT, DATASET_ACTION_LIMIT))


def weighted_regression_loss(log_prob: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """-E[w log pi(a|s)] over replay actions: weighted maximum likelihood."""
    return -(weights * log_prob).mean()


class AWAC(Algorithm):
    """AWAC over a robot's dict observation; one `update` = one critic and one actor step."""

    Config = AWACConfig

    def __init__(self, config: AWACConfig, spec: RobotSpec, device: torch.device, seed: int = 0) -> None:
        super().__init__(config, spec, device, seed)
        self.nets = ActorCritic(config, spec, self.device, seed)
        self.num_updates = 0

    @staticmethod
    def make_policy(config: AWACConfig, spec: RobotSpec) -> TanhGaussianPolicy:
        return make_tanh_policy(config, spec)

    @property
    def sampling(self) -> SamplingSpec:
        cfg = self.config
        return SamplingSpec(cfg.batch_size, 1, cfg.demo_ratio, cfg.gamma)

    def stages(self) -> list[Stage]:
        return offline_then_online(self.config.offline_updates)

    def offline_update(self, stage: str, batch: Batch) -> dict[str, float]:
        """The offline stage: AWAC's own update on demonstration batches (the paper pretrains with it)."""
        check_offline_stage("AWAC", stage)
        return self.update(batch)

    def update(self, batch: Batch) -> dict[str, float]:
        cfg, nets = self.config, self.nets
        action, reward = batch.action.reshape(batch.size, -1), batch.reward
        observation, next_observation = nets.augment(batch.observation), nets.augment(batch.next_observation)
        with torch.no_grad():
            next_action, _ = nets.policy(next_observation).sample(nets.generator)
            next_q = nets.target_critic(nets.target_encoder(next_observation), next_action).min(0).values
            target = reward + cfg.gamma * (1.0 - batch.terminated) * next_q

        features = nets.encoder(observation)
        q_data = nets.critic(features, action)
        loss_critic = (q_data - target).square().sum(0).mean()

        dist = nets.policy.distribution(features.detach())
        with torch.no_grad():
            policy_action, _ = dist.sample(nets.generator)
            value = nets.critic(features, policy_action).min(0).values
            advantage = q_data.min(0).values - value
        weights = advantage_weights(advantage, cfg.awac_lambda, cfg.max_weight)
        loss_actor = weighted_regression_loss(dataset_log_prob(dist, action), weights)

        nets.optimize(loss_critic + loss_actor)
        nets.soft_update(cfg.tau)
        self.num_updates += 1
        q_data = q_data.detach()
        values = [loss_critic, loss_actor, advantage.mean(), weights.mean(), q_data.mean(), q_data.std(), target.mean()]
        names = ("critic_loss", "actor_loss", "advantage_mean", "weight_mean", "q_mean", "q_std", "target_q_mean")
        return dict(zip(names, torch.stack([v.detach() for v in values]).tolist()))

    def policy_state_dict(self) -> dict[str, torch.Tensor]:
        return self.nets.policy_state_dict()

    def state_dict(self) -> dict[str, Any]:
        return {"config": config_to_dict(self.config), "nets": self.nets.state_dict(), "num_updates": self.num_updates}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.nets.load_state_dict(state["nets"])
        self.num_updates = int(state["num_updates"])


ALGORITHMS.register("awac")(AWAC)
