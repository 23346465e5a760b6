"""ALOE (Yang, Wang, Liu et al. 2026, "Action-Level Off-Policy Evaluation for VLA Policy Post-Training").

  critic  y = sum_{k<h} gamma^k r_{t+k} + gamma^h min_i Q'_i(s_{t+h}, a'),  a' ~ pi(.|s_{t+h})     (Eq. 7)
          L_Q = 1/K sum_i E[(Q_i(s_t, a_{t:t+h}) - y)^2]                                          (Eq. 8)
  actor   A = min_i Q_i(s_t, a_{t:t+h}) - sg(V(s_t)),  V(s_t) = mean over M chunks a~pi of min_i Q_i  (Eqs. 9, 10)
          w = exp(clip(A / beta, -clip, clip)), no gradient                                       (Eq. 11)
          L_pi = E[w ||a_{t:t+h} - eps - f(eta a + (1 - eta) eps, eta, s_t)||^2]                     (Eq. 15)
The actor is a flow-matching policy over chunks of h actions (learner/networks/flow.py); the actor runs it
with the "chunked" program, executing e <= h actions of each plan. Critics score (s, flattened chunk).

h and e are set in seconds and converted with each robot's control rate. The paper's h = 50 spans 1-1.7 s
(50 Hz in its Fig. 3, 30 Hz in its appendix) and executes e = 25 of it for the precise phone insertion, 5 for
the reactive laundry and sorting (0.1-0.8 s open loop). The twins run at 10 Hz: h = 10 (a 1 s plan, as the
paper's) and e = 3 (0.3 s open loop), toward the reactive end because a rolling ball and a legged robot's
contacts change within a few hundred ms, while 3 periods still leave a plan 300 ms (it takes ~1 ms on one
core: benchmarks/flow_inference.py).

Sampling: h-step sequences from replay (`SamplingSpec(horizon=h)`), masked at an episode's end rather than
drawn only whole (`full_sequences=False`). The paper learns from fragments cut by failures and operator
takeovers, often shorter than h; whole sequences would never train on a fragment shorter than h and would
let each episode's terminal reward reach one start row instead of h. So the target is replay's
`n_step_return + bootstrap * Q'` (bootstrap = gamma^n, 0 after a termination) and the flow-matching error
counts only valid steps. Interventions stay in: their actions were executed, and TD stitches the fragments.

Stages (Alg. 1): offline "bc", flow matching on the demonstrations (line 1), then either
  schedule "continuous" (default): online, each update one critic and one actor step on the same batch,
    every algorithm's asynchronous schedule, so runs compare at matched updates per environment step and
    neither the robot nor the learner idles; or
  schedule "rounds": the paper's iterations (lines 2-16), each `round_episodes` rollouts of the current policy
    with no updates, then `round_critic_updates` critic steps (N_Q) and `round_actor_updates` actor steps (N_pi)
    on demo and online data, `rounds` times; then online as above (every run ends online).
The paper's collection rounds come from its human protocol (collect 50 successes, reset, train); Tandem's
actors and learner run concurrently, hence the default. Measured with the scripted corrector on ball-to-goal
at matched updates and env steps: continuous 100 % final in 5/5 seeds, rounds 85 % in 3 (the corrector still
driving ~15 % of steps at the end, against 1 %): benchmarks/results/2026-12-06/seed_systems/README.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, NamedTuple

import torch

from common.specs import RobotSpec
from common.types import Batch
from learner.algorithms.actor_critic import ActorCritic
from learner.algorithms.base import ALGORITHMS, Algorithm, SamplingSpec, Stage, config_to_dict
from learner.networks.encoders import ImageEncoderConfig, encoder_for
from learner.networks.flow import FlowChunkPolicy

SCHEDULES = ("continuous", "rounds")


@dataclass(frozen=True)
class ALOEConfig(ImageEncoderConfig):
    """ALOE's hyper-parameters; where the paper gives none (K, M, beta, clip) the choice is stated."""

    batch_size: int = 256
    """Sequences per update (the paper's batch 256)."""
    demo_ratio: float = 0.5
    """Fraction of each batch drawn from the demo buffer (the online stages and the rounds' critic and actor steps)."""
    gamma: float = 0.99
    """Discount factor (the paper's 0.99)."""
    tau: float = 0.005
    """Polyak step of the target critics after every critic step (the paper's 0.005)."""
    actor_lr: float = 3e-4
    """Adam learning rate of the flow policy (the paper's 3e-5 is for a 3B VLA; small MLPs take the usual 3e-4)."""
    critic_lr: float = 3e-4
    """Adam learning rate of the critics and the observation encoder."""
    hidden_dims: tuple[int, ...] = (256, 256)
    """Hidden widths of the velocity field and of every critic."""
    num_critics: int = 2
    """K, critics in the pessimistic ensemble (the paper gives no K; twin critics as the other algorithms)."""
    critic_layer_norm: bool = True
    """LayerNorm after every hidden Dense of the critics."""
    max_grad_norm: float = 1.0
    """Clip the critic's and the actor's gradient norms to this (the paper's 1.0); 0 = no clipping."""
    chunk_seconds: float = 1.0
    """Chunk span, h = round(chunk_seconds * control_hz): the paper's h = 50 spans 1 s at 50 Hz; h = 10 at 10 Hz."""
    execute_seconds: float = 0.3
    """Executed span of each chunk, e = round(execute_seconds * control_hz): the paper's 0.1-0.5 s; e = 3 at 10 Hz."""
    flow_steps: int = 10
    """Fixed Euler steps from noise to a chunk (pi_0's 10)."""
    value_samples: int = 4
    """M, policy chunks per state that estimate V(s) (Eq. 10; the paper gives no M)."""
    beta: float = 1.0
    """Temperature of the weights exp(A / beta) (Eq. 11; ~1 step's reward of advantage changes the weight by e)."""
    clip: float = 2.0
    """epsilon_clip: A / beta is clipped to [-clip, clip], weights in [e^-2, e^2]; 0 = plain BC (the ablation)."""
    q_aggregate: str = "min"
    """How the K critics combine in the target and the advantage: "min" (Eq. 9) or "mean" (the ablation)."""
    offline_updates: int = 2000
    """Flow-matching BC updates on the demonstrations before anything else (Alg. 1 line 1; 0: none)."""
    schedule: str = "continuous"
    """Either "continuous": a critic and an actor step per update, or "rounds": the paper's iterations (module doc)."""
    rounds: int = 5
    """Schedule "rounds": iterations of rollouts, N_Q critic and N_pi actor updates before the online stage."""
    round_episodes: int = 10
    """Schedule "rounds": training episodes acted by the current policy at the start of each round."""
    round_critic_updates: int = 1000
    """Schedule "rounds": N_Q, critic updates per round."""
    round_actor_updates: int = 500
    """Schedule "rounds": N_pi, actor updates per round."""

    def __post_init__(self) -> None:
        conditions = {
            "batch_size, flow_steps and value_samples must be positive": min(self.batch_size, self.flow_steps,
                                                                             self.value_samples) > 0,
            "demo_ratio must be in [0, 1]": 0.0 <= self.demo_ratio <= 1.0,
            "gamma must be in [0, 1)": 0.0 <= self.gamma < 1.0,
            "tau must be in (0, 1]": 0.0 < self.tau <= 1.0,
            "learning rates, beta and chunk_seconds must be positive": min(self.actor_lr, self.critic_lr, self.beta,
                                                                          self.chunk_seconds) > 0,
            "execute_seconds must be in (0, chunk_seconds]": 0 < self.execute_seconds <= self.chunk_seconds,
            "hidden_dims must be non-empty and positive": bool(self.hidden_dims) and min(self.hidden_dims) > 0,
            "num_critics must be >= 1": self.num_critics >= 1,
            "clip and max_grad_norm must be >= 0": min(self.clip, self.max_grad_norm) >= 0,
            **self.image_conditions(),
            "q_aggregate must be 'min' or 'mean'": self.q_aggregate in ("min", "mean"),
            f"schedule must be one of {SCHEDULES}": self.schedule in SCHEDULES,
            "offline_updates and the round counts must be >= 0": min(self.offline_updates, self.rounds,
                self.round_episodes, self.round_critic_updates, self.round_actor_updates) >= 0,
        }  # fmt: skip
        failed = [message for message, ok in conditions.items() if not ok]
        if failed:
            raise ValueError(f"invalid ALOEConfig: {'; '.join(failed)}")


