"""Q2RL (Dodeja et al., RSS 2026, "When Life Gives You BC, Make Q-functions") as rai-opensource/q2rl runs it.

Stages (Alg. 1):
  1. "bc" (offline, skipped with `bc_policy=PATH`): a tanh-Gaussian BC policy fitted to the demonstrations
     by likelihood (robomimic's BC-Gaussian, the paper's BC policy class);
  2. "bc_rollouts" (rollouts): `bc_rollouts` training episodes acted by the BC policy's MODE (the code's
     argmax=True), stored in online replay, where replay computes their Monte-Carlo returns G_t;
  3. "q_estimation" (offline, on those online rows with returns-to-go): V(s) -> G_t; the critic ensemble
     -> the code's target y = G_t + clip(log pi_BC(a_t|s_t), -100) + H[pi_BC(.|s_t)] (Eq. 6 with G_t for V,
     the exact entropy in nats summed over dimensions); the RL actor -> -log pi_RL(clip(a_t, +-0.99)|s_t),
     i.e. initialised as the BC policy. Rows the actor's random policy acted before any weights (while BC
     trained) are masked out: they are not pi_BC's. Its end freezes Q_BC = V + log pi_BC + H (Eq. 6: V and pi_BC are
     never trained again) and starts Q_RL (the fitted ensemble) with targets equal to it;
  4. "online": the actor runs the gate (Eq. 10, program "gated"): a_BC = mode pi_BC scored by the frozen
     Q_BC, a_RL = mode pi_RL scored by min over the Q_RL ensemble, a_RL runs iff strictly higher. One update
     is the code's high-UTD block (WSRL/SERL `update_high_utd`): `utd` critic steps on minibatches of
     `batch_size` online rows, then one actor step on the whole sampled block.
Critic: r + gamma (1 - d) min over a random subset of 2 target critics (drawn WITH replacement, as WSRL's
`randint`) at a' ~ pi_RL(s'), no entropy backup. Actor: (1 - w) (-min_k Q_k(s, a~)) + w NLL_pi_RL(clip(mode
pi_BC(s), +-0.99)), no alpha log pi term (the code learns a temperature it never uses; here there is none).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping

import torch

from common.specs import RobotSpec
from common.types import Batch
from learner.algorithms.actor_critic import ActorCritic, ActorCriticConfig, mc_returns
from learner.algorithms.base import ALGORITHMS, Algorithm, SamplingSpec, Stage, config_to_dict
from learner.algorithms.rlpd import symmetric_minibatches
from learner.algorithms.sac import critic_loss
from learner.networks.encoders import encoder_for
from learner.networks.ensemble import CriticEnsemble
from learner.networks.policies import TanhGaussianPolicy
from learner.networks.q2rl import FrozenQBC, Q2RLPolicies, ValueNetwork, estimated_q_bc, tanh_gaussian_entropy

NLL_ACTION_CLIP = 0.99  # the code scores actions clipped to +-0.99 in every likelihood loss (atanh stays finite)
POLICIES = ("online", "bc")  # the gated pair the actor runs online, and the BC policy the rollouts run


def check_policy(policy: str) -> None:
    if policy not in POLICIES:
        raise ValueError(f"Q2RL has no policy {policy!r}; it has {', '.join(map(repr, POLICIES))}")


@dataclass(frozen=True)
class Q2RLConfig(ActorCriticConfig):
    """Q2RL's settings; sources: the paper's Tables I-II (state-based simulation) and the code's launch scripts.

    Inherited unchanged because Table II has the same values: batch 256, actor and critic lr 3e-4, gamma 0.99,
    tau 0.005. log std clamps (-20, 2) and no gradient clipping are the shared defaults.
    """

    hidden_dims: tuple[int, ...] = (512, 512, 512)
    """RL actor and critic widths: Table II (simulation, state) and the code's adroit_wsrl config, 3x512."""
    num_critics: int = 10
    """Critic ensemble size: Table II (10)."""
    target_min_subset: int = 2
    """Target critics the target's min is over, drawn with replacement each critic step: Table II (2)."""
    critic_layer_norm: bool = True
    """LayerNorm in the critics (and V): Table II (yes)."""
    demo_ratio: float = 0.0
    """Demo share of online batches: 0, the code's online phase samples the online buffer only."""
    utd: int = 4
    """Critic steps per update block (one actor step each): Table II UTD ratio 4."""
    bc_weight: float = 0.3
    """w in the actor loss (1 - w)(-min Q) + w NLL(BC mode): Table I (0.3 for Kitchen, Pen, Door, Lift, Can)."""
    bc_policy: str = ""
    """A saved one-step tanh-Gaussian policy file (e.g. best_policy.npz) used as pi_BC; empty: train one on --demo."""
    bc_hidden_dims: tuple[int, ...] = (256, 256)
    """BC policy widths; 256x256 is every other algorithm's actor here, so their saved policies load as pi_BC."""
    # At 2000, the offline baselines' count, the Go2 slalom BC mode succeeded in 0, 65 and 15 % of 20 episodes by
    # seed; at 10k in 85/80/60 %, at 25k in 80/90/60 % (benchmarks/results/2026-12-06/seed_systems/README.md).
    bc_updates: int = 25000
    """BC likelihood updates on the demo (stage "bc"): Table I, Can-State's 250 robomimic epochs of 100 steps."""
    bc_lr: float = 1e-4
    """Adam learning rate of the BC policy: robomimic's BC default (the paper trains BC with robomimic)."""
    bc_rollouts: int = 50
    """Episodes of the BC mode before Q-estimation: Table II (50 for D4RL; 100 robomimic, 30-100 real)."""
    q_estimation_updates: int = 20000
    """Q-estimation updates on the rollouts (V, critic and RL-actor init): Table II (20k; 50k for Square)."""
    acting_deterministic: bool = True
    """Both policies propose their modes in training episodes too (the code's argmax=True; the gate explores)."""
    gate_q_bc: bool = True
    """Score the BC proposal by the frozen Q_BC (Eq. 10); False: by Q_RL too (Fig. 6's No Q-Gating ablation)."""
    init_q_rl: bool = True
    """Q_RL starts as the Q-estimation fit; False: from fresh random weights (Fig. 6's No Q-Init ablation)."""

    def __post_init__(self) -> None:
        self.check({
            "target_min_subset must be >= 1": self.target_min_subset >= 1,
            "utd must be >= 1": self.utd >= 1,
            "bc_weight must be in [0, 1]": 0.0 <= self.bc_weight <= 1.0,
            "bc_hidden_dims must be non-empty and positive": bool(self.bc_hidden_dims) and min(self.bc_hidden_dims) > 0,
            "bc_updates must be >= 0 and bc_lr positive": self.bc_updates >= 0 and self.bc_lr > 0,
            "bc_rollouts must be >= 1 (Q-estimation fits the rollouts)": self.bc_rollouts >= 1,
            "q_estimation_updates must be >= 0": self.q_estimation_updates >= 0,
        })  # fmt: skip


