"""Links from each stored row to the row holding the next step of the same actor's episode.

Rows of one actor's episode are not contiguous in the ring when several actors interleave batches, so
each row keeps the row id of its successor (`next_id`; its own id until that step arrives, so following
links from an episode's last row stays on it), and beside it that row's slot (`next_slot`, so walking
needs no division per step). A link is made only when the new row really is (same actor, same episode,
step + 1) of a row that is still stored, and the row that ends an episode (terminated or truncated)
never gets one. A link is followed only while the slot it names still holds the row id it was made for
(`RingStorage.row_id`), so a slot that eviction has since overwritten with anything else, even a row of
the same episode, breaks it. Eviction is oldest-first, so a stored row's successor (newer) is normally
stored too; the check keeps that an enforced fact, not an assumption about the ring, for the price of
one gather over the whole walk.
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
        self.next_slot = np.arange(capacity, dtype=np.int64)  # next_id's slot (an empty slot names itself)
        self._tails: dict[str, _Tail] = {}

    def link(self, slots: np.ndarray, ids: np.ndarray, capacity: int) -> None:
        """Make the rows at `slots` link to rows `ids` (their own ids: no successor yet)."""
        self.next_id[slots] = ids
        self.next_slot[slots] = ids % capacity

    def record(self, storage: RingStorage, ids: np.ndarray, columns: Mapping[str, np.ndarray], actor_id: str) -> None:
        """Link rows `ids` (just stored; `columns` are theirs, one actor's steps in order) into their episodes."""
        slots = storage.slots(ids)
        self.link(slots, ids, storage.capacity)  # no successor yet (whatever the overwritten rows pointed to is gone)
        follows = follows_previous(columns)
        self.link(slots[:-1][follows], ids[1:][follows], storage.capacity)
        episode, step = int(columns["episode"][0]), int(columns["step"][0])
        tail = self._tails.get(actor_id)
        if tail is not None and not tail.ended and (tail.episode, tail.step + 1) == (episode, step):
            if storage.holds(np.array([tail.row]))[0]:
                self.link(storage.slots(np.array([tail.row])), ids[:1], storage.capacity)
        ends = episode_ends(columns)
        self._tails[actor_id] = _Tail(int(columns["episode"][-1]), int(columns["step"][-1]), int(ids[-1]),
                                      bool(ends[-1]))  # fmt: skip

    def follow(self, storage: RingStorage, start: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray]:
        """Slots of the `horizon` steps from each start row (ids), step-major: (slots (h, n), valid (h, n) bool).

        A step is valid if it and every step before it are stored successors; after the last valid step
        the slots repeat the last valid row's, so `slots[-1]` is always the last valid rows' slots.
        """
        steps = np.empty((horizon, len(start)), dtype=np.int64)  # step-major: each step is one contiguous row
        np.remainder(start, storage.capacity, out=steps[0])  # the start rows' slots
        next_slot = self.next_slot
        for k in range(1, horizon):
            steps[k] = next_slot[steps[k - 1]]
        valid = np.empty(steps.shape, dtype=bool)
        valid[0] = True
        np.not_equal(steps[1:], steps[:-1], out=valid[1:])  # a row without successor links to itself
        # Identity, not just position: each slot walked into must still hold the row its link was made for.
        held = storage.row_id[steps[1:]] == self.next_id[steps[:-1]]
        if np.count_nonzero(held) < held.size:  # a link into an overwritten slot: cut the sequence before it
            valid[1:] &= held
            valid = np.logical_and.accumulate(valid, axis=0)
            steps = np.where(valid, steps, steps[valid.sum(axis=0) - 1, np.arange(len(start))])
        return steps, valid
