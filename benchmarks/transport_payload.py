"""Constants, profiles and payload of the transport benchmark
(`python -m benchmarks.transport`; method in its docstring)."""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from common.types import Transition  # imported once: a per-call import cost 10 % of the producer

OBS_SHAPE = (128, 128, 1)
ACTION_DIM = 7
POOL = 64  # distinct observation frames the producers cycle through
SAMPLE_S = 0.02  # counter sampling period in every throughput process
RING_CAPACITY = 4096  # transitions in the learner's preallocated ring
ACTOR_ID = "bench-actor"
ACK = struct.Struct("<qd")  # latency ack: (version, subscriber time.time() after decoding)
HOST = "127.0.0.1"

# Reference figures (/work/shared/reference/anchors.md), loopback, 2-core machine.
REF_TRANSITIONS = {"agentlace 30/update": 1713, "agentlace 100/update": 2052, "LeRobot 100/msg": 1016}
REF_LATENCY_MS = {4: {"agentlace": 17.9, "LeRobot": 25.8}, 40: {"agentlace": 267.0, "LeRobot": 424.0}}
TARGET_THROUGHPUT_RATIO = {1: 0.5}  # Tandem/pyzmq by transitions per batch (issue 21): >= 0.5 at 1 per batch,
TARGET_THROUGHPUT_RATIO_DEFAULT = 0.8  # >= 0.8 at 100 (and any other size)
TARGET_LATENCY_RATIO = 1.5


@dataclass
class Profile:
    warm_s: float
    measure_s: float
    rounds: int
    pushes: int
    gap_s: float = 0.03


PROFILES = {
    "default": Profile(warm_s=1.5, measure_s=6.0, rounds=2, pushes=25),
    "quick": Profile(warm_s=0.5, measure_s=2.0, rounds=1, pushes=12),
    "smoke": Profile(warm_s=0.2, measure_s=0.4, rounds=1, pushes=2),  # for the smoke test only
}


# ---- payload --------------------------------------------------------------------------------------
def bench_spec():
    """The benchmark robot: one 128x128 grayscale camera, a 7-d action in [-1, 1]."""
    from common.specs import BoundedSpec, ImageSpec, RobotSpec

    return RobotSpec(
        "bench-gray128",
        {"image": ImageSpec("image", OBS_SHAPE)},
        BoundedSpec("action", (ACTION_DIM,), "float32", low=(-1.0,) * ACTION_DIM, high=(1.0,) * ACTION_DIM),
        control_hz=10.0,
    )


def make_pool(seed: int = 0) -> tuple[list[dict], np.ndarray]:
    rng = np.random.default_rng(seed)
    frames = [{"image": rng.integers(0, 256, OBS_SHAPE, dtype=np.uint8)} for _ in range(POOL)]
    actions = rng.uniform(-1.0, 1.0, (POOL, ACTION_DIM)).astype(np.float32)
    return frames, actions


def make_transition(i: int, frames: list[dict], actions: np.ndarray):
    """Step i; its next_observation is the very object that step i+1 uses as observation."""
    return Transition(
        observation=frames[i % POOL],
        action=actions[i % POOL],
        reward=0.1 * (i % 7),
        terminated=False,
        truncated=False,
        next_observation=frames[(i + 1) % POOL],
        episode=0,
        step=i,
        policy_version=-1,
    )


def baseline_frames(per_msg: int, variant: int) -> list[np.ndarray]:
    """obs, next_obs, action, reward, done for `per_msg` transitions, each array stacked."""
    rng = np.random.default_rng(1000 + variant)
    return [
        rng.integers(0, 256, (per_msg, *OBS_SHAPE), dtype=np.uint8),
        rng.integers(0, 256, (per_msg, *OBS_SHAPE), dtype=np.uint8),
        rng.uniform(-1, 1, (per_msg, ACTION_DIM)).astype(np.float32),
        rng.standard_normal(per_msg).astype(np.float32),
        np.zeros(per_msg, dtype=bool),
    ]


BASELINE_BYTES_PER_TRANSITION = sum(a.nbytes for a in baseline_frames(1, 0))


def weight_tensors(total_floats: int, seed: int = 0) -> dict[str, np.ndarray]:
    """A few float32 tensors summing to `total_floats` (like an encoder, a trunk and a head)."""
    rng = np.random.default_rng(seed)
    sizes = {"encoder.weight": total_floats // 2, "trunk.weight": total_floats // 4, "head.bias": 1024}
    sizes["head.weight"] = total_floats - sum(sizes.values())
    return {name: rng.standard_normal(n).astype(np.float32) for name, n in sizes.items()}


# ---- small helpers --------------------------------------------------------------------------------
