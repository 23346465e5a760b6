"""Links from each stored row to the row holding the next step of the same actor's episode.

Rows of one actor's episode are not contiguous in the ring when several actors interleave batches, so
each row keeps the row id of its successor (`next_id`; its own id until that step arrives, so following
links from an episode's last row stays on it). A link is made only
when the new row really is (same actor, same episode, step + 1) of a row that is still stored, and the
row that ends an episode (terminated or truncated) never gets one. A link is followed only while the
row it names is still stored (`RingStorage.holds` compares row ids, so a slot that eviction has since
overwritten with anything else, even a row of the same episode, breaks it). Eviction is oldest-first,
so a stored row's successor (newer) is normally stored too; the check keeps that an enforced fact, not
an assumption about the ring, for the price of one gather per sequence step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from learner.replay.storage import RingStorage


def episode_ends(columns: Mapping[str, np.ndarray]) -> np.ndarray:
    """Per row: does the episode end here (terminated or truncated)?"""
    return np.asarray(columns["terminated"], bool) | np.asarray(columns["truncated"], bool)


def follows_previous(columns: Mapping[str, np.ndarray]) -> np.ndarray:
    """Per row after the first of one actor's batch: is it the next step of the row before it?"""
    episode, step, ends = columns["episode"], columns["step"], episode_ends(columns)
    return (episode[1:] == episode[:-1]) & (step[1:] == step[:-1] + 1) & ~ends[:-1]


@dataclass(frozen=True)
class _Tail:
    """An actor's newest row: the row its next batch may continue."""

    episode: int
    step: int
    row: int
    ended: bool


class EpisodeLinks:
    """Successor links of one ring's rows, built as each actor's batches arrive in order."""

    def __init__(self, capacity: int) -> None:
        self.next_id = np.full(capacity, -1, dtype=np.int64)  # -1: an empty slot
        self._tails: dict[str, _Tail] = {}

    def record(self, storage: RingStorage, ids: np.ndarray, columns: Mapping[str, np.ndarray], actor_id: str) -> None:
        """Link rows `ids` (just stored; `columns` are theirs, one actor's steps in order) into their episodes."""
        slots = storage.slots(ids)
        self.next_id[slots] = ids  # no successor yet (and whatever the overwritten rows pointed to is gone)
        follows = follows_previous(columns)
        self.next_id[slots[:-1][follows]] = ids[1:][follows]
        episode, step = int(columns["episode"][0]), int(columns["step"][0])
        tail = self._tails.get(actor_id)
        if tail is not None and not tail.ended and (tail.episode, tail.step + 1) == (episode, step):
            if storage.holds(np.array([tail.row]))[0]:
                self.next_id[tail.row % storage.capacity] = ids[0]
        ends = episode_ends(columns)
        self._tails[actor_id] = _Tail(int(columns["episode"][-1]), int(columns["step"][-1]), int(ids[-1]),
                                      bool(ends[-1]))  # fmt: skip

    def follow(self, storage: RingStorage, start: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows of the `horizon` steps from each start row: (row ids (n, h), valid (n, h) bool).

        A step is valid if it and every step before it are stored successors; after the last valid step
        the ids repeat the last valid row, so `ids[:, -1]` is always the last valid row.
        """
        steps = np.empty((horizon, len(start)), dtype=np.int64)  # step-major: each step is one contiguous row
        steps[0] = start
        for k in range(1, horizon):
            np.take(self.next_id, steps[k - 1], mode="wrap", out=steps[k])
        valid = np.empty(steps.shape, dtype=bool)
        valid[0] = True
        np.not_equal(steps[1:], steps[:-1], out=valid[1:])  # a row without successor links to itself
        held = storage.holds(steps)
        if not held.all():  # a link into an overwritten slot: cut the sequence before it
            valid = np.logical_and.accumulate(valid & held, axis=0)
            steps = np.where(valid, steps, steps[valid.sum(axis=0) - 1, np.arange(len(start))])
        return steps.T, valid.T
