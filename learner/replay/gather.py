"""Gathering sampled rows into batch columns: transitions, and h-step sequences (layout in `SamplingSpec`)."""

from __future__ import annotations

import numpy as np

from common.types import NEXT_OBS_PREFIX, OBS_PREFIX
from learner.replay.episodes import EpisodeStorage
from learner.replay.returns import MC_RETURN
from learner.replay.spec import SamplingSpec


def transition_columns_at(store: EpisodeStorage, ids: np.ndarray, sampling: SamplingSpec) -> dict[str, np.ndarray]:
    """Every column of rows `ids`, (n, ...); plus `mc_return` if the spec asks for returns."""
    slots = store.rows.slots(ids)
    columns = store.rows.get(slots)
    if sampling.returns_to_go:
        columns[MC_RETURN] = store.returns.mc_return[slots]
    return columns


def sequence_columns_at(store: EpisodeStorage, start: np.ndarray, sampling: SamplingSpec) -> dict[str, np.ndarray]:
    """The `sampling.horizon` steps from each start row, with a bool `valid` (see `add_sequence_extras`)."""
    ids, valid = store.links.follow(store.rows, start, sampling.horizon)
    slots = store.rows.slots(ids)
    first, last = slots[:, 0], slots[:, -1]  # `follow` pads with the last valid row
    columns = {}
    for name, array in store.rows.arrays.items():
        # Only the first observation and the bootstrap state: h images per sequence would cost h times more.
        if name.startswith(OBS_PREFIX):
            columns[name] = array[first]
        elif name.startswith(NEXT_OBS_PREFIX):
            columns[name] = array[last]
        else:  # per step; np.take is several times faster than array[slots] with a 2-d index
            columns[name] = np.take(array, slots, axis=0)
    columns["valid"] = valid
    if sampling.returns_to_go:
        columns[MC_RETURN] = store.returns.mc_return[first]
    return columns


def add_sequence_extras(columns: dict[str, np.ndarray], sampling: SamplingSpec) -> dict[str, np.ndarray]:
    """`valid` as float32, `n_step_return` and `bootstrap` of gathered sequences (once per whole batch)."""
    valid = columns["valid"]
    steps = valid.sum(axis=1)
    columns["n_step_return"] = (columns["reward"] * valid @ sampling.gamma ** np.arange(sampling.horizon)).astype(
        np.float32)  # fmt: skip
    columns["bootstrap"] = np.where(columns["terminated"][:, -1], 0.0, sampling.gamma**steps).astype(np.float32)
    columns["valid"] = valid.astype(np.float32)
    return columns
