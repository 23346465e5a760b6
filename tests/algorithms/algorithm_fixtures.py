"""Builders shared by the algorithm tests: small robot specs and random torch batches that fit them."""

from __future__ import annotations

import numpy as np
import torch

from common.specs import ArraySpec, BoundedSpec, ImageSpec, RobotSpec
from common.types import Batch


def state_spec(obs_dim: int = 6, action_dim: int = 2) -> RobotSpec:
    action = BoundedSpec("action", (action_dim,), low=(-1.0,) * action_dim, high=(1.0,) * action_dim)
    return RobotSpec("toy", {"state": ArraySpec("state", (obs_dim,))}, action, 10.0)


def image_spec() -> RobotSpec:
    observation = {"state": ArraySpec("state", (3,)), "wrist": ImageSpec("wrist", (24, 24, 3))}
    return RobotSpec("toy_cam", observation, BoundedSpec("action", (2,), low=(-1.0, -1.0), high=(1.0, 1.0)), 10.0)


def random_observation(spec: RobotSpec, size: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
    observation = {}
    for key, obs_spec in spec.observation.items():
        if obs_spec.dtype == "uint8":
            value = rng.integers(0, 256, (size,) + obs_spec.shape, dtype=np.uint8)
        else:
            value = rng.standard_normal((size,) + obs_spec.shape).astype(obs_spec.dtype)
        observation[key] = torch.from_numpy(value)
    return observation


def random_batch(spec: RobotSpec, size: int = 32, seed: int = 0, horizon: int = 1) -> Batch:
    """A torch batch on CPU with random observations, in-range actions and some terminations; with
    `horizon` > 1 an h-step sequence batch laid out as `SamplingSpec` documents (some sequences end early)."""
    rng = np.random.default_rng(seed)
    steps = () if horizon == 1 else (horizon,)
    batch = Batch(
        observation=random_observation(spec, size, rng),
        action=torch.from_numpy(rng.uniform(-1, 1, (size, *steps, spec.action_dim)).astype(np.float32)),
        reward=torch.from_numpy(rng.standard_normal((size, *steps)).astype(np.float32)),
        terminated=torch.from_numpy((rng.random((size, *steps)) < 0.2).astype(np.float32)),
        next_observation=random_observation(spec, size, rng),
        is_demo=torch.from_numpy((rng.random(size) < 0.5).astype(np.float32)),
        # Monte-Carlo returns-to-go (replay computes them per episode) for Cal-QL; others ignore them.
        extras={"mc_return": torch.from_numpy(rng.uniform(-100, 0, size).astype(np.float32))},
    )
    if horizon > 1:
        length = rng.integers(1, horizon + 1, size)  # valid steps of each sequence
        valid = (np.arange(horizon) < length[:, None]).astype(np.float32)
        batch.extras["valid"] = torch.from_numpy(valid)
        batch.extras["n_step_return"] = (batch.reward * torch.from_numpy(valid) * 0.99 ** torch.arange(horizon)).sum(1)
        batch.extras["bootstrap"] = torch.from_numpy((0.99**length * (rng.random(size) > 0.2)).astype(np.float32))
    return batch


def demo_columns(spec: RobotSpec, episodes: int = 4, steps: int = 8, seed: int = 0) -> dict[str, np.ndarray]:
    """Replay columns of `episodes` random demonstration episodes of `steps` steps each (the last truncated)."""
    from common.types import transition_columns

    rng, count = np.random.default_rng(seed), episodes * steps
    columns = {}
    for name, column in transition_columns(spec).items():
        shape = (count,) + column.shape
        if column.dtype == "uint8":
            columns[name] = rng.integers(0, 256, shape, dtype=np.uint8)
        elif column.dtype == "bool":
            columns[name] = np.zeros(shape, bool)
        else:
            columns[name] = rng.uniform(-1, 1, shape).astype(column.dtype)
    columns["episode"] = np.repeat(np.arange(episodes), steps).astype(np.int64)
    columns["step"] = np.tile(np.arange(steps), episodes).astype(np.int32)
    columns["truncated"] = columns["step"] == steps - 1
    columns["policy_version"] = np.full(count, -1, np.int32)
    return columns


def demo_batch(algorithm, sampling, seed: int = 0) -> Batch:
    """A torch batch sampled per `sampling` from a real replay holding only random demonstrations
    (with returns-to-go, which replay computes as each demo episode ends, when `sampling` asks for them)."""
    from learner.replay.batches import to_torch
    from learner.replay.buffer import ReplayBuffer

    replay = ReplayBuffer(algorithm.spec, 64, gamma=sampling.gamma)
    replay.add_demo(demo_columns(algorithm.spec, seed=seed))
    return to_torch(replay.sample(sampling, np.random.default_rng(seed)), algorithm.device)
