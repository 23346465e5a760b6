"""Replay: ring storage x samplers, the online+demo buffer, demo loading, device transfer, durable segments.

Names are imported on first use, so `learner.replay.durable` (no torch) loads fast in small tools.
"""

from __future__ import annotations

import importlib

_HOMES = {
    "to_torch": "batches",
    "ReplayBuffer": "buffer",
    "columns_to_batch": "buffer",
    "load_demo_columns": "demos",
    "MixedSampler": "samplers",
    "UniformSampler": "samplers",
    "make_sampler": "samplers",
    "RingStorage": "storage",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> object:
    if name not in _HOMES:
        raise AttributeError(f"module 'learner.replay' has no attribute {name!r}")
    return getattr(importlib.import_module(f"learner.replay.{_HOMES[name]}"), name)
