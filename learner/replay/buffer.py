"""The learner's replay: an online ring and a demonstration ring behind one lock."""

from __future__ import annotations

import threading
from typing import Mapping

import numpy as np

from common.specs import ArraySpec, RobotSpec
from common.types import NEXT_OBS_PREFIX, OBS_PREFIX, Batch, split_observations, transition_columns
from learner.replay.spec import SamplingSpec
from learner.replay.samplers import MixedSampler, make_sampler
from learner.replay.storage import RingStorage

# Columns that become Batch fields; the remaining scalar columns travel in `Batch.extras`.
_BATCH_FIELDS = ("action", "reward", "terminated", "is_demo")


class ReplayBuffer:
    """Online and demo transitions for one robot spec, safe to add from one thread while another samples.

    Columns follow `common.types.transition_columns(spec)`. The online ring overwrites its oldest rows
    when full; the demo ring refuses to overwrite demonstrations (raise `demo_capacity` instead).
    """

    def __init__(
        self,
        spec: RobotSpec,
        capacity: int,
        demo_capacity: int = 100_000,
        extra_columns: Mapping[str, ArraySpec] | None = None,
    ) -> None:
        self.spec = spec
        # Learner-computed columns (e.g. Cal-QL's mc_return) ride in Batch.extras.
        columns = {**transition_columns(spec), **(extra_columns or {})}
        self._online = RingStorage(columns, capacity)
        self._demo = RingStorage(columns, demo_capacity)
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

    def add_online(self, columns: Mapping[str, np.ndarray]) -> int:
        """Append online transitions (per-transition columns); returns how many were added."""
        with self._lock:
            return self._online.add(columns)

    def add_demo(self, columns: Mapping[str, np.ndarray]) -> int:
        """Append demonstration transitions; raises ValueError rather than overwrite older demos."""
        count = len(columns["reward"])
        with self._lock:
            if self._demo.size + count > self._demo.capacity:
                raise ValueError(
                    f"demo buffer holds {self._demo.size} of {self._demo.capacity} rows; adding {count} would "
                    "overwrite demonstrations (raise demo_capacity)"
                )
            return self._demo.add(columns)

    def sample(self, sampling: SamplingSpec, rng: np.random.Generator) -> Batch:
        """A numpy Batch mixing demo and online rows per `sampling` (see `MixedSampler`)."""
        sampler = self._samplers.get(sampling)
        if sampler is None:
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
