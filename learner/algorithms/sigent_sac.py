"""SigEnt-SAC (Wu, Hu, Zhang): sigmoid-bounded entropy, gated behaviour cloning and a simplified CQL term.

Equations of §4 of the paper, under its names:
  Eq. 1  s_i = -log pi_i(a_i|s)  (per-dimension surprisal of the tanh-Gaussian, tanh Jacobian included)
         h_i = h_max * sigmoid((s_i - m) / t),   H_sig = sum_i h_i   in (0, d * h_max)
  Eq. 5  y = r + gamma (1 - d) [min_k Q'_k(s', a') + alpha H_sig(s', a')],  a' ~ pi(.|s') sampled fresh
  Eq. 6  L_TD = sum_k (Q_k(s, a) - y)^2
  Eq. 7  R_CQL = logsumexp_j Q_k(s, a~_j) - Q_k(s, a)   (beta = 1)
  Eq. 8  L_Q = L_TD + lambda_ood * R_CQL
  Eq. 4  L_pi = E_s[-min_k Q_k(s, a~) - alpha H_sig(s, a~)] + lambda * L_BC
  Eq. 3, 9  L_BC = g * (1/d) ||tanh(mu(s_e)) - a_e||^2 over expert rows,  g = 1[(1/d)||.||^2 > eps^2], no gradient

Choices the paper leaves open (see ../shared/reference/algorithms.md §1):
  * The data action IS inside the log-sum-exp, so R_CQL >= 0 and its pull on Q(s, a) vanishes once the
    data action dominates: the regulariser can only lower out-of-distribution values relative to the
    data, never push the data value up without bound (dropping it made CQL diverge for og-marl).
  * Actions sampled at s' are scored at s, like the sampled-at-s ones: the log-sum-exp is over actions
    at one state; the s' samples only widen the proposal set (the reference CQL does the same). With
    n = 1 the proposals ARE the actor's sample at s and the target's a' at s' (same distributions), and
    they are scored with the data action in one critic pass: one policy pass per state, one critic pass.
  * Eq. 7 is estimated on an evenly spread half of each batch (ood_batch_fraction 0.5). It is a mean over
    states of the data, so half the rows estimate the same term; the proposals' critic rows with
    gradients are most of SigEnt-SAC's extra cost (1.6-1.75x SAC per update on the full batch, 1.36x on half).
    Over 4 seeds of the learning check it learned no worse than the full batch (3 seeds), from fewer updates.
  * alpha is fixed: H_sig is bounded, so there is no target entropy to tune towards; `m` is set from a
    target standard deviation (the follow-up paper's parameterisation).
  * The bound alpha * d * h_max < 1 is checked at construction. SigEnt-SAC relies on the learner's
    shaped reward (`learner --reward shaped`, the default: 0 on success, -1 per step): with a strictly
    positive bonus and success ending the episode, "never finish, keep collecting the bonus" is worth
    (-1 + alpha * d * h_max) / (1 - gamma) per step forever, which beats finishing (0) unless the
    largest bonus alpha * d * h_max stays below the step cost 1. (On the raw 1/0 task reward the
    same loop pays alpha * d * h_max / (1 - gamma) > 0 forever: do not run SigEnt-SAC on it.)
  * §4.3's remark that "Q_i is still lower-bounded by its Monte-Carlo discounted return" is offered as
    an option (`mc_lower_bound`, off by default): the critic target becomes max(y, G_MC), with G_MC
    the data row's return-to-go that replay computes. G_MC values the behaviour that produced the row
    without any bonus, and the bonus is positive, so it is a lower bound of the bonus-augmented Q too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import torch

from common.specs import RobotSpec
from common.types import Batch
from learner.algorithms.actor_critic import ActorCritic, ActorCriticConfig, make_tanh_policy, mc_returns
from learner.algorithms.base import ALGORITHMS, Algorithm, SamplingSpec, config_to_dict
from learner.networks.distributions import TanhGaussian
from learner.networks.policies import TanhGaussianPolicy


@dataclass(frozen=True)
class SigEntSACConfig(ActorCriticConfig):
    """Hyper-parameters of SigEnt-SAC. The paper publishes none of them; each choice is explained here."""

    h_max: float = 1.0
    """Upper bound of each dimension's entropy bonus h_i (Eq. 1); with alpha it sets the bonus scale."""
    target_std: float = 0.1
    """Policy std at which h_i = h_max / 2; m = 0.5 log(2 pi e target_std^2) (SCQ sweeps 0.03-0.10)."""
    temperature_t: float = 1.0
    """Sigmoid temperature t of Eq. 1 (nats of surprisal per unit of the sigmoid's argument)."""
    alpha: float = 0.05
    """Fixed bonus weight; alpha * d * h_max must stay below 1, the shaped step cost, so success still pays."""
    bc_weight: float = 2.5
    """lambda of Eq. 4: weight of the gated BC term (comparable to the Q term at |Q| ~ tens)."""
    bc_epsilon: float = 0.1
    """epsilon of Eq. 3: BC is off for an expert row once the RMS mean-action error is within it."""
    ood_weight: float = 0.1
    """lambda_ood of Eq. 8: weight of the simplified CQL regulariser."""
    ood_actions: int = 1
    """n of Eq. 7: actions sampled from pi at s and again at s' (2n in the LSE); each costs a critic pass."""
    mc_lower_bound: bool = False
    """§4.3: floor the critic target by the row's Monte-Carlo return-to-go (replay computes it); off as in Eq. 5."""
    ood_batch_fraction: float = 0.5
    """Share of rows (evenly spread) Eq. 7 is estimated on: 0.5 costs 1.36x SAC per update, not 1.61x."""
    log_std_min: float = -10.0
    """Lower clamp of the actor's log std (exp(-10) is already deterministic for the robot)."""
    log_std_max: float = 0.0
    """Upper clamp of log std: the saturating bonus cannot stop std drifting to noise (std 5 seen at 2)."""

    def __post_init__(self) -> None:
        self.check({
            "h_max, target_std, temperature_t and bc_epsilon must be positive":
                min(self.h_max, self.target_std, self.temperature_t, self.bc_epsilon) > 0,
            "alpha, bc_weight and ood_weight must be >= 0": min(self.alpha, self.bc_weight, self.ood_weight) >= 0,
            "ood_actions must be >= 1": self.ood_actions >= 1,
            "ood_batch_fraction must be in (0, 1]": 0 < self.ood_batch_fraction <= 1,
        })  # fmt: skip

    @property
    def surprisal_midpoint(self) -> float:
        """m of Eq. 1: the expected per-dimension surprisal of a Gaussian with std target_std."""
        return 0.5 * math.log(2 * math.pi * math.e * self.target_std**2)