def chunk_lengths(config: ALOEConfig, spec: RobotSpec) -> tuple[int, int]:
    """(h, e): the chunk and executed lengths in control steps of this robot (e <= h, both >= 1)."""
    chunk = max(1, round(config.chunk_seconds * spec.control_hz))
    return chunk, min(chunk, max(1, round(config.execute_seconds * spec.control_hz)))


class Chunks(NamedTuple):
    """A batch seen as chunks: actions (B, h, d), valid (B, h), n_step_return (B,), bootstrap (B,)."""

    action: torch.Tensor
    valid: torch.Tensor
    n_step_return: torch.Tensor
    bootstrap: torch.Tensor


def chunks_of(batch: Batch, gamma: float) -> Chunks:
    """Replay's h-step sequence batch as `Chunks`; a transition batch (h = 1, the no-chunking ablation) too."""
    if batch.action.dim() == 2:  # horizon 1: replay gives transitions
        ones = torch.ones_like(batch.reward).unsqueeze(1)
        return Chunks(batch.action.unsqueeze(1), ones, batch.reward, gamma * (1.0 - batch.terminated))
    extras = batch.extras
    missing = {"valid", "n_step_return", "bootstrap"} - set(extras)
    if missing:
        raise KeyError(f"ALOE needs h-step sequences (extras {sorted(missing)} missing): sample with its `sampling`")
    return Chunks(batch.action, extras["valid"].float(), extras["n_step_return"].float(), extras["bootstrap"].float())


