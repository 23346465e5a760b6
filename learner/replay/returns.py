"""Monte-Carlo returns-to-go of replay rows (Cal-QL's lower bound, Q2RL's value fit), kept by replay itself.

A return is only known once its episode has ended, so each actor's running episode is followed here
as its rows arrive (its row ids and rewards); when the row that ends it arrives (terminated or
truncated), every one of its rows still stored gets its `mc_return` and becomes drawable for samplers
that ask for returns. Rewards are used as stored (the learner shapes them before storing).

A run of consecutive steps can also stop without an end row: the actor starts another episode (it was
restarted) or a step is missing (a lost batch, or operator corrections copied to the demo buffer, which
are fragments of an episode). Such a run is valued as truncated where it stops; its rows are not held
back forever. Memory: one running episode per actor (its ids and rewards), nothing per finished one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from learner.replay.links import episode_ends, follows_previous
from learner.replay.storage import RingStorage

MC_RETURN = "mc_return"


def returns_to_go(reward: np.ndarray, terminated: bool, gamma: float) -> np.ndarray:
    """G_t = r_t + gamma * G_{t+1} over one run of consecutive steps, float32.

    After a terminated last step G is 0. After a truncated one it is 0 too, except that a run whose
    rewards are all equal (r; e.g. a sparse-reward episode that never succeeded) gets r / (1 - gamma) at
    every step: the value of never finishing (Cal-QL's calc_return_to_go). With gamma == 1 that rule
    would be infinite, so it does not apply.
    """
    reward = np.asarray(reward, dtype=np.float64)
    if len(reward) and not terminated and gamma < 1.0 and np.all(reward == reward[0]):
        return np.full(len(reward), reward[0] / (1.0 - gamma), dtype=np.float32)
    out = np.empty(len(reward), dtype=np.float64)
    following = 0.0
    for t, r in zip(range(len(reward) - 1, -1, -1), reward[::-1].tolist()):
        following = r + gamma * following
        out[t] = following
    return out.astype(np.float32)


@dataclass
class _Run:
    """The running episode of one actor: consecutive steps from its first row seen so far."""

    episode: int
    last_step: int
    ids: list[np.ndarray] = field(default_factory=list)
    rewards: list[np.ndarray] = field(default_factory=list)


class ReturnsTracker:
    """`mc_return` of one ring's rows, and which rows have one (`known`)."""

    def __init__(self, capacity: int, gamma: float) -> None:
        if not 0.0 < gamma <= 1.0:
            raise ValueError(f"gamma must be in (0, 1], got {gamma}")
        self.gamma = gamma
        self.mc_return = np.zeros(capacity, dtype=np.float32)
        self.known = np.zeros(capacity, dtype=bool)
        self.count = 0  # rows with a known return
        self._runs: dict[str, _Run] = {}

    def record(self, storage: RingStorage, ids: np.ndarray, columns: Mapping[str, np.ndarray], actor_id: str) -> None:
        """Account for rows `ids` (just stored, or -1 if not; `columns` are theirs, one actor's steps in order)."""
        slots = storage.slots(ids[ids >= 0])
        self.count -= int(self.known[slots].sum())  # the rows these overwrote
        self.known[slots] = False
        ends, terminated = episode_ends(columns), np.asarray(columns["terminated"], bool)
        cuts = np.flatnonzero(~follows_previous(columns)) + 1
        for start, stop in zip([0, *cuts.tolist()], [*cuts.tolist(), len(ids)]):
            run = self._continue_run(storage, actor_id, int(columns["episode"][start]), int(columns["step"][start]))
            run.ids.append(ids[start:stop])
            run.rewards.append(np.asarray(columns["reward"][start:stop]))
            run.last_step = int(columns["step"][stop - 1])
            if ends[stop - 1]:
                self._finish(storage, self._runs.pop(actor_id), bool(terminated[stop - 1]))

    def _continue_run(self, storage: RingStorage, actor_id: str, episode: int, step: int) -> _Run:
        """The actor's run if (episode, step) continues it; otherwise the old run is cut and a new one starts."""
        run = self._runs.get(actor_id)
        if run is not None and (run.episode, run.last_step + 1) == (episode, step):
            return run
        if run is not None:
            self._finish(storage, run, terminated=False)
        run = self._runs[actor_id] = _Run(episode, step - 1)
        return run

    def _finish(self, storage: RingStorage, run: _Run, terminated: bool) -> None:
        ids = np.concatenate(run.ids)
        values = returns_to_go(np.concatenate(run.rewards), terminated, self.gamma)
        stored = storage.holds(ids)
        slots = storage.slots(ids[stored])
        self.mc_return[slots] = values[stored]
        self.known[slots] = True
        self.count += int(stored.sum())
