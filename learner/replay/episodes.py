"""One ring of transitions indexed by (actor, episode, step): the rows, their successor links, their returns."""

from __future__ import annotations

from typing import Mapping

import numpy as np

from common.specs import ArraySpec
from learner.replay.links import EpisodeLinks
from learner.replay.returns import ReturnsTracker
from learner.replay.storage import RingStorage


class EpisodeStorage:
    """A `RingStorage` plus what samplers need to walk episodes: `links` and `returns`.

    Rows come in per actor, each actor's steps in order (the server stores an actor's batches in
    sequence order); different actors' batches may interleave freely. Not thread-safe on its own.
    """

    def __init__(self, columns: Mapping[str, ArraySpec], capacity: int, gamma: float) -> None:
        self.rows = RingStorage(columns, capacity)
        self.links = EpisodeLinks(capacity)
        self.returns = ReturnsTracker(capacity, gamma)

    @property
    def size(self) -> int:
        return self.rows.size

    @property
    def capacity(self) -> int:
        return self.rows.capacity

    def add(self, columns: Mapping[str, np.ndarray], actor_id: str) -> int:
        """Store one actor's rows (its steps in order); returns how many rows came in."""
        ids = self.rows.add(columns)  # validates the columns first
        count = len(columns["reward"])
        if count == 0:
            return 0
        if len(ids) == count:
            self.links.record(self.rows, ids, columns, actor_id)
            self.returns.record(self.rows, ids, columns, actor_id)
            return count
        # A batch longer than the ring: only its tail is stored, but its head's rewards still count in returns.
        self.links.record(self.rows, ids, {name: value[count - len(ids):] for name, value in columns.items()}, actor_id)
        self.returns.record(self.rows, np.concatenate([np.full(count - len(ids), -1), ids]), columns, actor_id)
        return count
