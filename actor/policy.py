"""Policies as the control loop sees them: numpy observation in, normalised action in [-1, 1] out.

`NetworkPolicy` wraps the network an algorithm's `make_policy` builds (CPU, inference mode, batch of
one). `RandomPolicy` acts before the first weights arrive. A policy that produces NaN or Inf raises
`PolicyOutputError` instead of handing the robot garbage; the loop turns that into a stop.
"""

from __future__ import annotations

import json

import numpy as np
import torch

from common.protocol import Weights
from common.specs import RobotSpec
from common.types import Observation


class PolicyOutputError(RuntimeError):
    """The policy produced a non-finite action."""


class WeightsSchemaError(ValueError):
    """Received weights do not match the policy network's own parameter names, shapes or dtypes."""


class RandomPolicy:
    """Uniform actions in [-1, 1]; what an actor does before the learner has published anything."""

    version = -1

    def __init__(self, spec: RobotSpec, seed: int = 0) -> None:
        self._shape = spec.action.shape
        self._rng = np.random.default_rng(seed)

    def act(self, observation: Observation, deterministic: bool = False) -> np.ndarray:
        return self._rng.uniform(-1.0, 1.0, self._shape).astype(np.float32)


class NetworkPolicy:
    """A torch policy network of a given weights version, run on the CPU."""

    def __init__(self, module: torch.nn.Module, spec: RobotSpec, version: int) -> None:
        self.module = module.eval()
        self.spec = spec
        self.version = version

    @torch.inference_mode()
    def act(self, observation: Observation, deterministic: bool = False) -> np.ndarray:
        batch = {key: torch.from_numpy(np.ascontiguousarray(value))[None] for key, value in observation.items()}
        action = self.module.act(batch, deterministic=deterministic)[0].numpy()
        if not np.all(np.isfinite(action)):
            raise PolicyOutputError(f"policy v{self.version} produced {action}")
        return np.clip(action, -1.0, 1.0).astype(np.float32)


def build_policy(weights: Weights, spec: RobotSpec) -> NetworkPolicy:
    """Build the algorithm's policy network and load `weights` after checking them against its schema."""
    from learner.algorithms import ALGORITHMS, config_from_overrides  # torch-heavy; only when weights arrive

    if weights.spec_hash != spec.spec_hash:
        raise WeightsSchemaError(f"weights are for spec {weights.spec_hash}, this robot is {spec.spec_hash}")
    algorithm = ALGORITHMS.get(weights.algorithm)
    config = config_from_overrides(weights.algorithm, json.loads(weights.policy_config_json))
    module = algorithm.make_policy(config, spec)
    module.load_state_dict(checked_state_dict(module, weights.tensors), strict=True)
    return NetworkPolicy(module, spec, weights.version)


def checked_state_dict(module: torch.nn.Module, tensors: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """Tensors from the wire, as a state dict, only if names, shapes and dtypes match `module` exactly."""
    own = module.state_dict()
    if set(own) != set(tensors):
        missing, extra = sorted(set(own) - set(tensors)), sorted(set(tensors) - set(own))
        raise WeightsSchemaError(f"weights schema differs: missing {missing[:5]}, unexpected {extra[:5]}")
    state = {}
    for name, reference in own.items():
        array = tensors[name]
        if tuple(array.shape) != tuple(reference.shape) or str(reference.dtype) != f"torch.{array.dtype}":
            raise WeightsSchemaError(
                f"{name}: got {array.dtype}{list(array.shape)}, expected {reference.dtype}{list(reference.shape)}"
            )
        if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
            raise WeightsSchemaError(f"{name}: contains NaN or Inf")
        state[name] = torch.from_numpy(np.array(array))  # copy: wire buffers are read-only
    return state