# --- losses, numbered as in the paper ----------------------------------------------------------------


def chunked_td_target(n_step_return: torch.Tensor, bootstrap: torch.Tensor, next_q: torch.Tensor) -> torch.Tensor:
    """Eq. 7: sum_{k<n} gamma^k r_{t+k} + gamma^n Q'(s_{t+n}, a'), the bootstrap 0 once the episode terminated."""
    return n_step_return + bootstrap * next_q


def critic_loss(q: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Eq. 8: squared TD error of each of the K critics `(K, B)`, averaged over critics and batch."""
    return (q - target).square().mean()


def pessimistic_q(q: torch.Tensor, how: str = "min") -> torch.Tensor:
    """Eq. 9: min over the K critics `(K, ...)` (or their mean, the ablation)."""
    return q.min(dim=0).values if how == "min" else q.mean(dim=0)


def advantage_weight(advantage: torch.Tensor, beta: float, clip: float) -> torch.Tensor:
    """Eq. 11: exp(clip(A / beta, -clip, clip)), cut from autograd."""
    return torch.exp((advantage.detach() / beta).clamp(-clip, clip))


def weighted_flow_matching_loss(error: torch.Tensor, valid: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Eq. 15: E[w ||a - eps - f||^2] over the chunk's valid steps; `error` and `valid` (B, h), `weight` (B,)."""
    return (weight * (error * valid).sum(-1)).mean()


# --- the algorithm -----------------------------------------------------------------------------------


class ALOE(Algorithm):
    """Chunked pessimistic critics and an advantage-weighted flow-matching chunk policy."""

    Config = ALOEConfig

    def __init__(self, config: ALOEConfig, spec: RobotSpec, device: torch.device, seed: int = 0) -> None:
        super().__init__(config, spec, device, seed)
        self.chunk_length, self.execute_length = chunk_lengths(config, spec)
        self.nets = ActorCritic(config, spec, self.device, seed, make_policy=self.make_policy,
                                critic_action_dim=self.chunk_length * spec.action_dim)  # fmt: skip
        self.num_updates = 0

    @staticmethod
    def make_policy(config: ALOEConfig, spec: RobotSpec) -> FlowChunkPolicy:
        encoder = encoder_for(spec.observation, config)
        chunk, _ = chunk_lengths(config, spec)
        return FlowChunkPolicy(encoder, spec.action_dim, chunk, config.flow_steps, config.hidden_dims)

    @property
    def sampling(self) -> SamplingSpec:
        """h-step sequences masked at episode ends (see the module doc); transitions when h = 1."""
        cfg = self.config
        return SamplingSpec(cfg.batch_size, self.chunk_length, cfg.demo_ratio, cfg.gamma, full_sequences=False)

    def policy_program(self, policy: str = "online") -> tuple[str, dict[str, Any]]:
        if policy != "online":
            raise ValueError(f"ALOE has no policy {policy!r}; it has 'online'")
        return "chunked", {"execute": self.execute_length}

    # ---- stages ----------------------------------------------------------------------------------
    def stages(self) -> list[Stage]:
        cfg = self.config
        stages = [Stage("bc", "offline", cfg.offline_updates)] if cfg.offline_updates else []
        if cfg.schedule == "rounds":
            for k in range(1, cfg.rounds + 1):
                stages += [Stage(f"rollouts_{k}", "rollouts", cfg.round_episodes),
                           Stage(f"critic_{k}", "offline", cfg.round_critic_updates, sampling=self.sampling),
                           Stage(f"actor_{k}", "offline", cfg.round_actor_updates, sampling=self.sampling)]  # fmt: skip
        return [*stages, Stage("online", "online", 0)]

    def offline_update(self, stage: str, batch: Batch) -> dict[str, float]:
        """Stage "bc": flow matching on demo chunks; "critic_k" / "actor_k": one critic or actor step of round k."""
        chunks = chunks_of(batch, self.config.gamma)
        if stage == "bc":
            return self._step(bc_loss=self._bc_loss(batch, chunks))
        kind = stage.split("_")[0]
        if kind not in ("critic", "actor") or stage not in {s.name for s in self.stages()}:
            raise ValueError(f"ALOE has no offline stage {stage!r}; it has bc, critic_k and actor_k")
        observation = self.nets.augment(batch.observation)
        if kind == "critic":
            return self._step(**self._critic_losses(batch, chunks, self.nets.encoder(observation)), polyak=True)
        with torch.no_grad():  # the actor step trains neither the encoder nor the critics
            features = self.nets.encoder(observation)
            q_data = self.nets.critic(features, chunks.action.flatten(1))
        return self._step(**self._actor_losses(chunks, features, q_data))

    # ---- one update: a critic and an actor step on one batch -------------------------------------
    def update(self, batch: Batch) -> dict[str, float]:
        chunks = chunks_of(batch, self.config.gamma)
        features = self.nets.encoder(self.nets.augment(batch.observation))
        critic = self._critic_losses(batch, chunks, features)
        actor = self._actor_losses(chunks, features.detach(), critic["q"].detach())
        self.num_updates += 1
        return self._step(**critic, **actor, polyak=True)

    def _critic_losses(self, batch: Batch, chunks: Chunks, features: torch.Tensor) -> dict[str, torch.Tensor]:
        """Eqs. 7-8: Q of the data chunks against the chunked target at the bootstrap state."""
        target = self.chunked_target(batch, chunks)
        q = self.nets.critic(features, chunks.action.flatten(1))
        return {"critic_loss": critic_loss(q, target), "q": q, "target_q_mean": target.mean()}

    @torch.no_grad()
    def chunked_target(self, batch: Batch, chunks: Chunks) -> torch.Tensor:
        """Eq. 7's y (B,): a' ~ pi at the bootstrap state, scored by the pessimistic target critics."""
        nets = self.nets
        next_observation = nets.augment(batch.next_observation)
        next_chunk = nets.policy.distribution(nets.encoder(next_observation)).sample(nets.generator)
        next_q = nets.target_critic(nets.target_encoder(next_observation), next_chunk.flatten(1))
        return chunked_td_target(chunks.n_step_return, chunks.bootstrap, pessimistic_q(next_q, self.config.q_aggregate))

    def _actor_losses(self, chunks: Chunks, features: torch.Tensor, q_data: torch.Tensor) -> dict[str, torch.Tensor]:
        """Eqs. 9-11 and 15 on features already detached and the data chunks' critic values `(K, B)`."""
        cfg = self.config
        advantage = pessimistic_q(q_data, cfg.q_aggregate) - self._value(features)
        weight = advantage_weight(advantage, cfg.beta, cfg.clip)
        error = self.nets.policy.distribution(features).matching_error(chunks.action, self.nets.generator)
        loss = weighted_flow_matching_loss(error, chunks.valid, weight)
        clipped = ((advantage / cfg.beta).abs() >= cfg.clip).float().mean()
        return {"actor_loss": loss, "advantage": advantage.mean(), "weight": weight.mean(), "weight_clipped": clipped}

    @torch.no_grad()
    def _value(self, features: torch.Tensor) -> torch.Tensor:
        """Eq. 10's V(s): the mean over M policy chunks of the pessimistic Q, (B,)."""
        nets, samples, batch = self.nets, self.config.value_samples, features.shape[0]
        repeated = features.repeat(samples, 1)  # (M * B, F), sample-major
        chunk = nets.policy.distribution(repeated).sample(nets.generator)
        q = pessimistic_q(nets.critic(repeated, chunk.flatten(1)), self.config.q_aggregate)
        return q.view(samples, batch).mean(0)

    def _bc_loss(self, batch: Batch, chunks: Chunks) -> torch.Tensor:
        """Alg. 1 line 1 (Eq. 16): unweighted flow matching. Nothing else trains the encoder yet, so this does."""
        features = self.nets.encoder(self.nets.augment(batch.observation))
        error = self.nets.policy.distribution(features).matching_error(chunks.action, self.nets.generator)
        return weighted_flow_matching_loss(error, chunks.valid, torch.ones_like(chunks.n_step_return))

    def _step(self, polyak: bool = False, **losses: torch.Tensor) -> dict[str, float]:
        """One optimiser step on the sum of the `*_loss` terms, a Polyak step if `polyak`; metrics as floats."""
        terms = [value for name, value in losses.items() if name.endswith("_loss")]
        self.nets.optimize(sum(terms))
        if polyak:
            self.nets.soft_update(self.config.tau)
        metrics = {name: value.detach() for name, value in losses.items() if name != "q"}
        if "q" in losses:
            q = losses["q"].detach()
            metrics.update(q_mean=q.mean(), q_std=q.std())
        # One stack + tolist: a single device sync instead of one .item() per metric.
        return dict(zip(metrics, torch.stack(list(metrics.values())).tolist()))

    @torch.no_grad()
    def mean_action(self, observation: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The deterministic plan's first action (the flow from the zero chunk)."""
        return self.nets.policy.act(observation, deterministic=True)

    # ---- weights and checkpoints -----------------------------------------------------------------
    def policy_state_dict(self) -> dict[str, torch.Tensor]:
        return self.nets.policy_state_dict()

    def state_dict(self) -> dict[str, Any]:
        return {"config": config_to_dict(self.config), "nets": self.nets.state_dict(), "num_updates": self.num_updates}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.nets.load_state_dict(state["nets"])
        self.num_updates = int(state["num_updates"])


ALGORITHMS.register("aloe")(ALOE)
