"""CSIL (Watson, Huang, Heess 2023, "Coherent Soft Imitation Learning") and CSIL++ (Scherer et al. 2026).

Stages: "bc" fits the HetStat policy to the demonstrations (the faithful loss), and at its end the BC policy
is copied three ways: the frozen prior pi_BC of the KL, the reward network (refined online), and the actor
(already it). "critic" pretrains the critic on the demonstrations (SARSA under pi_BC), then online:

  reward   r(s,a) = alpha_r (log pi_R(a|s) - log p(a)),  p uniform on [-1,1]^d, alpha_r = 1/d   (CSIL Eq. 5)
           pi_R starts as pi_BC, so pi_BC is soft-optimal for r at the start (coherence); the reward is
           refined: L_R = -mean r(demo) + mean(exp(-r_o) - 1 + r_o), r_o = max(r_online, -5)  (code: config.py;
           it clips inside the exp only, see reward_refinement_loss); r unshifted, also for CSIL++
  critic   y = r + gamma (1 - d) min(V'(s'), r_max / (1 - gamma)),
           V'(s') = Q'(s', a') - alpha (log pi(a'|s') - log pi_BC(a'|s')),  a' ~ pi(s')
           L_Q = mean (Q(s,a) - y)^2 + lambda sqrt(mean_demo ||dQ/da||^2)     (the action-Jacobian penalty)
  actor    L_pi = alpha KL(pi(s) || pi_BC(s)) - Q(s, a~pi),  the KL exact between the pre-tanh Gaussians

The reward. Tandem stores one learner-level reward for every algorithm (learner/reward_shaping.py), but CSIL
is an inverse-RL method: its critic learns from its OWN reward r(s,a), computed inside each update from the
batch's (s, a). The task reward in replay is NOT used (as in the CSIL code and CSIL++: "Our non-CSIL-based
approaches use a constant negative reward of -1", i.e. CSIL's use none); only replay's `terminated` is, for
bootstrapping at the success that ends an episode (CSIL++ Sec. V).

variant "plus_plus" (CSIL++, `--algo csil_pp`): the critic becomes XQC's (learner/networks/
normalized_critic.py: BN, unit-norm hidden weights, categorical over [v_min, 0]) with a joint s/s' pass and no
target network; the reward is shifted by its upper bound so it stays negative (the categorical support is
non-positive, and positive rewards would pay for staying alive rather than succeeding, Sec. III-A); the actor
steps once per `policy_delay` updates (run with `learner --utd 4`: 4 critic steps and 1 actor step per
environment step, Table II); the policy's MLP gets LayerNorm; entropy coefficient 0.3 and batch 128.

`--algo xqc_od`: CSIL++'s baseline (Sec. IV, "XQC+OD"): XQC, i.e. SAC with the same normalised categorical
critic, learning from the task's reward in replay (CSIL++'s non-CSIL methods use -1 per step: Tandem's
`shaped` reward), with demonstrations in every batch and the same BC-pretrained HetStat policy, entropy
regularisation with a tuned temperature (target entropy -|A|) in place of the KL to pi_BC, and no coherent
reward, reward refinement, critic pretraining or action-Jacobian penalty. Its atoms span the shaped
reward's returns, [-100, 0]; with `learner --reward task` (1/0) set v_min=0, v_max=1.

With `base_policy` set (any variant), the robot executes the mean of a frozen base chunk policy's action
and the learned policy's (CSIL++ Eq. 3; learner/algorithms/csil_base.py); the critic and the reward score
that executed action and the actor maximises Q at it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import torch

from common.specs import RobotSpec
from common.types import Batch
from learner.algorithms.base import ALGORITHMS, Algorithm, SamplingSpec, Stage, config_to_dict
from learner.algorithms.sac import actor_loss, temperature_loss
from learner.algorithms.csil_base import COMBINE, BaseEnsemble, combine_actions, load_base_policy
from learner.algorithms.csil_nets import CSILNets
from learner.networks.distributions import TanhGaussian
from learner.networks.encoders import ImageEncoderConfig
from learner.networks.hetstat import MIN_VAR, gaussian_kl

VARIANTS = ("csil", "plus_plus")
REWARD_SOURCES = ("coherent", "task")
REGULARISERS = ("kl", "entropy")
# The code's bound on the per-dimension log-ratio: -0.5 log(MIN_VAR) + log 2 (~6.45; reference notes §7).
MAX_REWARD = -0.5 * math.log(MIN_VAR) + math.log(2.0)


@dataclass(frozen=True)
class CSILConfig(ImageEncoderConfig):
    """CSIL's hyper-parameters (google-deepmind/csil run_csil.py unless stated; CSIL++ Table II in csil_pp)."""

    variant: str = "csil"
    """"csil" (the NeurIPS 2023 code) or "plus_plus" (CSIL++: normalised categorical critic, see the module doc)."""
    batch_size: int = 256
    """Transitions per update (the code's 256 demo + 256 online; here 256 split by demo_ratio)."""
    demo_ratio: float = 0.5
    """Fraction of each online batch drawn from the demonstrations (the code concatenates equal halves)."""
    gamma: float = 0.99
    """Discount factor (the code's 0.99)."""
    tau: float = 0.005
    """Polyak step of the target critic (the code's 0.005; unused by plus_plus, which has no target network)."""
    actor_lr: float = 3e-4
    """Adam learning rate of the actor (the code's 3e-4)."""
    critic_lr: float = 3e-4
    """Adam learning rate of the critic and the observation encoder (the code's 3e-4)."""
    reward_lr: float = 1e-3
    """Adam learning rate of the reward refinement (the code's 1e-3)."""
    bc_lr: float = 1e-3
    """Adam learning rate of BC pretraining (the code's 1e-3)."""
    critic_pretrain_lr: float = 1e-4
    """Adam learning rate of the SARSA critic pretraining (the code's 1e-4)."""
    bc_updates: int = 2000
    """BC updates (code 25k, CSIL++ 50k for 200 demos; Tandem's ~40-row demo is fit in far fewer, as ALOE's)."""
    critic_pretrain_updates: int = 1000
    """SARSA critic updates on the demo (code 5k, CSIL++ 20k; scaled down with bc_updates for a ~40-row demo)."""
    hidden_dims: tuple[int, ...] = (256, 256)
    """Hidden widths of the policy's MLP (the code's [256, 256], then the bottleneck)."""
    bottleneck: int = 12
    """Width of the MLP output fed to the stationary layer (the code's 12)."""
    stationary_width: int = 256
    """Width of the periodic feature layer (the code's 256)."""
    log_lengthscale: float = 0.0
    """Initial log input scale of the periodic layer (code -5 with 25k BC steps; 0 lets 2000 steps fit the demo)."""
    policy_layer_norm: bool = False
    """LayerNorm in the policy's MLP (CSIL++ Table II: policy normalisation)."""
    critic_hidden_dims: tuple[int, ...] = (256, 256)
    """Hidden widths of the critic (the code's LayerNormMLP [256, 256])."""
    entropy_coefficient: float = 0.01
    """alpha, the fixed weight of the KL to pi_BC in the soft value and the actor (the code's 0.01)."""
    reward_scaling: float = 1.0
    """alpha_r * d: the reward's scale is reward_scaling / action_dim (the code: "do not change")."""
    jacobian_penalty: float = 1.0
    """lambda, weight of sqrt(mean_demo ||dQ/da||^2) in the critic loss (the code's grad_norm_sf 1.0)."""
    online_reward_penalty: float = 1.0
    """Weight of the refinement's penalty on online rewards (the code's scale_factor 1.0)."""
    policy_delay: int = 1
    """Actor steps once every this many updates (CSIL++: once per environment step at UTD 4, i.e. 4)."""
    num_bins: int = 101
    """plus_plus: atoms of the categorical critic (Table II: 101)."""
    # Not Table II's -8: [-8, 0] holds only rewards within 0.08 of the bound per step; a one-demo BC policy scores
    # the demo's own actions 3.5-7 below it, and a critic on [-8, 0] sat at -8 for every action (no actor signal).
    v_min: float = -MAX_REWARD / (1.0 - 0.99)
    """plus_plus: lowest atom, -bound / (1 - gamma) ~ -645, the return of log-ratio 0 (not Table II's -8)."""
    v_max: float = 0.0
    """plus_plus: highest atom (Table II: 0; the shifted reward is <= 0)."""
    base_policy: str = ""
    """A saved policy file (e.g. a run's best_policy.npz) acting as the frozen base; "" = none (csil_base.py)."""
    base_every: int = 10
    """N, steps between the base's re-plans (the paper's 10; at most the base's chunk length)."""
    combine: str = "mean"
    """How base and learned actions combine: "mean" (Eq. 3, the paper's ensemble) or "residual" (Eq. 2)."""
    reward_source: str = "coherent"
    """"coherent" (the learned reward) or "task" (replay's stored reward: the XQC+OD baseline, `--algo xqc_od`)."""
    regulariser: str = "kl"
    """"kl" (alpha KL to pi_BC, CSIL) or "entropy" (SAC's, the temperature tuned toward -|A|: XQC+OD)."""
    init_temperature: float = 0.1
    """regulariser "entropy": the temperature's start (SAC's 0.1); it is then tuned at actor_lr."""

    def __post_init__(self) -> None:
        conditions = {
            f"variant must be one of {VARIANTS}": self.variant in VARIANTS,
            f"reward_source must be one of {REWARD_SOURCES}, regulariser one of {REGULARISERS}": (
                self.reward_source in REWARD_SOURCES and self.regulariser in REGULARISERS),
            f"combine must be one of {COMBINE}, base_every >= 1": self.combine in COMBINE and self.base_every >= 1,
            "batch_size, policy_delay, bottleneck must be positive, num_bins >= 2": min(
                self.batch_size, self.policy_delay, self.bottleneck, self.num_bins - 1) > 0,
            "stationary_width must be even and >= 2": self.stationary_width >= 2 and self.stationary_width % 2 == 0,
            "demo_ratio must be in [0, 1]": 0.0 <= self.demo_ratio <= 1.0,
            "gamma must be in [0, 1)": 0.0 <= self.gamma < 1.0,
            "tau must be in (0, 1]": 0.0 < self.tau <= 1.0,
            "learning rates, reward_scaling and init_temperature must be positive": min(self.actor_lr, self.critic_lr,
                self.reward_lr, self.bc_lr, self.critic_pretrain_lr, self.reward_scaling, self.init_temperature) > 0,
            "update counts, penalties and entropy_coefficient must be >= 0": min(self.bc_updates,
                self.critic_pretrain_updates, self.jacobian_penalty, self.online_reward_penalty,
                self.entropy_coefficient) >= 0,
            "hidden dims must be non-empty and positive": bool(self.hidden_dims) and bool(self.critic_hidden_dims)
                and min(*self.hidden_dims, *self.critic_hidden_dims) > 0,
            "v_min must be below v_max": self.v_min < self.v_max,
            **self.image_conditions(),
        }  # fmt: skip
        failed = [message for message, ok in conditions.items() if not ok]
        if failed:
            raise ValueError(f"invalid {type(self).__name__}: {'; '.join(failed)}")


