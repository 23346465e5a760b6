"""How the learner turns the task's sparse reward into training rewards and Monte-Carlo returns.

Tandem's tasks pay 1 on success (which terminates the episode) and 0 otherwise. Algorithms that use
`reward_bias = -1` see 0 on success and -1 per step, so finishing sooner is always better; a
termination WITHOUT success (the ball left the arena) is an absorbing failure worth
`bias / (1 - gamma)`, because a plain -1 there would teach the robot to end episodes by failing fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
import torch

from learner.algorithms.actor_critic import ActorCriticConfig


@dataclass(frozen=True)
class ShapedRewardConfig(ActorCriticConfig):
    """An actor-critic config whose algorithm trains on `shaped_reward`."""

    reward_scale: float = 1.0
    """Rewards are r * reward_scale + reward_bias before use (and before Monte-Carlo returns)."""
    reward_bias: float = -1.0
    """-1 turns the sparse 1/0 reward into 0/-1, so finishing sooner always pays; failures are absorbing."""

    def check(self, extra: Mapping[str, bool]) -> None:
        super().check({"reward_scale must be positive": self.reward_scale > 0, **extra})


def shaped_reward(reward, terminated, scale: float, bias: float, gamma: float) -> torch.Tensor:
    """r * scale + bias, except that a failed termination (reward <= 0) is absorbing: bias / (1 - gamma)."""
    failure = (terminated > 0.5) & (reward <= 0)
    return torch.where(failure, torch.full_like(reward, bias / (1.0 - gamma)), reward * scale + bias)


def monte_carlo_returns(reward: np.ndarray, terminated: np.ndarray, scale: float, bias: float, gamma: float):
    """Returns-to-go `G_t = r'_t + gamma G_{t+1}` of ONE complete episode under `shaped_reward`.

    An episode that never succeeded (no positive reward) gets `bias / (1 - gamma)` at every step, the
    infinite-horizon value of failing forever (Cal-QL's rule for all-failure sparse trajectories);
    a truncated episode is otherwise cut at its end (G after the last step is 0).
    """
    reward = np.asarray(reward, dtype=np.float64)
    terminated = np.asarray(terminated, dtype=bool)
    if len(reward) == 0:
        return np.zeros(0, dtype=np.float32)
    if not (reward > 0).any():
        return np.full(len(reward), bias / (1.0 - gamma), dtype=np.float32)
    done = torch.from_numpy(terminated.astype(np.float64))
    shaped = shaped_reward(torch.from_numpy(reward), done, scale, bias, gamma)
    returns = np.empty(len(reward), dtype=np.float64)
    following = 0.0
    for t in range(len(reward) - 1, -1, -1):
        following = float(shaped[t]) + gamma * following * (0.0 if terminated[t] else 1.0)
        returns[t] = following
    return returns.astype(np.float32)
