"""Policies as the control loop sees them: numpy observation in, normalised action in [-1, 1] out.

`ActingPolicy` is what the loop runs: a policy *program* (actor/programs: one step, chunked, gated,
ensembled) around the network an algorithm's `make_named_policy` builds, or `RandomPolicy` before the
first weights arrive. Every action leaves through `checked_action`: NaN or Inf raises `PolicyOutputError`
instead of handing the robot garbage (the loop turns that into a stop), anything else is clipped to [-1, 1].
`build_policy` turns a `Weights` message into a ready program; it runs on the weight client's thread.
`load_saved_policy` does the same for a saved file (`actor --policy`), refusing one trained for another
robot spec with the list of differences (a twin's `observation=deploy` policy fits its real robot's).
"""

from __future__ import annotations

import json

import numpy as np
import torch

from common.protocol import Weights
from common.specs import RobotSpec, spec_differences
from common.types import PROPOSAL_NONE, Observation


INFERENCE_THREADS = 1
"""Torch intra-op threads of an actor process. Batch-of-one policies gain nothing from more, and on a busy
machine the OpenMP barriers between threads stall for whole scheduler slices: a 10-critic gated program
took 15.8 ms (p50) with 2 threads against 0.2 ms with 1 on a loaded 2-core box (benchmarks/policy_programs.py)."""


class PolicyOutputError(RuntimeError):
    """The policy produced a non-finite (or wrongly shaped) action."""


class WeightsSchemaError(ValueError):
    """Received weights do not match the policy network's own parameter names, shapes or dtypes."""


def checked_action(action: np.ndarray, shape: tuple[int, ...], version: int) -> np.ndarray:
    """`action` (one action or a chunk of them, trailing shape `shape`) clipped to [-1, 1] as float32.

    Raises PolicyOutputError if any element is NaN or Inf, or the trailing shape is not `shape`.
    """
    action = np.asarray(action)
    if action.shape[action.ndim - len(shape):] != tuple(shape):
        raise PolicyOutputError(f"policy v{version} produced shape {action.shape}, actions are {tuple(shape)}")
    if not np.all(np.isfinite(action)):
        raise PolicyOutputError(f"policy v{version} produced {action}")
    return np.clip(action, -1.0, 1.0).astype(np.float32)


class ActingPolicy:
    """What the control loop runs. After each `act`, `proposal` says which proposal ran (a `common.types`
    PROPOSAL_* value) and `step_kind` what the step cost (`common.metrics.INFERENCE_STEPS`)."""

    version = -1
    proposal = PROPOSAL_NONE
    step_kind = "forward"

    def act(self, observation: Observation, deterministic: bool = False) -> np.ndarray:
        """The next action, normalised to [-1, 1]."""
        raise NotImplementedError

    def interrupt(self) -> None:
        """Forget queued actions: the episode ended, the operator took over, or the robot was paused/e-stopped."""

    @property
    def mid_chunk(self) -> bool:
        """True while queued actions remain: new weights wait for the next re-plan, never cut a chunk."""
        return False


class RandomPolicy(ActingPolicy):
    """Uniform actions in [-1, 1]; what an actor does before the learner has published anything."""

    def __init__(self, spec: RobotSpec, seed: int = 0) -> None:
        self._shape = spec.action.shape
        self._rng = np.random.default_rng(seed)

    def act(self, observation: Observation, deterministic: bool = False) -> np.ndarray:
        return self._rng.uniform(-1.0, 1.0, self._shape).astype(np.float32)


def build_policy(weights: Weights, spec: RobotSpec) -> ActingPolicy:
    """Build the named policy's network, load `weights` after checking them against its schema, and wrap it
    in the program the weights name. Bad weights, programs or program settings raise ValueError/KeyError."""
    from actor.programs import make_program  # torch-heavy; only when weights arrive
    from learner.algorithms import ALGORITHMS, config_from_overrides

    if weights.spec_hash != spec.spec_hash:
        raise WeightsSchemaError(f"weights are for spec {weights.spec_hash}, this robot is {spec.spec_hash}")
    torch.set_num_threads(INFERENCE_THREADS)  # the actor's torch only ever runs these policies
    algorithm = ALGORITHMS.get(weights.algorithm)
    config = config_from_overrides(weights.algorithm, json.loads(weights.policy_config_json))
    module = algorithm.make_named_policy(config, spec, weights.policy)
    module.load_state_dict(checked_state_dict(module, weights.tensors), strict=True)
    return make_program(weights.program, module, spec, weights.version, weights.program_config_json)


def load_saved_policy(path: str, spec: RobotSpec) -> tuple[ActingPolicy, str]:
    """(policy, its evaluation record) from a saved policy file (a run's best_policy.npz) for a robot of
    `spec`; a file trained for another spec raises WeightsSchemaError listing the differences."""
    from learner.best_policy import load_weights, saved_spec

    weights, tally = load_weights(path)
    if weights.spec_hash != spec.spec_hash:
        raise WeightsSchemaError(spec_mismatch(path, weights.spec_hash, saved_spec(path), spec))
    return build_policy(weights, spec), tally.describe()


def spec_mismatch(path: str, trained_hash: str, trained_for: RobotSpec | None, spec: RobotSpec) -> str:
    """One paragraph: which spec the saved policy fits, which this robot has, and how they differ."""
    if trained_for is None:
        detail = "the file holds no spec, so the differences cannot be listed"
    else:
        detail = "; ".join(spec_differences(trained_for, spec)) or "they differ in a part this version does not list"
    trained = f"{trained_for.name} " if trained_for is not None else ""
    mode = spec.metadata.get("observation", "")
    return (f"{path} was trained for robot spec {trained}{trained_hash}, but {spec.name}"
            f"{f' (observation={mode})' if mode else ''} has spec {spec.spec_hash}: {detail}. Run it on a robot "
            "observing and acting as it was trained (a twin's -o observation=deploy policy runs on its real robot "
            "with -o observation=deploy -o camera=SOURCE), or train one for this robot.")


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