@dataclass(frozen=True)
class CSILPlusPlusConfig(CSILConfig):
    """CSIL++'s defaults (Table II); everything else as CSIL ("Same as CSIL")."""

    variant: str = "plus_plus"
    """CSIL++ (see the module doc)."""
    batch_size: int = 128
    """Table II: batch size 128."""
    entropy_coefficient: float = 0.3
    """Table II: entropy coefficient 0.3."""
    policy_layer_norm: bool = True
    """Table II: policy normalisation is LayerNorm."""
    policy_delay: int = 4
    """One actor step per environment step at Table II's UTD 4 (run with `learner --utd 4`)."""


@dataclass(frozen=True)
class XQCODConfig(CSILPlusPlusConfig):
    """CSIL++'s XQC + offline-data baseline (the module doc): CSIL++'s constants where they are shared."""

    reward_source: str = "task"
    """The task's reward as replay stores it (CSIL++: "a constant negative reward of -1")."""
    regulariser: str = "entropy"
    """SAC's entropy regularisation, which CSIL++ replaces with the KL to pi_BC."""
    critic_pretrain_updates: int = 0
    """No SARSA pretraining: that is CSIL's (the baseline keeps only BC pretraining)."""
    jacobian_penalty: float = 0.0
    """No action-Jacobian penalty: that is CSIL's."""
    v_min: float = -100.0
    """The shaped reward's lowest return, -1 / (1 - gamma) (and its failure value)."""


