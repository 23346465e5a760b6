"""Samplers choose which stored rows form a batch; the buffer owns the data and the lock.

A batch is drawn in two parts: start rows (`StartRows`: uniform over the rows the spec allows, per
storage), then their columns (`transition_columns_at`, or `SequenceGather` for the whole batch). `MixedSampler`
splits the batch between the demo and the online storage.
"""

from __future__ import annotations

import numpy as np

from learner.replay.episodes import EpisodeStorage
from learner.replay.gather import SequenceGather, transition_columns_at
from learner.replay.spec import SamplingSpec

_NO_ROWS = np.zeros(0, dtype=np.int64)
# Rejection rounds before falling back to listing every allowed row; round k draws 2^(k+1) x the shortfall.
_REJECTION_ROUNDS = 4


class NothingToSample(ValueError):
    """Replay holds rows but none the spec allows yet (e.g. no episode has ended): wait for more data."""


class StartRows:
    """Draws start rows uniformly, with replacement, among the rows of a storage that the spec allows.

    Rows are drawn by age (k-th oldest), so a ring restored from a pruned journal, which holds the same
    rows at other slots, draws the same rows for the same generator. Without a filter every row is
    allowed and a draw costs one `rng.integers`. With `returns_to_go`, only rows whose episode has
    ended; with `full_sequences`, only rows followed by h - 1 stored steps of their episode. Filtered
    draws are rejection-sampled, then (if few rows qualify) drawn from the list of all allowed rows.
    """

    def __init__(self, sampling: SamplingSpec) -> None:
        self.returns_to_go = sampling.returns_to_go
        self.full_horizon = sampling.horizon if sampling.full_sequences and sampling.horizon > 1 else 0

    def allowed(self, store: EpisodeStorage, ids: np.ndarray) -> np.ndarray:
        ok = np.ones(len(ids), dtype=bool)
        if self.returns_to_go:
            ok &= store.returns.known[store.rows.slots(ids)]
        if self.full_horizon:
            ok &= store.links.follow(store.rows, ids, self.full_horizon)[1][-1]
        return ok

    def draw(self, store: EpisodeStorage, count: int, rng: np.random.Generator) -> np.ndarray | None:
        """Row ids of `count` start rows, or None if the storage has no allowed row."""
        if count == 0:
            return _NO_ROWS
        if store.size == 0 or (self.returns_to_go and store.returns.count == 0):
            return None
        if not (self.returns_to_go or self.full_horizon):
            return store.rows.ids_by_age(rng.integers(0, store.size, count))
        chosen, missing = [], count
        for round_ in range(_REJECTION_ROUNDS):
            candidates = store.rows.ids_by_age(rng.integers(0, store.size, missing << (round_ + 1)))
            found = candidates[self.allowed(store, candidates)][:missing]
            chosen.append(found)
            missing -= len(found)
            if missing == 0:
                return np.concatenate(chosen)
        everything = store.rows.ids_by_age(np.arange(store.size))
        pool = everything[self.allowed(store, everything)]
        if len(pool) == 0:
            return None
        return np.concatenate([*chosen, pool[rng.integers(0, len(pool), missing)]])

    def nothing_allowed(self, online: EpisodeStorage, demo: EpisodeStorage) -> str:
        """Why no batch can be drawn, for the error."""
        reasons = []
        if self.returns_to_go:
            reasons.append(f"returns_to_go draws only rows of finished episodes ({online.returns.count} online, "
                           f"{demo.returns.count} demo so far; running episodes wait for their end)")  # fmt: skip
        if self.full_horizon:
            reasons.append(f"full_sequences draws only rows followed by {self.full_horizon - 1} more steps of "
                           "their episode")  # fmt: skip
        return (f"no replay row can start a batch: {online.size} online and {demo.size} demo rows are stored, "
                f"but {' and '.join(reasons)}")  # fmt: skip


class MixedSampler:
    """`round(batch_size * demo_ratio)` start rows from the demo storage and the rest from online storage.

    If one storage is empty, or has no row the spec allows, every row comes from the other. Demo rows
    come first in the batch; the returned columns carry an extra float32 `is_demo` column (1.0 for demo
    rows). Columns are transitions for horizon 1, sequences otherwise (layout in `SamplingSpec`).
    """

    def __init__(self, sampling: SamplingSpec) -> None:
        self.sampling = sampling
        self.batch_size = sampling.batch_size
        self.demo_ratio = sampling.demo_ratio
        self.starts = StartRows(sampling)
        self._sequences_of: SequenceGather | None = None  # built on first use, from the storages' columns

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

    def sample(self, online: EpisodeStorage, demo: EpisodeStorage, rng: np.random.Generator) -> dict[str, np.ndarray]:
        demo_ids, online_ids = self._start_rows(online, demo, rng)
        parts = [(store, ids) for store, ids in ((demo, demo_ids), (online, online_ids)) if len(ids)]
        columns = self._sequences(parts) if self.sampling.horizon > 1 else self._transitions(parts)
        columns["is_demo"] = np.repeat(np.array([1.0, 0.0], dtype=np.float32), [len(demo_ids), len(online_ids)])
        return columns

    def _transitions(self, parts: list[tuple[EpisodeStorage, np.ndarray]]) -> dict[str, np.ndarray]:
        gathered = [transition_columns_at(store, ids, self.sampling) for store, ids in parts]
        if len(gathered) == 1:
            return gathered[0]
        return {name: np.concatenate([gathered[0][name], gathered[1][name]]) for name in gathered[0]}

    def _sequences(self, parts: list[tuple[EpisodeStorage, np.ndarray]]) -> dict[str, np.ndarray]:
        if self._sequences_of is None:  # the demo and online storages have the same columns
            self._sequences_of = SequenceGather(parts[0][0].rows.specs, self.sampling)
        columns, at = self._sequences_of.empty(), 0
        for store, ids in parts:
            self._sequences_of.into(store, ids, columns, at)
            at += len(ids)
        return self._sequences_of.add_extras(columns)

    def _start_rows(self, online: EpisodeStorage, demo: EpisodeStorage, rng: np.random.Generator):
        num_demo, num_online = self.counts(online.size, demo.size)
        demo_ids, online_ids = self.starts.draw(demo, num_demo, rng), self.starts.draw(online, num_online, rng)
        if demo_ids is None:  # demo rows stored, none allowed (e.g. no finished episode yet): all from online
            demo_ids, online_ids = _NO_ROWS, self.starts.draw(online, self.batch_size, rng)
        elif online_ids is None:
            demo_ids, online_ids = self.starts.draw(demo, self.batch_size, rng), _NO_ROWS
        if demo_ids is None or online_ids is None:
            raise NothingToSample(self.starts.nothing_allowed(online, demo))
        return demo_ids, online_ids


def make_sampler(sampling: SamplingSpec) -> MixedSampler:
    """The sampler an algorithm's `SamplingSpec` asks for."""
    return MixedSampler(sampling)