def check_bonus_bound(config: SigEntSACConfig, action_dim: int) -> None:
    """Raise unless alpha * d * h_max < 1: the largest per-step bonus must stay below the shaped step cost."""
    bonus = config.alpha * action_dim * config.h_max
    if bonus >= 1.0:
        raise ValueError(
            f"SigEnt-SAC needs alpha * d * h_max < 1, but alpha={config.alpha} * d={action_dim} * "
            f"h_max={config.h_max} = {bonus:.3g}: never finishing an episode would then outvalue success. "
            f"Lower alpha below {1.0 / (action_dim * config.h_max):.4g} or h_max below "
            f"{1.0 / (action_dim * config.alpha):.4g} (--set alpha=... / --set h_max=...)."
        )


# --- losses, named after the paper's equations -----------------------------------------------------


def sigmoid_bounded_entropy(log_prob_per_dim: torch.Tensor, h_max: float, m: float, t: float) -> torch.Tensor:
    """Eq. 1: H_sig = sum_i h_max * sigmoid((s_i - m) / t) with s_i = -log pi_i; shape (..., d) -> (...)."""
    surprisal = -log_prob_per_dim
    return (h_max * torch.sigmoid((surprisal - m) / t)).sum(-1)


def sigent_target(reward, terminated, next_q_min, next_h_sig, alpha: float, gamma: float) -> torch.Tensor:
    """Eq. 5: y = r + gamma (1 - d)(min_k Q'_k(s', a') + alpha H_sig(s', a')); d is the TRUE termination."""
    return reward + gamma * (1.0 - terminated) * (next_q_min + alpha * next_h_sig)


def mc_floor(target: torch.Tensor, mc_return: torch.Tensor) -> torch.Tensor:
    """§4.3: the critic target lower-bounded by the data row's Monte-Carlo return, max(y, G_MC)."""
    return torch.maximum(target, mc_return)


