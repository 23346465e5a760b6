"""The parts every SAC-family algorithm owns: policy, shared encoder, critic ensemble, targets, optimisers.

An algorithm composes one `ActorCritic` and writes only its losses; building the networks, the
Polyak update, the single backward pass, checkpoint state and the actor's weights live here once, and
so do the config fields they read (`ActorCriticConfig`, which every algorithm's config extends).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import torch
from torch import nn

from common.specs import RobotSpec
from common.types import Batch
from learner.algorithms.base import Stage
from learner.networks.encoders import ImageEncoderConfig, encoder_for, random_shift
from learner.networks.ensemble import CriticEnsemble
from learner.networks.policies import TanhGaussianPolicy


@dataclass(frozen=True)
class ActorCriticConfig(ImageEncoderConfig):
    """Fields every tanh-Gaussian actor-critic shares; an algorithm's config re-declares a field only
    to change its default (with a one-line reason under it)."""

    batch_size: int = 256
    """Transitions per update."""
    demo_ratio: float = 0.5
    """Fraction of each batch drawn from the demo buffer when it is non-empty (the rest is online)."""
    gamma: float = 0.99
    """Discount factor."""
    tau: float = 0.005
    """Polyak step of the target critics after every update (1.0 = hard copy)."""
    actor_lr: float = 3e-4
    """Adam learning rate of the actor."""
    critic_lr: float = 3e-4
    """Adam learning rate of the critics and the observation encoder."""
    hidden_dims: tuple[int, ...] = (256, 256)
    """Hidden widths of the actor and of every critic."""
    num_critics: int = 2
    """Critics in the ensemble, each fully independent (twin critics by default)."""
    critic_layer_norm: bool = True
    """LayerNorm after every hidden Dense of the critics (RLPD); keeps Q bounded off the data."""
    log_std_min: float = -20.0
    """Lower clamp of the actor's log standard deviation."""
    log_std_max: float = 2.0
    """Upper clamp of the actor's log standard deviation."""
    max_grad_norm: float = 0.0
    """Clip the critic's and the actor's gradient norms to this; 0 = no clipping."""

    def __post_init__(self) -> None:
        self.check({})

    def check(self, extra: Mapping[str, bool]) -> None:
        """Raise one ValueError naming every failed condition: the shared ones and `extra` (message -> ok)."""
        conditions = {
            "batch_size must be positive": self.batch_size > 0,
            "demo_ratio must be in [0, 1]": 0.0 <= self.demo_ratio <= 1.0,
            "gamma must be in [0, 1)": 0.0 <= self.gamma < 1.0,
            "tau must be in (0, 1]": 0.0 < self.tau <= 1.0,
            "actor_lr and critic_lr must be positive": min(self.actor_lr, self.critic_lr) > 0,
            "hidden_dims must be non-empty and positive": bool(self.hidden_dims) and min(self.hidden_dims) > 0,
            "num_critics must be >= 1": self.num_critics >= 1,
            "log_std_min must be below log_std_max": self.log_std_min < self.log_std_max,
            "max_grad_norm must be >= 0": self.max_grad_norm >= 0,
            **self.image_conditions(),
            **extra,
        }
        failed = [message for message, ok in conditions.items() if not ok]
        if failed:
            raise ValueError(f"invalid {type(self).__name__}: {'; '.join(failed)}")


@dataclass(frozen=True)
class OfflineToOnlineConfig(ActorCriticConfig):
    """An actor-critic config whose algorithm first trains on the demonstrations alone (an offline stage).

    Why 2000 offline updates for one demonstration of ~40 transitions (LIMO's has 39, Go2's 87): every
    batch of 256 resamples each demo row ~6 times, so the policy fits the demo's actions within a few
    hundred updates (tests/algorithms: 300 clone a fixed action); 2000 give the Polyak target 10 of its
    time constants (1/tau = 200 updates) to settle on the demo, i.e. ~10 damped Bellman backups of the
    step cost. Carrying values along the whole demo would take ~40 (8000 updates, 20 min of CQL at
    0.15 s each on 2 cores); that continues online, where half of every batch is still the demo.
    More offline updates would only refit the same 40 rows.
    """

    offline_updates: int = 2000
    """Offline-stage updates on demo-only batches (0: none); 2000 = 10 target time constants, see the class doc."""

    def check(self, extra: Mapping[str, bool]) -> None:
        super().check({"offline_updates must be >= 0": self.offline_updates >= 0, **extra})


def offline_then_online(offline_updates: int) -> list[Stage]:
    """The offline-to-online baselines' stages: `offline_updates` demo-only updates (none if 0), then online."""
    offline = [Stage("offline", "offline", offline_updates)] if offline_updates else []
    return [*offline, Stage("online", "online", 0)]


def check_offline_stage(algorithm: str, stage: str) -> None:
    """Raise unless `stage` is "offline", the one offline stage `offline_then_online` declares."""
    if stage != "offline":
        raise ValueError(f"{algorithm} has no offline stage {stage!r}; it has 'offline'")


def mc_returns(batch: Batch, needed_by: str) -> torch.Tensor:
    """The rows' Monte-Carlo returns-to-go (B,), which replay adds when `SamplingSpec.returns_to_go` is set."""
    if "mc_return" not in batch.extras:
        raise KeyError(f"{needed_by} needs extras['mc_return']: sample with the algorithm's `sampling` (returns_to_go)")
    return batch.extras["mc_return"].reshape(-1).float()


def make_tanh_policy(config: Any, spec: RobotSpec) -> TanhGaussianPolicy:
    """The actor network (with its own observation encoder) an actor process rebuilds from the config."""
    encoder = encoder_for(spec.observation, config)
    return TanhGaussianPolicy(encoder, spec.action_dim, config.hidden_dims, config.log_std_min, config.log_std_max)


class ActorCritic:
    """Networks and optimisers of a tanh-Gaussian actor with a critic ensemble; the encoder is trained by the critic."""

    def __init__(
        self, config: Any, spec: RobotSpec, device: torch.device, seed: int, extra_groups: tuple[dict, ...] = (),
        make_policy: Callable[[Any, RobotSpec], nn.Module] = make_tanh_policy, critic_action_dim: int = 0,
    ) -> None:
        """`make_policy` builds another policy (with `encoder` and `head_parameters()`, e.g. ALOE's flow over
        chunks); `critic_action_dim` is what the critics score (0: one action, else e.g. a flattened chunk)."""
        with torch.random.fork_rng(devices=[]):  # seeded weights without disturbing the global RNG
            torch.manual_seed(seed)
            self.policy = make_policy(config, spec).to(device)
            self.encoder = self.policy.encoder
            self.critic = CriticEnsemble(config.num_critics, self.encoder.out_dim, critic_action_dim or spec.action_dim,
                                         config.hidden_dims, config.critic_layer_norm).to(device)  # fmt: skip
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
