"""Test helpers for the wire layouts of a transition batch: protocol 5's step records and protocol 4's columns."""

from __future__ import annotations

from typing import Mapping

import numpy as np

from common.types import ROW_PREFIX, SCALAR_COLUMNS, STEPS, step_dtype


def step_records(arrays: Mapping[str, np.ndarray], action_shape: tuple[int, ...]) -> np.ndarray:
    """The writable step records of a packed batch (edit a field to corrupt it)."""
    return arrays[STEPS].reshape(-1).view(step_dtype(action_shape))


def column_layout(arrays: Mapping[str, np.ndarray], action_shape: tuple[int, ...]) -> dict[str, np.ndarray]:
    """The same batch as protocol 4 sent it and durable journals of that time hold: one array per column."""
    steps = step_records(arrays, action_shape)
    columns = {key: value for key, value in arrays.items() if key.startswith(ROW_PREFIX)}
    for name in ("obs_index", "next_obs_index", "action", *SCALAR_COLUMNS):
        columns[name] = np.ascontiguousarray(steps[name])
    return columns
