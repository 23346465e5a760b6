"""The learner's replay: an online ring and a demonstration ring behind one lock."""

from __future__ import annotations

import threading
from typing import Mapping

import numpy as np

from common.specs import ArraySpec, RobotSpec
from common.types import NEXT_OBS_PREFIX, OBS_PREFIX, Batch, split_observations, transition_columns
from learner.replay.episodes import EpisodeStorage
from learner.replay.samplers import MixedSampler, make_sampler
from learner.replay.spec import SamplingSpec

# Columns that become Batch fields; the remaining scalar columns travel in `Batch.extras`.
_BATCH_FIELDS = ("action", "reward", "terminated", "is_demo")


class ReplayBuffer:
    """Online and demo transitions for one robot spec, safe to add from one thread while another samples.

    Columns follow `common.types.transition_columns(spec)`. Rows are indexed by (actor, episode, step):
    each actor's batches must arrive with its steps in order (the server guarantees it), and batches
    of different actors may interleave. The online ring overwrites its oldest rows when full; the demo
    ring refuses to overwrite demonstrations (raise `demo_capacity` instead). Returns-to-go are computed
    with `gamma` as episodes end; a `SamplingSpec` asking for them must use the same gamma.
    """

    def __init__(
        self,
        spec: RobotSpec,
        capacity: int,
        demo_capacity: int = 100_000,
        extra_columns: Mapping[str, ArraySpec] | None = None,
        gamma: float = 0.99,
    ) -> None:
        self.spec = spec
        # Extra stored scalar columns ride in Batch.extras of transition batches (sequence layout: SamplingSpec).
        columns = {**transition_columns(spec), **(extra_columns or {})}
        self._online = EpisodeStorage(columns, capacity, gamma)
        self._demo = EpisodeStorage(columns, demo_capacity, gamma)
        self.gamma = gamma
        self._lock = threading.Lock()
        self._samplers: dict[SamplingSpec, MixedSampler] = {}

    @property
    def online_size(self) -> int:
        with self._lock:
            return self._online.size

    @property
    def demo_size(self) -> int:
        with self._lock:
            return self._demo.size

    def add_online(self, columns: Mapping[str, np.ndarray], actor_id: str) -> int:
        """Append one batch of `actor_id`'s transitions (per-transition columns); returns how many were added."""
        with self._lock:
            return self._online.add(columns, actor_id)

    def add_demo(self, columns: Mapping[str, np.ndarray], actor_id: str = "demo") -> int:
        """Append demonstration transitions (a demo file's episodes, or an actor's corrections under its id);
        raises ValueError rather than overwrite older demos."""
        count = len(columns["reward"])
        with self._lock:
            if self._demo.size + count > self._demo.capacity:
                raise ValueError(
                    f"demo buffer holds {self._demo.size} of {self._demo.capacity} rows; adding {count} would "
                    "overwrite demonstrations (raise demo_capacity)"
                )
            return self._demo.add(columns, actor_id)

    def sample(self, sampling: SamplingSpec, rng: np.random.Generator) -> Batch:
        """A numpy Batch mixing demo and online rows per `sampling` (layout in `SamplingSpec`)."""
        sampler = self._samplers.get(sampling)
        if sampler is None:
            if sampling.returns_to_go and sampling.gamma != self.gamma:
                raise ValueError(f"replay computes returns-to-go with gamma {self.gamma} as episodes end, but the "
                                 f"sampling spec asks for gamma {sampling.gamma}: build ReplayBuffer(gamma=...) "
                                 "with the algorithm's gamma")  # fmt: skip
            sampler = self._samplers[sampling] = make_sampler(sampling)
        with self._lock:
            columns = sampler.sample(self._online, self._demo, rng)
        return columns_to_batch(columns)


def columns_to_batch(columns: Mapping[str, np.ndarray]) -> Batch:
    """Group sampled columns into a Batch: float32 reward/terminated/is_demo, other scalars in extras."""
    extras = {
        name: value
        for name, value in columns.items()
        if name not in _BATCH_FIELDS and not name.startswith((OBS_PREFIX, NEXT_OBS_PREFIX))
    }
    return Batch(
        observation=split_observations(columns, OBS_PREFIX),
        action=columns["action"].astype(np.float32, copy=False),
        reward=columns["reward"].astype(np.float32, copy=False),
        terminated=columns["terminated"].astype(np.float32),
        next_observation=split_observations(columns, NEXT_OBS_PREFIX),
        is_demo=columns["is_demo"].astype(np.float32, copy=False),
        extras=extras,
    )
