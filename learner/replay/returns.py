"""Monte-Carlo returns-to-go for replay rows, computed per complete episode (Cal-QL's lower bound).

Returns are only known once an episode has ended, so for algorithms that need them the learner
holds each actor's unfinished episode here and stores it whole; every other algorithm bypasses this.
At most one episode per actor waits (a few hundred rows), and an actor that starts a new episode
without ending the last (it was restarted) has the old one stored as truncated.
"""

from __future__ import annotations

from typing import Callable, Mapping

import numpy as np

# (reward, terminated) of one episode -> its returns-to-go; `Algorithm.episode_returns`.
ReturnsFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
MC_RETURN = "mc_return"


def episode_slices(columns: Mapping[str, np.ndarray]) -> list[slice]:
    """Consecutive row ranges that each hold one episode: cut after every done row and at id changes."""
    done = np.asarray(columns["terminated"], bool) | np.asarray(columns["truncated"], bool)
    episode = np.asarray(columns["episode"])
    cuts = set((np.flatnonzero(done) + 1).tolist()) | set((np.flatnonzero(np.diff(episode)) + 1).tolist())
    edges = [0, *sorted(c for c in cuts if 0 < c < len(episode)), len(episode)]
    return [slice(a, b) for a, b in zip(edges[:-1], edges[1:]) if b > a]


def with_returns(columns: Mapping[str, np.ndarray], returns_fn: ReturnsFn) -> dict[str, np.ndarray]:
    """`columns` (whole episodes, e.g. a demo file) plus an `mc_return` column computed per episode."""
    returns = np.empty(len(columns["reward"]), dtype=np.float32)
    for rows in episode_slices(columns):
        returns[rows] = returns_fn(columns["reward"][rows], columns["terminated"][rows])
    return {**columns, MC_RETURN: returns}


class EpisodeReturns:
    """Per-actor holding area that releases only complete episodes, with their `mc_return` column."""

    def __init__(self, returns_fn: ReturnsFn) -> None:
        self.returns_fn = returns_fn
        self._pending: dict[str, dict[str, np.ndarray]] = {}

    def pending_rows(self, actor_id: str) -> int:
        """Rows of `actor_id`'s unfinished episode held back so far."""
        held = self._pending.get(actor_id)
        return 0 if held is None else len(held["reward"])

    def push(self, actor_id: str, columns: Mapping[str, np.ndarray]) -> dict[str, np.ndarray] | None:
        """Add an actor's rows (in arrival order); returns the episodes they complete, or None."""
        held = self._pending.pop(actor_id, None)
        if held is not None:
            columns = {name: np.concatenate([held[name], columns[name]]) for name in columns}
        slices = episode_slices(columns)
        last = slices[-1] if slices else None
        done = last is not None and bool(columns["terminated"][last.stop - 1] or columns["truncated"][last.stop - 1])
        complete = slices if done else slices[:-1]
        if last is not None and not done:
            self._pending[actor_id] = {name: value[last] for name, value in columns.items()}
        if not complete:
            return None
        stop = complete[-1].stop
        # An earlier episode cut short by an id change (actor restart) is valued as truncated.
        return with_returns({name: value[:stop] for name, value in columns.items()}, self.returns_fn)
