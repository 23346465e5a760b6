"""RLPD (Ball et al. 2023, "Efficient Online Reinforcement Learning with Offline Data") as ikostrikov/rlpd runs it.

SAC's losses and networks, with RLPD's three changes and its update block:
  * symmetric sampling: every batch is half demonstration, half online rows (train_finetuning.py
    `offline_ratio=0.5`, `combine()` interleaves the two so every minibatch is exactly 50/50);
  * an ensemble of 10 LayerNorm critics; the target takes the min over a fresh random subset of 2
    (configs/rlpd_config.py `num_qs=10, num_min_qs=2, critic_layer_norm=True`; `subsample_ensemble`
    draws without replacement); the actor maximises the ensemble MEAN (sac_learner.py `update_actor`);
  * a high update-to-data ratio in blocks: ONE `update` call takes a batch of `utd * batch_size` rows,
    splits it into `utd` minibatches, takes `utd` critic steps (a Polyak step after each), then ONE
    actor step and ONE temperature step on the last minibatch (sac_learner.py `update`). So one
    update here is one RLPD block, run once per environment step (`learner --utd 1`); the metrics
    report `critic_steps`.
The actor step reads the critics as the last critic step left them, and the temperature step uses the
actor step's entropy, as in the reference (sequential, not one joint backward pass like `SAC.update`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from common.types import Batch
from learner.algorithms.base import ALGORITHMS, SamplingSpec
from learner.algorithms.sac import (
    SAC,
    SACConfig,
    actor_loss,
    critic_loss,
    reduce_critics,
    temperature_loss,
)


@dataclass(frozen=True)
class RLPDConfig(SACConfig):
    """RLPD's settings; a field is re-declared only where it differs from SAC's, with its source.

    Inherited unchanged, as the reference has them (sac_learner.py `create`, configs/td_config.py):
    Adam 3e-4 for actor, critics and temperature, gamma 0.99, tau 0.005, batch 256 per minibatch,
    initial temperature 1.0, target entropy -|A|/2. The actor has no LayerNorm (only the critics do).
    """

    utd: int = 20
    """Critic steps per update block (one actor step each): README's --utd_ratio=20 for every benchmark."""
    demo_ratio: float = 0.5
    """Demo share of every minibatch: train_finetuning.py offline_ratio=0.5 (symmetric sampling)."""
    num_critics: int = 10
    """Critics in the ensemble: configs/rlpd_config.py num_qs=10."""
    target_min_subset: int = 2
    """The target's min is over a fresh random pair (no replacement) each critic step: rlpd_config num_min_qs=2."""
    critic_layer_norm: bool = True
    """LayerNorm after every hidden Dense of the critics: configs/rlpd_config.py critic_layer_norm=True."""
    actor_q_reduction: str = "mean"
    """The actor maximises the ensemble MEAN: sac_learner.py update_actor, qs.mean(axis=0)."""
    backup_entropy: bool = False
    """No -alpha log pi in the target: README's --config.backup_entropy=False for sparse Adroit and AntMaze."""
    hidden_dims: tuple[int, ...] = (256, 256, 256)
    """README's --config.hidden_dims="(256, 256, 256)" for Adroit and AntMaze (sparse manipulation, navigation)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check({"utd must be >= 1": self.utd >= 1})


def take_rows(batch: Batch, rows: torch.Tensor) -> Batch:
    """The rows `rows` of every column of `batch` (observations, extras included)."""
    return Batch(
        observation={k: v[rows] for k, v in batch.observation.items()},
        action=batch.action[rows],
        reward=batch.reward[rows],
        terminated=batch.terminated[rows],
        next_observation={k: v[rows] for k, v in batch.next_observation.items()},
        is_demo=batch.is_demo[rows],
        extras={k: v[rows] for k, v in batch.extras.items()},
    )


def symmetric_minibatches(batch: Batch, parts: int) -> list[Batch]:
    """`parts` minibatches with equal shares (+-1) of the demo rows and of the online rows.

    Rows are ordered demo first and dealt round-robin (minibatch k gets rows k, k + parts, ...), which
    splits both kinds evenly whatever order they came in: RLPD's `combine()` interleaving followed by
    contiguous slices does the same.
    """
    order = torch.argsort(batch.is_demo, descending=True, stable=True)
    return [take_rows(batch, order[k::parts]) for k in range(parts)]


class RLPD(SAC):
    """SAC's networks, temperature and checkpoint state with RLPD's update block (see the module docstring)."""

    Config = RLPDConfig

    @property
    def sampling(self) -> SamplingSpec:
        """One block's rows: `utd` minibatches of `batch_size`, half of each from the demonstrations."""
        cfg = self.config
        return SamplingSpec(cfg.batch_size * cfg.utd, 1, cfg.demo_ratio, cfg.gamma)

    def update(self, batch: Batch) -> dict[str, float]:
        """One RLPD block on `utd * batch_size` rows (a smaller batch, e.g. in tests, gets one step per row)."""
        minibatches = symmetric_minibatches(batch, min(self.config.utd, batch.size))
        for minibatch in minibatches:
            critic_metrics = self._critic_step(minibatch)
        metrics = {**critic_metrics, **self._actor_and_temperature_step(minibatches[-1])}
        self.num_updates += 1
        # One stack + tolist: a single device sync instead of one .item() per metric.
        values = dict(zip(metrics, torch.stack([v.detach() for v in metrics.values()]).tolist()))
        return {**values, "critic_steps": float(len(minibatches))}

    def _critic_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        """One critic step towards the target over a random pair of target critics, then one Polyak step."""
        cfg, nets = self.config, self.nets
        observation, next_observation = nets.augment(batch.observation), nets.augment(batch.next_observation)
        action = batch.action.reshape(batch.action.shape[0], -1)
        target = self._soft_target(batch, next_observation, self.log_alpha.exp().detach())
        q = nets.critic(nets.encoder(observation), action)
        loss = critic_loss(q, target)
        nets.optimize(loss)
        nets.soft_update(cfg.tau)
        q = q.detach()
        return {"critic_loss": loss, "q_mean": q.mean(), "q_std": q.std(), "target_q_mean": target.mean()}

    def _actor_and_temperature_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        """One actor step on the ensemble mean and one temperature step on that step's entropy."""
        nets = self.nets
        alpha = self.log_alpha.exp().detach()
        with torch.no_grad():  # the actor trains neither the encoder nor the critics
            features = nets.encoder(nets.augment(batch.observation))
        new_action, log_prob = nets.policy.distribution(features).sample(nets.generator)
        q_new = nets.critic(features, new_action, detach_params=True)
        loss_actor = actor_loss(log_prob, reduce_critics(q_new, self.config.actor_q_reduction), alpha)
        entropy = -log_prob.detach().mean()
        loss_temperature = temperature_loss(self.log_alpha, entropy, self.target_entropy)
        nets.optimize(loss_actor + loss_temperature)
        return {"actor_loss": loss_actor, "alpha": alpha, "alpha_loss": loss_temperature, "entropy": entropy}


ALGORITHMS.register("rlpd")(RLPD)
