"""Samplers choose which stored rows form a batch; the buffer owns the data and the lock.

Kept as small objects so that sequence samplers (horizon > 1, never crossing an episode end) can be
added beside these without touching the buffer.
"""

from __future__ import annotations

import numpy as np

from learner.replay.spec import SamplingSpec
from learner.replay.storage import RingStorage


class UniformSampler:
    """Rows drawn uniformly, with replacement, from one storage."""

    def sample(self, storage: RingStorage, count: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        if storage.size == 0:
            raise ValueError("cannot sample from an empty storage")
        return storage.get(rng.integers(0, storage.size, size=count))


class MixedSampler:
    """`round(batch_size * demo_ratio)` rows from the demo storage and the rest from online storage.

    If one storage is empty every row comes from the other. Demo rows come first in the batch; the
    returned columns carry an extra float32 `is_demo` column (1.0 for demo rows).
    """

    def __init__(self, batch_size: int, demo_ratio: float, rows: UniformSampler | None = None) -> None:
        self.batch_size = batch_size
        self.demo_ratio = demo_ratio
        self.rows = rows or UniformSampler()

    def counts(self, online_size: int, demo_size: int) -> tuple[int, int]:
        """(demo rows, online rows) for a batch given the current storage sizes."""
        if online_size == 0 and demo_size == 0:
            raise ValueError("replay is empty: no online and no demo transitions to sample")
        if demo_size == 0:
            return 0, self.batch_size
        if online_size == 0:
            return self.batch_size, 0
        num_demo = int(round(self.batch_size * self.demo_ratio))
        return num_demo, self.batch_size - num_demo

    def sample(self, online: RingStorage, demo: RingStorage, rng: np.random.Generator) -> dict[str, np.ndarray]:
        num_demo, num_online = self.counts(online.size, demo.size)
        parts = []
        if num_demo:
            parts.append((self.rows.sample(demo, num_demo, rng), 1.0))
        if num_online:
            parts.append((self.rows.sample(online, num_online, rng), 0.0))
        if len(parts) == 1:
            columns, flag = parts[0]
            return {**columns, "is_demo": np.full(self.batch_size, flag, dtype=np.float32)}
        (demo_cols, _), (online_cols, _) = parts
        columns = {name: np.concatenate([demo_cols[name], online_cols[name]]) for name in demo_cols}
        columns["is_demo"] = np.repeat(np.array([1.0, 0.0], dtype=np.float32), [num_demo, num_online])
        return columns


def make_sampler(sampling: SamplingSpec) -> MixedSampler:
    """The sampler an algorithm's `SamplingSpec` asks for."""
    if sampling.horizon != 1:
        raise NotImplementedError(f"sequence sampling (horizon={sampling.horizon}) is not implemented yet")
    return MixedSampler(sampling.batch_size, sampling.demo_ratio)