# --- losses ------------------------------------------------------------------------------------------


def q_estimation_target(mc_return: torch.Tensor, bc_log_prob: torch.Tensor, bc_entropy: torch.Tensor) -> torch.Tensor:
    """The code's critic target in Q-estimation: Eq. 6 with the row's Monte-Carlo return G_t in place of V(s)."""
    return estimated_q_bc(mc_return, bc_log_prob, bc_entropy)


def masked_mean(values: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Mean over the batch rows with weight 1 (the last axis) and any leading axis (e.g. critics); 0 if none."""
    return (values * rows).sum(-1).mean() / rows.sum().clamp(min=1.0)


def value_loss(value: torch.Tensor, mc_return: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Eq. 7's estimator: V(s_t) regressed on the Monte-Carlo return of the BC rollouts."""
    return masked_mean((value - mc_return).square(), rows)


def q_estimation_critic_loss(q: torch.Tensor, target: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Every critic (E, B) regressed on the Q-estimation target (Q_RL's initial supervised fit to Q_BC)."""
    return masked_mean((q - target).square(), rows)


def nll_loss(log_prob: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
    """Negative log-likelihood of given actions (BC, RL-actor initialisation, the actor's BC term)."""
    return -log_prob.mean() if rows is None else -masked_mean(log_prob, rows)


def actor_loss(q_min: torch.Tensor, bc_nll: torch.Tensor, bc_weight: float) -> torch.Tensor:
    """(1 - w) * mean(-min_k Q_k(s, a~pi_RL)) + w * NLL of the BC mode (the paper's auxiliary BC loss [29])."""
    return (1.0 - bc_weight) * (-q_min.mean()) + bc_weight * bc_nll


def critic_target(reward, terminated, next_q_subset_min, gamma: float) -> torch.Tensor:
    """r + gamma (1 - d) min over the target subset, no entropy backup; d is the TRUE termination."""
    return reward + gamma * (1.0 - terminated) * next_q_subset_min


def clipped(action: torch.Tensor) -> torch.Tensor:
    return action.clamp(-NLL_ACTION_CLIP, NLL_ACTION_CLIP)


def acted_by_weights(batch: Batch) -> torch.Tensor:
    """(B,) 1 for rows some published policy acted (or demo rows), 0 for rows the actor's random policy acted
    before any weights arrived (policy_version -1): Q-estimation fits what pi_BC's episodes are worth."""
    if "policy_version" not in batch.extras:
        raise KeyError("Q2RL's Q-estimation needs extras['policy_version'] (replay's transitions carry it)")
    return ((batch.extras["policy_version"].reshape(-1) >= 0) | (batch.is_demo > 0.5)).float()


# --- the algorithm -----------------------------------------------------------------------------------


def make_bc_policy(config: Q2RLConfig, spec: RobotSpec) -> TanhGaussianPolicy:
    encoder = encoder_for(spec.observation, config)
    return TanhGaussianPolicy(encoder, spec.action_dim, config.bc_hidden_dims, config.log_std_min, config.log_std_max)


def make_gated_policies(config: Q2RLConfig, spec: RobotSpec) -> Q2RLPolicies:
    """The module the actor runs online (fresh weights; the learner's weights load into it strictly)."""
    value = ValueNetwork(encoder_for(spec.observation, config), config.hidden_dims)
    rl = TanhGaussianPolicy(encoder_for(spec.observation, config), spec.action_dim,
                            config.hidden_dims, config.log_std_min, config.log_std_max)  # fmt: skip
    critic = CriticEnsemble(config.num_critics, rl.encoder.out_dim, spec.action_dim, config.hidden_dims,
                            config.critic_layer_norm)  # fmt: skip
    return Q2RLPolicies(FrozenQBC(make_bc_policy(config, spec), value), rl, critic, config.gate_q_bc)


class Q2RL(Algorithm):
    """Q-estimation from a BC policy, then SAC-style online RL on the gate's data (see the module docstring)."""

    Config = Q2RLConfig

    def __init__(self, config: Q2RLConfig, spec: RobotSpec, device: torch.device, seed: int = 0) -> None:
        super().__init__(config, spec, device, seed)
        with torch.random.fork_rng(devices=[]):  # seeded weights without disturbing the global RNG
            torch.manual_seed(seed + 1)
            self.bc_policy = make_bc_policy(config, spec).to(self.device)
            self.value = ValueNetwork(encoder_for(spec.observation, config), config.hidden_dims).to(self.device)
        value_group = {"params": list(self.value.parameters()), "lr": config.critic_lr}
        self.nets = ActorCritic(config, spec, self.device, seed, extra_groups=(value_group,))
        self.bc_optimizer = torch.optim.Adam(self.bc_policy.parameters(), lr=config.bc_lr)
        # Shares every module with the learner's networks: its state dict is the online policy's weights.
        self.gated = Q2RLPolicies(FrozenQBC(self.bc_policy, self.value), self.nets.policy, self.nets.critic,
                                  config.gate_q_bc)  # fmt: skip
        if config.bc_policy:
            load_bc_policy(config.bc_policy, self.bc_policy, spec, config.bc_hidden_dims)
        self.num_updates = 0

    # ---- stages -------------------------------------------------------------------------------------
    def stages(self) -> list[Stage]:
        cfg = self.config
        bc = SamplingSpec(cfg.batch_size, 1, 1.0, cfg.gamma)
        rollouts = SamplingSpec(cfg.batch_size, 1, 0.0, cfg.gamma, returns_to_go=True)
        train_bc = [] if cfg.bc_policy else [Stage("bc", "offline", cfg.bc_updates, sampling=bc)]
        return [*train_bc, Stage("bc_rollouts", "rollouts", cfg.bc_rollouts, policy="bc"),
                Stage("q_estimation", "offline", cfg.q_estimation_updates, sampling=rollouts),
                Stage("online", "online", 0)]  # fmt: skip

    def offline_update(self, stage: str, batch: Batch) -> dict[str, float]:
        if stage == "bc":
            return self._bc_step(batch)
        if stage == "q_estimation":
            return self._q_estimation_step(batch)
        raise ValueError(f"Q2RL has no offline stage {stage!r}; it has 'bc' and 'q_estimation'")

    def end_stage(self, stage: str) -> None:
        if stage != "q_estimation":
            return
        if not self.config.init_q_rl:
            self._reinitialise_critics()
        self.nets.soft_update(1.0)  # Q_RL starts as the fitted ensemble (or fresh), its targets equal to it

    def _reinitialise_critics(self) -> None:
        """The No-Q-Init ablation: the ensemble's seeded initial weights again, its Adam moments forgotten."""
        cfg, nets = self.config, self.nets
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed + 2)
            fresh = CriticEnsemble(cfg.num_critics, nets.encoder.out_dim, self.spec.action_dim, cfg.hidden_dims,
                                   cfg.critic_layer_norm)  # fmt: skip
        nets.critic.load_state_dict(fresh.state_dict())
        for parameter in nets.critic.parameters():
            nets.optimizer.state.pop(parameter, None)

    def _bc_step(self, batch: Batch) -> dict[str, float]:
        action = clipped(batch.action.reshape(batch.size, -1))
        loss = nll_loss(self.bc_policy(self.nets.augment(batch.observation)).log_prob(action))
        self.bc_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.bc_optimizer.step()
        return {"bc_nll": float(loss.detach())}

    def _q_estimation_step(self, batch: Batch) -> dict[str, float]:
        """One step of V, the critics and the RL actor on the rollouts' rows (masked: see `acted_by_weights`)."""
        nets, mc_return, rows = self.nets, mc_returns(batch, "Q2RL's Q-estimation"), acted_by_weights(batch)
        observation, action = nets.augment(batch.observation), batch.action.reshape(batch.size, -1)
        with torch.no_grad():
            bc = self.bc_policy(observation)
            target = q_estimation_target(mc_return, bc.log_prob(action), tanh_gaussian_entropy(bc))
        features = nets.encoder(observation)
        q = nets.critic(features, action)
        loss_critic = q_estimation_critic_loss(q, target, rows)
        loss_value = value_loss(self.value(observation), mc_return, rows)
        loss_actor = nll_loss(nets.policy.distribution(features.detach()).log_prob(clipped(action)), rows)
        nets.optimize(loss_critic + loss_value + loss_actor)
        values = [loss_critic, loss_value, loss_actor, masked_mean(q.detach(), rows), masked_mean(target, rows)]
        names = ("critic_loss", "value_loss", "actor_nll", "q_mean", "target_q_mean")
        return dict(zip(names, torch.stack([v.detach() for v in values]).tolist()))

    # ---- online -------------------------------------------------------------------------------------
    @property
    def sampling(self) -> SamplingSpec:
        """One block's rows: `utd` minibatches of `batch_size` (online rows only by default)."""
        cfg = self.config
        return SamplingSpec(cfg.batch_size * cfg.utd, 1, cfg.demo_ratio, cfg.gamma)

    def update(self, batch: Batch) -> dict[str, float]:
        """One block: `utd` critic steps (a smaller batch, e.g. in tests, gets one step per row), one actor step."""
        for minibatch in symmetric_minibatches(batch, min(self.config.utd, batch.size)):
            metrics = self._critic_step(minibatch)
        metrics.update(self._actor_step(batch))
        self.num_updates += 1
        return dict(zip(metrics, torch.stack([v.detach() for v in metrics.values()]).tolist()))

    def _critic_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        cfg, nets = self.config, self.nets
        observation, next_observation = nets.augment(batch.observation), nets.augment(batch.next_observation)
        with torch.no_grad():
            next_action, _ = nets.policy(next_observation).sample(nets.generator)
            next_q = nets.target_critic(nets.target_encoder(next_observation), next_action)
            subset = torch.randint(0, next_q.shape[0], (cfg.target_min_subset,), generator=nets.generator,
                                   device=self.device)  # fmt: skip
            target = critic_target(batch.reward, batch.terminated, next_q[subset].min(0).values, cfg.gamma)
        q = nets.critic(nets.encoder(observation), batch.action.reshape(batch.size, -1))
        loss = critic_loss(q, target)
        nets.optimize(loss)
        nets.soft_update(cfg.tau)
        return {"critic_loss": loss, "q_mean": q.detach().mean(), "q_std": q.detach().std(),
                "target_q_mean": target.mean()}  # fmt: skip

    def _actor_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        nets = self.nets
        observation = nets.augment(batch.observation)
        with torch.no_grad():  # the actor trains neither the encoder, the critics nor pi_BC
            features = nets.encoder(observation)
            bc_mode = self.bc_policy(observation).deterministic_action()
        distribution = nets.policy.distribution(features)
        new_action, _ = distribution.sample(nets.generator)
        q_min = nets.critic(features, new_action, detach_params=True).min(0).values
        bc_nll = nll_loss(distribution.log_prob(clipped(bc_mode)))
        loss = actor_loss(q_min, bc_nll, self.config.bc_weight)
        nets.optimize(loss)
        return {"actor_loss": loss, "actor_bc_nll": bc_nll}

    # ---- policies -----------------------------------------------------------------------------------
    @staticmethod
    def make_policy(config: Q2RLConfig, spec: RobotSpec) -> Q2RLPolicies:
        return make_gated_policies(config, spec)

    @classmethod
    def make_named_policy(cls, config: Q2RLConfig, spec: RobotSpec, policy: str = "online") -> torch.nn.Module:
        check_policy(policy)
        return make_bc_policy(config, spec) if policy == "bc" else make_gated_policies(config, spec)

    def named_policy_state_dict(self, policy: str = "online") -> dict[str, torch.Tensor]:
        check_policy(policy)
        module = self.bc_policy if policy == "bc" else self.gated
        return {k: v.detach().clone() for k, v in module.state_dict().items()}

    def policy_program(self, policy: str = "online") -> tuple[str, dict[str, Any]]:
        check_policy(policy)
        if policy == "bc":  # the rollouts act with the BC policy's mode, as the code's argmax=True
            return "one_step", {"deterministic": True}
        return "gated", {"deterministic": self.config.acting_deterministic}

    def policy_state_dict(self) -> dict[str, torch.Tensor]:
        return self.named_policy_state_dict("online")

    def state_dict(self) -> dict[str, Any]:
        return {"config": config_to_dict(self.config), "nets": self.nets.state_dict(),
                "bc_policy": self.bc_policy.state_dict(), "bc_optimizer": self.bc_optimizer.state_dict(),
                "value": self.value.state_dict(), "num_updates": self.num_updates}  # fmt: skip

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.nets.load_state_dict(state["nets"])
        self.bc_policy.load_state_dict(state["bc_policy"])
        self.bc_optimizer.load_state_dict(state["bc_optimizer"])
        self.value.load_state_dict(state["value"])
        self.num_updates = int(state["num_updates"])


def load_bc_policy(path: str, policy: TanhGaussianPolicy, spec: RobotSpec, widths: tuple[int, ...]) -> None:
    """Load a saved one-step tanh-Gaussian policy (`learner.best_policy.save_weights` format) into `policy`."""
    from learner.best_policy import load_weights

    try:
        weights, _ = load_weights(path)
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(f"bc_policy {path}: not a saved policy file ({exc})") from None
    if weights.spec_hash != spec.spec_hash:
        raise ValueError(f"bc_policy {path} is for robot spec {weights.spec_hash}, this run's is {spec.spec_hash}")
    try:
        policy.load_state_dict({k: torch.from_numpy(v) for k, v in weights.tensors.items()}, strict=True)
    except RuntimeError:
        saved = json.loads(weights.policy_config_json or "{}").get("hidden_dims")
        raise ValueError(f"bc_policy {path} ({weights.algorithm}, policy {weights.policy!r}) is not a tanh-Gaussian "
                         f"policy of bc_hidden_dims {list(widths)}; its config's hidden_dims are {saved}: pass "
                         f"--set bc_hidden_dims=... to match") from None  # fmt: skip


ALGORITHMS.register("q2rl")(Q2RL)
