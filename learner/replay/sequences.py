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
    """The `sampling.horizon` steps from each start row, with `valid`, `n_step_return` and `bootstrap`."""
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
    discounts = sampling.gamma ** np.arange(sampling.horizon)
    columns["valid"] = valid.astype(np.float32)
    columns["n_step_return"] = (columns["reward"] * valid @ discounts).astype(np.float32)
    steps = valid.sum(axis=1)
    columns["bootstrap"] = np.where(columns["terminated"][:, -1], 0.0, sampling.gamma**steps).astype(np.float32)
    if sampling.returns_to_go:
        columns[MC_RETURN] = store.returns.mc_return[first]
    return columns
