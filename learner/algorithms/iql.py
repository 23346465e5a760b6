"""IQL (Kostrikov et al. 2021): implicit Q-learning with an expectile value and an AWR actor.

  value   L_V = E[ |tau - 1(u < 0)| u^2 ],  u = min_k Q'_k(s, a) - V(s)      (expectile tau of Q over data)
  critic  y = r + gamma (1 - d) V(s'),   L_Q = sum_k (Q_k(s, a) - y)^2        (never queries pi: in-sample)
  actor   L_pi = -E[ min(exp(beta (min_k Q'_k(s, a) - V(s))), w_max) log pi(a|s) ]
Q' are the Polyak target critics, as in the reference. V reads the shared encoder's features
detached: like the actor, it never trains the encoder, which only the critic loss does. Replay actions
are clipped to |a| <= 1 - 1e-5 before they are scored (`awac.dataset_log_prob`; the reference's
dataset_utils.py clips D4RL actions the same way, `clip_to_eps`).

Stages, as ikostrikov/implicit_q_learning's train_finetune.py runs IQL: an offline stage of
`offline_updates` of the same update on the demonstrations alone (`num_pretraining_steps`), then online
with the prior data kept in replay (`replay_buffer.initialize_with_dataset`; the reference samples its
one buffer uniformly, Tandem's `demo_ratio` fixes the demo share instead, as for AWAC).
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
from learner.algorithms.awac import advantage_weights, dataset_log_prob, weighted_regression_loss
from learner.algorithms.base import ALGORITHMS, Algorithm, SamplingSpec, Stage, config_to_dict
from learner.networks.ensemble import EnsembleMLP
from learner.networks.policies import TanhGaussianPolicy


@dataclass(frozen=True)
class IQLConfig(OfflineToOnlineConfig):
    """Hyper-parameters of IQL, named as in the paper (Kostrikov et al. 2021); values of CORL's Adroit finetune."""

    expectile_tau: float = 0.8
    """tau, the expectile of V: 0.5 = mean (SARSA), towards 1 = max; 0.8 = CORL finetune/iql/*/cloned_v1.yaml."""
    beta: float = 3.0
    """beta, the inverse temperature of the weights exp(beta A); 3.0 = CORL finetune/iql/*/cloned_v1.yaml."""
    max_weight: float = 100.0
    """Clamp of exp(beta A) (the reference's actor.py: jnp.minimum(exp_a, 100.0))."""
    value_lr: float = 3e-4
    """Adam learning rate of the value network V (which shares hidden_dims and critic_layer_norm)."""

    def __post_init__(self) -> None:
        self.check({
            "beta, max_weight and value_lr must be positive": min(self.beta, self.max_weight, self.value_lr) > 0,
            "expectile_tau must be in (0, 1)": 0 < self.expectile_tau < 1,
        })  # fmt: skip


def expectile_loss(difference: torch.Tensor, expectile: float) -> torch.Tensor:
    """E[|tau - 1(u < 0)| u^2] with u = Q - V: asymmetric least squares."""
    weight = torch.where(difference < 0, 1.0 - expectile, expectile)
    return (weight * difference.square()).mean()


class IQL(Algorithm):
    """IQL over a robot's dict observation; one `update` = one V, one Q and one actor step."""

    Config = IQLConfig

    def __init__(self, config: IQLConfig, spec: RobotSpec, device: torch.device, seed: int = 0) -> None:
        super().__init__(config, spec, device, seed)
        with torch.random.fork_rng(devices=[]):  # seeded without disturbing the global RNG
            torch.manual_seed(seed + 1)  # V's init independent of the critics' for the same seed
            features = make_tanh_policy(config, spec).encoder.out_dim
            self.value = EnsembleMLP(1, features, config.hidden_dims, 1, config.critic_layer_norm).to(self.device)
        value_group = {"params": list(self.value.parameters()), "lr": config.value_lr}
        self.nets = ActorCritic(config, spec, self.device, seed, extra_groups=(value_group,))
        self.num_updates = 0

    @staticmethod
    def make_policy(config: IQLConfig, spec: RobotSpec) -> TanhGaussianPolicy:
        return make_tanh_policy(config, spec)

    @property
    def sampling(self) -> SamplingSpec:
        cfg = self.config
        return SamplingSpec(cfg.batch_size, 1, cfg.demo_ratio, cfg.gamma)

    def stages(self) -> list[Stage]:
        return offline_then_online(self.config.offline_updates)

    def offline_update(self, stage: str, batch: Batch) -> dict[str, float]:
        """The offline stage: IQL's own (in-sample) update on demonstration batches, as the paper pretrains."""
        check_offline_stage("IQL", stage)
        return self.update(batch)

    def v(self, features: torch.Tensor) -> torch.Tensor:
        """V(s) for encoded observations, shape (B,)."""
        return self.value(features)[0, :, 0]

    def update(self, batch: Batch) -> dict[str, float]:
        cfg, nets = self.config, self.nets
        action, reward = batch.action.reshape(batch.size, -1), batch.reward
        observation, next_observation = nets.augment(batch.observation), nets.augment(batch.next_observation)
        with torch.no_grad():
            target_q = nets.target_critic(nets.target_encoder(observation), action).min(0).values
            target = reward + cfg.gamma * (1.0 - batch.terminated) * self.v(nets.encoder(next_observation))

        features = nets.encoder(observation)
        value = self.v(features.detach())
        loss_value = expectile_loss(target_q - value, cfg.expectile_tau)
        q_data = nets.critic(features, action)
        loss_critic = (q_data - target).square().sum(0).mean()

        weights = advantage_weights(cfg.beta * (target_q - value), 1.0, cfg.max_weight)
        log_prob = dataset_log_prob(nets.policy.distribution(features.detach()), action)
        loss_actor = weighted_regression_loss(log_prob, weights)

        nets.optimize(loss_value + loss_critic + loss_actor)
        nets.soft_update(cfg.tau)
        self.num_updates += 1
        q_data = q_data.detach()
        values = [loss_critic, loss_value, loss_actor, value.detach().mean(), weights.mean(), q_data.mean(),
                  q_data.std(), target.mean()]  # fmt: skip
        names = ("critic_loss", "value_loss", "actor_loss", "v_mean", "weight_mean", "q_mean", "q_std", "target_q_mean")
        return dict(zip(names, torch.stack([v.detach() for v in values]).tolist()))

    def policy_state_dict(self) -> dict[str, torch.Tensor]:
        return self.nets.policy_state_dict()

    def state_dict(self) -> dict[str, Any]:
        return {
            "config": config_to_dict(self.config),
            "nets": self.nets.state_dict(),
            "value": self.value.state_dict(),
            "num_updates": self.num_updates,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.nets.load_state_dict(state["nets"])
        self.value.load_state_dict(state["value"])
        self.num_updates = int(state["num_updates"])


ALGORITHMS.register("iql")(IQL)
