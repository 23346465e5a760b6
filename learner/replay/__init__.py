"""Replay: ring storage x samplers, the online+demo buffer, demo loading and device transfer."""

from learner.replay.batches import to_torch
from learner.replay.buffer import ReplayBuffer, columns_to_batch
from learner.replay.demos import load_demo_columns
from learner.replay.samplers import MixedSampler, UniformSampler, make_sampler
from learner.replay.storage import RingStorage

__all__ = [
    "MixedSampler",
    "ReplayBuffer",
    "RingStorage",
    "UniformSampler",
    "columns_to_batch",
    "load_demo_columns",
    "make_sampler",
    "to_torch",
]