# --- losses ------------------------------------------------------------------------------------------


def faithful_bc_loss(dist: TanhGaussian, action: torch.Tensor) -> torch.Tensor:
    """CSIL's "faithful" BC: MSE of the mode to the action, plus the NLL under the same Gaussian with its mean
    stop-gradiented (the mean is fit by the MSE alone, the variance by the likelihood)."""
    mse = (dist.deterministic_action() - action).square().sum(-1)
    nll = -TanhGaussian(dist.mean.detach(), dist.log_std).log_prob(action)
    return (mse + nll).mean()


def coherent_reward(reward_dist: TanhGaussian, action: torch.Tensor, scale: float) -> torch.Tensor:
    """CSIL Eq. 5 / CSIL++ Eq. 1: scale (log pi_R(a|s) - log p(a)), p uniform on [-1, 1]^d (log p = -d log 2)."""
    log_uniform = -action.shape[-1] * math.log(2.0)
    return scale * (reward_dist.log_prob(action) - log_uniform)


def reward_refinement_loss(log_ratio: torch.Tensor, is_demo: torch.Tensor, penalty: float) -> torch.Tensor:
    """Raise the demonstrations' reward; pull the online rows' log-ratio r (the unshifted reward) toward 0 with the
    KL estimator exp(-r) - 1 + r (>= 0), r clipped at -5 in both terms.

    The code clips only inside the exp ("we just clip the negative online rewards"), which leaves +r's gradient to
    push any r below -5 further down without end: over a base policy, whose executed actions often score below -5,
    one seed in five drove online rewards to -1e6 and its critic to the lowest atom. Clipped in both terms, rows
    below -5 are left alone, as the code's comment intends."""
    demo, online = is_demo > 0.5, is_demo <= 0.5
    loss = -log_ratio[demo].mean() if demo.any() else log_ratio.new_zeros(())
    if online.any():
        r = log_ratio[online].clamp_min(-5.0)
        loss = loss + penalty * (torch.exp(-r) - 1.0 + r).mean()
    return loss


