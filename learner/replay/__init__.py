"""Replay: ring storage indexed by (actor, episode, step) x samplers (transitions, h-step sequences,
returns-to-go), the online+demo buffer, demo loading, device transfer, durable segments.

Names are imported on first use, so `learner.replay.durable` (no torch) loads fast in small tools.
"""

from __future__ import annotations

import importlib

_HOMES = {
    "to_torch": "batches",
    "ReplayBuffer": "buffer",
    "columns_to_batch": "buffer",
    "load_demo_columns": "demos",
    "EpisodeStorage": "episodes",
    "EpisodeLinks": "links",
    "MC_RETURN": "returns",
    "ReturnsTracker": "returns",
    "returns_to_go": "returns",
    "MixedSampler": "samplers",
    "NothingToSample": "samplers",
    "StartRows": "samplers",
    "make_sampler": "samplers",
    "sequence_columns_at": "gather",
    "transition_columns_at": "gather",
    "SamplingSpec": "spec",
    "RingStorage": "storage",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> object:
    if name not in _HOMES:
        raise AttributeError(f"module 'learner.replay' has no attribute {name!r}")
    return getattr(importlib.import_module(f"learner.replay.{_HOMES[name]}"), name)