def td_loss(q: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Eq. 6: squared TD error summed over critics (E, B), averaged over the batch."""
    return (q - target).square().sum(0).mean()


def cql_regularizer(q_sampled: torch.Tensor, q_data: torch.Tensor) -> torch.Tensor:
    """Eq. 7 with beta = 1, data action inside the LSE: LSE([Q(s, a~_1..n), Q(s, a)]) - Q(s, a) >= 0.

    q_sampled: (E, n, B) values of sampled actions at s; q_data: (E, B). Summed over critics, batch mean.
    """
    stacked = torch.cat([q_sampled, q_data.unsqueeze(1)], dim=1)
    return (torch.logsumexp(stacked, dim=1) - q_data).sum(0).mean()


def gated_bc_loss(mean_action: torch.Tensor, expert_action: torch.Tensor, is_expert: torch.Tensor, epsilon: float):
    """Eqs. 3 and 9: per-row (1/d)||tanh(mu) - a_e||^2, kept only where it exceeds eps^2, expert rows only.

    Returns (loss averaged over expert rows, gate as a float mask). The gate carries no gradient.
    """
    error = (mean_action - expert_action).square().mean(-1)
    gate = ((error.detach() > epsilon**2) & (is_expert > 0.5)).float()
    experts = is_expert.sum().clamp(min=1.0)
    return (gate * error).sum() / experts, gate


def policy_loss(q_min: torch.Tensor, h_sig: torch.Tensor, alpha: float, bc: torch.Tensor, bc_weight: float):
    """Eq. 4: E[-min_k Q_k(s, a~) - alpha H_sig(s, a~)] + lambda * L_BC."""
    return (-q_min - alpha * h_sig).mean() + bc_weight * bc


# --- the algorithm -----------------------------------------------------------------------------------


class SigEntSAC(Algorithm):
    """Algorithm 1 of the paper: expert and online rows in one batch; critic with Eq. 8, actor with Eq. 4."""

    Config = SigEntSACConfig

    def __init__(self, config: SigEntSACConfig, spec: RobotSpec, device: torch.device, seed: int = 0) -> None:
        super().__init__(config, spec, device, seed)
        check_bonus_bound(config, spec.action_dim)
        self.nets = ActorCritic(config, spec, self.device, seed)
        self.m = config.surprisal_midpoint
        self.num_updates = 0

    @staticmethod
    def make_policy(config: SigEntSACConfig, spec: RobotSpec) -> TanhGaussianPolicy:
        return make_tanh_policy(config, spec)

    @property
    def sampling(self) -> SamplingSpec:
        """Single transitions; with `mc_lower_bound` replay adds each row's Monte-Carlo return-to-go."""
        cfg = self.config
        return SamplingSpec(cfg.batch_size, 1, cfg.demo_ratio, cfg.gamma, returns_to_go=cfg.mc_lower_bound)

    def h_sig(self, log_prob_per_dim: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        return sigmoid_bounded_entropy(log_prob_per_dim, cfg.h_max, self.m, cfg.temperature_t)

    def update(self, batch: Batch) -> dict[str, float]:
        cfg, nets = self.config, self.nets
        action = batch.action.reshape(batch.size, -1)
        observation, next_observation = nets.augment(batch.observation), nets.augment(batch.next_observation)
        with torch.no_grad():
            next_features = nets.encoder(next_observation)
            next_action, next_log_prob = nets.policy.distribution(next_features).rsample(nets.generator)
        target = self._target(next_observation, next_action, next_log_prob, batch.reward, batch.terminated)
        if cfg.mc_lower_bound:
            target = mc_floor(target, mc_returns(batch, "SigEnt-SAC with mc_lower_bound"))

        # The actor trains neither the encoder (detached features) nor the critics (detached weights).
        features = nets.encoder(observation)
        dist = nets.policy.distribution(features.detach())
        new_action, log_prob_per_dim = dist.rsample(nets.generator)

        # Eq. 7's proposals: the actor's sample at s and the target's a' at s' (n = 1), plus n - 1 more of
        # each, scored at s on an evenly spread subset of rows, in the same critic pass as the data action.
        rows = self._ood_rows(batch.size)
        proposals = self._ood_proposals(new_action[rows].detach(), next_action[rows], features[rows].detach(),
                                        next_features[rows])  # fmt: skip
        q_data, q_sampled = self._q_data_and_sampled(features, action, rows, proposals)
        loss_ood = cql_regularizer(q_sampled, q_data[:, rows])
        loss_critic = td_loss(q_data, target) + cfg.ood_weight * loss_ood

        h_sig = self.h_sig(log_prob_per_dim)
        q_new = nets.critic(features.detach(), new_action, detach_params=True).min(0).values
        loss_bc, gate = gated_bc_loss(dist.deterministic_action(), action, batch.is_demo, cfg.bc_epsilon)
        loss_actor = policy_loss(q_new, h_sig, cfg.alpha, loss_bc, cfg.bc_weight)

        nets.optimize(loss_critic + loss_actor)
        nets.soft_update(cfg.tau)
        self.num_updates += 1
        return self._metrics(
            loss_critic, loss_ood, loss_actor, loss_bc, gate, batch.is_demo, q_data, target, h_sig, dist
        )

    @torch.no_grad()
    def _target(self, next_observation: Mapping[str, torch.Tensor], next_action, next_log_prob, reward, terminated):
        """Eq. 5 with a' freshly sampled from the online policy at s' and scored by the target critics."""
        nets = self.nets
        next_q = nets.target_critic(nets.target_encoder(next_observation), next_action).min(0).values
        return sigent_target(
            reward, terminated, next_q, self.h_sig(next_log_prob), self.config.alpha, self.config.gamma
        )

    @torch.no_grad()
    def _ood_proposals(self, action_at_s, action_at_next_s, features, next_features) -> torch.Tensor:
        """n actions from pi(.|s) and n from pi(.|s'): (2n, B, A); the first of each is given."""
        extra = self.config.ood_actions - 1
        at_s, at_next_s = [action_at_s.unsqueeze(0)], [action_at_next_s.unsqueeze(0)]
        if extra:
            at_s.append(self._sample_actions(features, extra))
            at_next_s.append(self._sample_actions(next_features, extra))
        return torch.cat(at_s + at_next_s)

    def _ood_rows(self, batch_size: int) -> torch.Tensor:
        """Rows Eq. 7 is estimated on: evenly spread, so demo and online rows keep their proportions."""
        count = max(1, round(batch_size * self.config.ood_batch_fraction))
        return torch.linspace(0, batch_size - 1, count, device=self.device).round().long()

    def _q_data_and_sampled(self, features, action, rows, proposals) -> tuple[torch.Tensor, torch.Tensor]:
        """Q(s, a) for every row (E, B) and Q(s, a~) for the proposals at `rows` (E, 2n, R), in ONE critic pass."""
        k, count = proposals.shape[0], rows.shape[0]
        at_rows = features[rows].unsqueeze(0).expand(k, count, features.shape[-1]).reshape(k * count, -1)
        q = self.nets.critic(torch.cat([features, at_rows]), torch.cat([action, proposals.reshape(k * count, -1)]))
        batch = features.shape[0]
        return q[:, :batch], q[:, batch:].reshape(q.shape[0], k, count)

    def _sample_actions(self, features: torch.Tensor, n: int) -> torch.Tensor:
        """n policy actions per row: (n, B, A)."""
        expanded = features.unsqueeze(0).expand(n, *features.shape)
        return self.nets.policy.distribution(expanded).rsample(self.nets.generator)[0]

    def _metrics(self, loss_critic, loss_ood, loss_actor, loss_bc, gate, is_demo, q, target, h_sig, dist: TanhGaussian):
        q = q.detach()
        experts = is_demo.sum().clamp(min=1.0)
        values = torch.stack([
            loss_critic.detach(), loss_ood.detach(), loss_actor.detach(), loss_bc.detach(), gate.sum() / experts,
            q.mean(), q.std(), target.mean(), h_sig.detach().mean(), dist.log_std.detach().exp().mean(),
        ]).tolist()  # fmt: skip
        names = ("critic_loss", "cql_loss", "actor_loss", "bc_loss", "gate_open_fraction",
                 "q_mean", "q_std", "target_q_mean", "h_sig", "policy_std")  # fmt: skip
        return dict(zip(names, values))

    def policy_state_dict(self) -> dict[str, torch.Tensor]:
        return self.nets.policy_state_dict()

    def state_dict(self) -> dict[str, Any]:
        return {"config": config_to_dict(self.config), "nets": self.nets.state_dict(), "num_updates": self.num_updates}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.nets.load_state_dict(state["nets"])
        self.num_updates = int(state["num_updates"])


ALGORITHMS.register("sigent_sac")(SigEntSAC)