def jacobian_penalty(q: torch.Tensor, action: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """sqrt(mean over `rows` of ||dQ/da||^2); `action` must require grad and feed `q` (B,)."""
    if not rows.any():
        return q.new_zeros(())
    (grad,) = torch.autograd.grad(q.sum(), action, create_graph=True)
    return torch.sqrt(grad[rows].square().sum(-1).mean() + 1e-12)


def kl_regularised_actor_loss(kl: torch.Tensor, q: torch.Tensor, alpha: float) -> torch.Tensor:
    """E[alpha KL(pi(s) || pi_BC(s)) - Q(s, a ~ pi)]."""
    return (alpha * kl - q).mean()


# --- the algorithm -----------------------------------------------------------------------------------


class CSIL(Algorithm):
    """Coherent soft imitation: BC, a coherent learned reward, SARSA critic pretraining, KL-regularised SAC."""

    Config = CSILConfig
    uses_stored_reward = False  # the critic learns from the coherent reward (module doc)

    def __init__(self, config: CSILConfig, spec: RobotSpec, device: torch.device, seed: int = 0) -> None:
        super().__init__(config, spec, device, seed)
        self.nets = CSILNets(config, spec, self.device, seed)
        self.base = load_base_policy(config.base_policy, spec).to(self.device) if config.base_policy else None
        self.reward_scale = config.reward_scaling / spec.action_dim
        self.num_updates = 0
        self.log_alpha = torch.tensor(float(config.init_temperature), device=self.device).log().requires_grad_()
        self.temperature_optimizer = torch.optim.Adam([self.log_alpha], lr=config.actor_lr)
        self.target_entropy = -float(spec.action_dim)

    @property
    def alpha(self) -> torch.Tensor:
        """The regulariser's weight: the fixed entropy_coefficient of the KL, or the tuned temperature."""
        if self.config.regulariser == "kl":
            return torch.tensor(self.config.entropy_coefficient, device=self.device)
        return self.log_alpha.exp().detach()

    @staticmethod
    def make_policy(config: CSILConfig, spec: RobotSpec):
        return CSILNets.make_policy(config, spec)

    # ---- the policy the actor runs: the learned one alone, or ensembled with a frozen base -------
    @classmethod
    def make_named_policy(cls, config: CSILConfig, spec: RobotSpec, policy: str = "online"):
        if policy != "online" or not config.base_policy:
            return super().make_named_policy(config, spec, policy)
        return BaseEnsemble(load_base_policy(config.base_policy, spec), cls.make_policy(config, spec))

    def named_policy_state_dict(self, policy: str = "online") -> dict[str, torch.Tensor]:
        learned = super().named_policy_state_dict(policy)
        if self.base is None:
            return learned
        base = {f"base.{k}": v.detach().clone() for k, v in self.base.state_dict().items()}
        return {**base, **{f"learned.{k}": v for k, v in learned.items()}}

    def policy_program(self, policy: str = "online") -> tuple[str, dict[str, Any]]:
        if policy != "online":
            raise ValueError(f"CSIL has no policy {policy!r}; it has 'online'")
        if self.base is None:
            return "one_step", {}
        every = min(self.config.base_every, self.base.chunk_length)
        return "ensembled", {"every": every, "combine": self.config.combine}

    def executed(self, observation: Mapping[str, torch.Tensor], action: torch.Tensor,
                 base_action: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
        """The action the robot executes when the learned policy proposes `action` (itself without a base)."""
        if self.base is None:
            return action
        if base_action is None:
            base_action = self.base.act_chunk(observation)[:, 0]
        return combine_actions(base_action, action, self.config.combine)

    @property
    def plus_plus(self) -> bool:
        return self.config.variant == "plus_plus"

    @property
    def sampling(self) -> SamplingSpec:
        cfg = self.config
        return SamplingSpec(cfg.batch_size, 1, cfg.demo_ratio, cfg.gamma)

    def stages(self) -> list[Stage]:
        cfg = self.config
        stages = [Stage("bc", "offline", cfg.bc_updates)] if cfg.bc_updates else []
        if cfg.critic_pretrain_updates:
            stages.append(Stage("critic", "offline", cfg.critic_pretrain_updates))
        return [*stages, Stage("online", "online", 0)]

    # ---- offline stages --------------------------------------------------------------------------
    def offline_update(self, stage: str, batch: Batch) -> dict[str, float]:
        """"bc": one faithful-BC step on demo transitions; "critic": one SARSA step of the critic on them."""
        nets = self.nets
        observation = nets.augment(batch.observation)
        if stage == "bc":
            loss = faithful_bc_loss(nets.policy(observation), batch.action)
            nets.step(nets.bc_optimizer, loss)
            return {"bc_loss": loss.item()}
        if stage == "critic":
            return self._critic_step(batch, observation, nets.augment(batch.next_observation), pretrain=True)
        raise ValueError(f"CSIL has no offline stage {stage!r}; it has 'bc' and 'critic'")

    def end_stage(self, stage: str) -> None:
        """After BC the policy is pi_BC: copy it into the frozen prior and the reward network (coherence)."""
        if stage == "bc":
            self.nets.copy_bc_policy()

    # ---- one online update -----------------------------------------------------------------------
    def update(self, batch: Batch) -> dict[str, float]:
        nets = self.nets
        observation, next_observation = nets.augment(batch.observation), nets.augment(batch.next_observation)
        metrics = self._critic_step(batch, observation, next_observation, pretrain=False)
        if self.num_updates % self.config.policy_delay == 0:
            metrics.update(self._actor_step(observation))
        self.num_updates += 1
        return metrics

    def _critic_step(self, batch: Batch, observation: dict, next_observation: dict, pretrain: bool) -> dict:
        """One critic (and, online, reward) step. Pretraining is expected SARSA under pi = pi_BC on the demo."""
        cfg, nets = self.config, self.nets
        learned_reward = cfg.reward_source == "coherent"
        if learned_reward:
            log_ratio = self.log_ratio_reward(observation, batch.action)
            reward = self.shift(log_ratio)
        else:
            reward = batch.reward
        action = batch.action.detach().clone().requires_grad_(True)
        base_next = None if self.base is None else self.base.act_chunk(next_observation)[:, 0]
        q, next_value = nets.critic_and_target(observation, next_observation, action,
                                               lambda dist, prior: self._next_action(dist, prior, base_next))
        if learned_reward:  # the code's clip of rogue values at the reward's bound: 0 once it is shifted
            next_value = next_value.clamp_max(0.0 if self.plus_plus else self.reward_bound / (1.0 - cfg.gamma))
        y = reward.detach() + cfg.gamma * (1.0 - batch.terminated) * next_value
        rows = batch.is_demo > 0.5
        q_loss = nets.critic_loss(q, y)
        losses, total = {"critic_loss": q_loss}, q_loss
        if cfg.jacobian_penalty:
            losses["jacobian_penalty"] = grad_penalty = jacobian_penalty(nets.q_value(q), action, rows)
            total = total + cfg.jacobian_penalty * grad_penalty
        if learned_reward and not pretrain:
            # On the unshifted log-ratio, as the code does with negative_reward: its KL estimator pulls online
            # log-ratios toward 0, which the shifted reward (always <= 0) would turn into a push toward the bound.
            losses["reward_loss"] = reward_refinement_loss(log_ratio, batch.is_demo, cfg.online_reward_penalty)
            total = total + losses["reward_loss"]
        nets.step(nets.pretrain_optimizer if pretrain else nets.optimizer, total, polyak=True)
        losses.update(q_mean=nets.q_value(q).detach().mean(), target_q_mean=y.mean(), reward_mean=reward.mean(),
                      reward_demo=reward[rows].mean() if rows.any() else reward.new_zeros(()))  # fmt: skip
        if self.plus_plus:  # the categorical critic's support must hold the returns (a flat -8 once showed it did not)
            losses["target_outside_support"] = nets.critic.outside_support(y)
        return dict(zip(losses, torch.stack([v.detach() for v in losses.values()]).tolist()))

    @property
    def reward_bound(self) -> float:
        """The coherent reward's upper bound, MAX_REWARD times reward_scaling (alpha_r * d)."""
        return MAX_REWARD * self.config.reward_scaling

    def log_ratio_reward(self, observation: Mapping[str, torch.Tensor], action: torch.Tensor) -> torch.Tensor:
        """CSIL's coherent reward, alpha_r (log pi_R(a|s) - log p(a)) (B,), unshifted."""
        return coherent_reward(self.nets.reward(observation), action, self.reward_scale)

    def shift(self, log_ratio: torch.Tensor) -> torch.Tensor:
        """The reward the critic learns from: CSIL++ shifts the log-ratio by its bound so it stays <= 0."""
        return (log_ratio - self.reward_bound).clamp_max(0.0) if self.plus_plus else log_ratio

    def _next_action(self, dist: TanhGaussian, prior: TanhGaussian,
                     base_next: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
        """The executed a' for a' ~ pi(s') and the soft value's term: alpha (log pi(a'|s') - log pi_BC(a'|s')) for
        the KL, alpha log pi(a'|s') for the entropy."""
        next_action, log_prob = dist.sample(self.nets.generator)
        if self.config.regulariser == "kl":
            log_prob = log_prob - prior.log_prob(next_action)
        return self.executed({}, next_action, base_next), self.alpha * log_prob

    def _actor_step(self, observation: dict) -> dict[str, float]:
        cfg, nets = self.config, self.nets
        features = nets.encoder(observation).detach()
        dist = nets.policy.distribution(features)
        with torch.no_grad():
            prior = nets.prior(observation)
        action, log_prob = dist.rsample(nets.generator)
        log_prob = log_prob.sum(-1)  # rsample's is per dimension
        kl = gaussian_kl(dist.mean, dist.log_std, prior.mean, prior.log_std)
        q = nets.actor_q(features, self.executed(observation, action))
        if cfg.regulariser == "kl":
            loss = kl_regularised_actor_loss(kl, q, cfg.entropy_coefficient)
        else:
            loss = actor_loss(log_prob, q, self.alpha)
        nets.step(nets.optimizer, loss)
        metrics = {"actor_loss": loss.detach(), "kl_to_bc": kl.detach().mean(),
                   "policy_std": dist.log_std.detach().exp().mean()}
        if cfg.regulariser == "entropy":
            self.temperature_optimizer.zero_grad(set_to_none=True)
            temperature_loss(self.log_alpha, -log_prob.detach().mean(), self.target_entropy).backward()
            self.temperature_optimizer.step()
            metrics["alpha"] = self.alpha
        return dict(zip(metrics, torch.stack(list(metrics.values())).tolist()))

    @torch.no_grad()
    def mean_action(self, observation: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self.nets.policy(observation).deterministic_action()

    # ---- weights and checkpoints -----------------------------------------------------------------
    def policy_state_dict(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in self.nets.policy.state_dict().items()}

    def state_dict(self) -> dict[str, Any]:
        return {"config": config_to_dict(self.config), "nets": self.nets.state_dict(), "num_updates": self.num_updates,
                "log_alpha": self.log_alpha.detach().clone(), "temperature": self.temperature_optimizer.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.nets.load_state_dict(state["nets"])
        self.num_updates = int(state["num_updates"])
        with torch.no_grad():
            self.log_alpha.copy_(state["log_alpha"])
        self.temperature_optimizer.load_state_dict(state["temperature"])


class CSILPlusPlus(CSIL):
    """CSIL++: CSIL with XQC's critic and Table II's constants (`--algo csil_pp`)."""

    Config = CSILPlusPlusConfig


class XQCOfflineData(CSIL):
    """CSIL++'s XQC+OD baseline: XQC's critic on the task reward with demo data and SAC's entropy (`--algo xqc_od`)."""

    Config = XQCODConfig
    uses_stored_reward = True


ALGORITHMS.register("csil")(CSIL)
ALGORITHMS.register("csil_pp")(CSILPlusPlus)
ALGORITHMS.register("xqc_od")(XQCOfflineData)
