"""The reward every algorithm trains on: a task-level option applied once, where the learner stores data.

Tandem's tasks report 1 on success (which terminates the episode) and 0 otherwise. The learner turns
that into training rewards before anything reaches replay (online batches, demonstrations, the
durable journal re-fed on `--resume`), so every algorithm in a comparison sees the same rewards, and
the sums replay computes from them (h-step returns, Monte-Carlo returns-to-go) agree with what the
critics learn.

- `task`: the reward as the robot reports it.
- `shaped` (default): r + STEP_BIAS, i.e. 0 on success and -1 per step, so finishing sooner always
  pays; a termination WITHOUT success (the ball left the arena) is an absorbing failure worth
  FAILURE_VALUE = STEP_BIAS / (1 - FAILURE_GAMMA) = -100, the value of paying -1 forever at the
  comparison's discount 0.99. A plain -1 there would teach the robot to end episodes by failing fast.
  For any algorithm discount gamma <= 0.99, -100 <= -1 / (1 - gamma): failing is never a shortcut.
- `aloe`: ALOE's Eq. 14, the same but a failed termination (the task's, or the operator's failure key) is
  -C_fail, C_fail "the average episode length of the task": here the demonstrations' mean episode length
  (the learner has it before any data is stored, and the same on `--resume`). A time limit stays a
  truncation that bootstraps (the paper also counts it as a failure; Tandem never ends a time-limited
  episode as terminal for any algorithm). Failing early can then pay: -C_fail after k steps beats -T
  for a success taking T > k + C_fail steps, which is the paper's trade, not a shortcut to guard against.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

REWARDS = ("shaped", "task", "aloe")
STEP_BIAS = -1.0  # added to every reward: 1/0 becomes 0/-1
FAILURE_GAMMA = 0.99  # the discount FAILURE_VALUE is computed with (every algorithm's default gamma)
FAILURE_VALUE = -100.0  # a failed termination, absorbing: STEP_BIAS / (1 - FAILURE_GAMMA)


def shaped_reward(reward: np.ndarray, terminated: np.ndarray, failure_value: float = FAILURE_VALUE) -> np.ndarray:
    """r + STEP_BIAS, except that a failed termination (terminated with reward <= 0) is `failure_value`."""
    reward = np.asarray(reward, dtype=np.float32)
    failure = np.asarray(terminated, dtype=bool) & (reward <= 0)
    return np.where(failure, np.float32(failure_value), reward + np.float32(STEP_BIAS)).astype(np.float32)


def check_reward(kind: str) -> str:
    """`kind` if it names a reward, else a ValueError listing them."""
    if kind not in REWARDS:
        raise ValueError(f"unknown reward {kind!r}; choose one of {', '.join(REWARDS)}")
    return kind


def mean_episode_length(columns: Mapping[str, np.ndarray]) -> float:
    """C_fail of the `aloe` reward: rows per episode of stored columns (e.g. the demonstrations)."""
    episodes = len(np.unique(columns["episode"])) if len(columns["episode"]) else 0
    if episodes == 0:
        raise ValueError("the aloe reward needs demonstrations (--demo): C_fail is their mean episode length")
    return len(columns["episode"]) / episodes


def apply_reward(
    kind: str, columns: Mapping[str, np.ndarray], failure_cost: float | None = None
) -> dict[str, np.ndarray]:
    """`columns` with their `reward` column as training reward `kind` (a new dict; the input is not changed).

    `failure_cost` is the `aloe` reward's C_fail (> 0, required for it, ignored by the others).
    """
    if check_reward(kind) == "task":
        return dict(columns)
    failure_value = FAILURE_VALUE
    if kind == "aloe":
        if failure_cost is None or not failure_cost > 0:
            raise ValueError(f"the aloe reward needs a positive C_fail, got {failure_cost!r}")
        failure_value = -float(failure_cost)
    return {**columns, "reward": shaped_reward(columns["reward"], columns["terminated"], failure_value)}
