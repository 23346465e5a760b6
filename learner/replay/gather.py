"""Gathering sampled rows into batch columns: transitions, and h-step sequences (layout in `SamplingSpec`)."""

from __future__ import annotations

from typing import Mapping

import numpy as np

from common.specs import ArraySpec
from common.types import NEXT_OBS_PREFIX, OBS_PREFIX
from learner.replay.episodes import EpisodeStorage
from learner.replay.returns import MC_RETURN
from learner.replay.spec import SamplingSpec

# Stored columns a sequence batch carries per step, (B, h, ...). Besides them it carries only the
# observations (first step) and next observations (last valid step); layout in `SamplingSpec`.
PER_STEP_COLUMNS = frozenset({"action", "reward", "terminated", "intervention"})


def transition_columns_at(store: EpisodeStorage, ids: np.ndarray, sampling: SamplingSpec) -> dict[str, np.ndarray]:
    """Every column of rows `ids`, (n, ...); plus `mc_return` if the spec asks for returns."""
    slots = store.rows.slots(ids)
    columns = store.rows.get(slots)
    if sampling.returns_to_go:
        columns[MC_RETURN] = store.returns.mc_return[slots]
    return columns


def sequence_part(name: str) -> str | None:
    """Which rows of a sequence stored column `name` comes from: "steps", "first", "last", or None (not carried)."""
    if name.startswith(OBS_PREFIX):
        return "first"  # h images per sequence would cost h times more
    if name.startswith(NEXT_OBS_PREFIX):
        return "last"  # the bootstrap state
    if name in PER_STEP_COLUMNS:
        return "steps"
    return None  # bookkeeping (episode, step, policy_version, ...): no update reads it; gathering it cost ~10%


class SequenceGather:
    """Gathers h-step sequences of storages with columns `specs` into one batch (layout in `SamplingSpec`).

    What each column needs is worked out once here: at 256 x 10 rows, per-column Python work costs as
    much as the copying. Each storage's rows are taken straight into the batch's arrays (no per-storage
    copies to concatenate), and per-batch extras are computed once over the whole batch.
    """

    def __init__(self, specs: Mapping[str, ArraySpec], sampling: SamplingSpec) -> None:
        self.sampling = sampling
        batch, horizon = sampling.batch_size, sampling.horizon
        self.parts = {name: part for name in specs if (part := sequence_part(name)) is not None}
        self.shapes = {name: ((batch, horizon) if self.parts[name] == "steps" else (batch,)) + spec.shape
                       for name, spec in specs.items() if name in self.parts}  # fmt: skip
        self.dtypes = {name: np.dtype(specs[name].dtype) for name in self.parts}
        self.discounts = sampling.gamma ** np.arange(horizon)
        self.ones = np.ones(horizon, dtype=np.float32)  # valid @ ones: the valid steps per sequence

    def empty(self) -> dict[str, np.ndarray]:
        """Uninitialised batch columns for the stored columns carried, plus float32 `valid` (and `mc_return`)."""
        columns = {name: np.empty(shape, self.dtypes[name]) for name, shape in self.shapes.items()}
        columns["valid"] = np.empty((self.sampling.batch_size, self.sampling.horizon), dtype=np.float32)
        if self.sampling.returns_to_go:
            columns[MC_RETURN] = np.empty(self.sampling.batch_size, dtype=np.float32)
        return columns

    def into(self, store: EpisodeStorage, start: np.ndarray, columns: dict[str, np.ndarray], at: int) -> None:
        """Write the sequences from start rows `start` of `store` into rows `at ..` of `columns` (`empty`)."""
        slots, valid = store.links.follow(store.rows, start, self.sampling.horizon)  # step-major (h, n)
        # `follow` pads with the last valid row; a row of the step-major walk is contiguous.
        rows = {"steps": np.ascontiguousarray(slots.T), "first": slots[0], "last": slots[-1]}
        end = at + len(start)
        arrays = store.rows.arrays
        for name, part in self.parts.items():
            # Slots are in range by construction; mode "clip" skips the buffering mode "raise" does with `out`.
            arrays[name].take(rows[part], 0, columns[name][at:end], "clip")
        columns["valid"][at:end] = valid.T
        if self.sampling.returns_to_go:
            store.returns.mc_return.take(slots[0], 0, columns[MC_RETURN][at:end], "clip")

    def add_extras(self, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """`n_step_return` and `bootstrap` of the gathered batch (`valid` is float32 already)."""
        valid = columns["valid"]
        columns["n_step_return"] = (columns["reward"] * valid @ self.discounts).astype(np.float32)
        steps = valid @ self.ones  # small integers: exact in float32
        bootstrap = self.sampling.gamma ** steps.astype(np.float64)
        columns["bootstrap"] = np.where(columns["terminated"][:, -1], 0.0, bootstrap).astype(np.float32)
        return columns
