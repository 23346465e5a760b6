"""The Algorithm interface, its registry, and building configs from `key=value` overrides.

Every algorithm module defines a `Config` dataclass (one docstring line under each field, checked in
`__post_init__`), loss functions at module level, the `Algorithm` subclass, and registers it with
`@ALGORITHMS.register("name")`. The training loop only ever talks to this interface.
"""

from __future__ import annotations

import abc
import ast
import dataclasses
import inspect
import textwrap
import types
import typing
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

import torch
from torch import nn

from common.registry import Registry
from common.specs import RobotSpec
from common.types import Batch
from learner.replay.spec import SamplingSpec


STAGE_KINDS = ("offline", "rollouts", "online")


@dataclass(frozen=True)
class Stage:
    """One stage of an algorithm's training; the learner runs `Algorithm.stages()` in order.

    - offline: `length` calls of `offline_update(name, batch)` on batches sampled per `sampling`
      (None: the algorithm's own sampling with demo_ratio 1, i.e. the demonstrations only);
    - rollouts: `length` training episodes acted on the robot by the algorithm's policy `policy`
      (published as its own weights version), stored in online replay like any data, no updates;
    - online: `update(batch)` as data arrives, until the run stops (`length` 0) or after `length` updates.
    """

    name: str
    kind: str
    length: int
    policy: str = "online"
    sampling: SamplingSpec | None = None

    def __post_init__(self) -> None:
        if self.kind not in STAGE_KINDS:
            raise ValueError(f"stage {self.name!r}: kind must be one of {STAGE_KINDS}, got {self.kind!r}")
        if self.length < 0:
            raise ValueError(f"stage {self.name!r}: length must be >= 0, got {self.length}")


class Algorithm(abc.ABC):
    """An off-policy learner: consumes torch batches, produces policy weights for the actors.

    One `update` call is one gradient step (the training loop handles the update-to-data ratio).
    """

    Config: ClassVar[type]
    uses_stored_reward: ClassVar[bool] = True
    """False for an inverse-RL method whose critic learns from its own learned reward (CSIL), not replay's."""

    def __init__(self, config: Any, spec: RobotSpec, device: torch.device, seed: int = 0) -> None:
        if not isinstance(config, self.Config):
            raise TypeError(f"{type(self).__name__} needs a {self.Config.__name__}, got {type(config).__name__}")
        self.config = config
        self.spec = spec
        self.device = torch.device(device)
        self.seed = seed

    @property
    @abc.abstractmethod
    def sampling(self) -> SamplingSpec:
        """How the training loop should sample batches for `update`."""

    @abc.abstractmethod
    def update(self, batch: Batch) -> dict[str, float]:
        """One gradient step on a batch already on `self.device`; returns named scalar metrics."""

    @staticmethod
    @abc.abstractmethod
    def make_policy(config: Any, spec: RobotSpec) -> nn.Module:
        """The policy network the actor runs; has `act(observation, deterministic) -> actions in [-1, 1]`."""

    @abc.abstractmethod
    def policy_state_dict(self) -> dict[str, torch.Tensor]:
        """A copy of the weights actors need; loads strictly into `make_policy(config, spec)`."""

    @abc.abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume bit-identically (nets, targets, optimisers, counters, RNG)."""

    @abc.abstractmethod
    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore from `state_dict()` output."""

    @torch.no_grad()
    def mean_action(self, observation: Mapping[str, torch.Tensor]) -> torch.Tensor | None:
        """The policy's deterministic actions at these states, for diagnostics; None if it has no such notion.

        Algorithms built on `ActorCritic` (attribute `nets`) answer with tanh(mu(s)).
        """
        nets = getattr(self, "nets", None)
        return None if nets is None else nets.policy(observation).deterministic_action()

    # ---- training stages and the policies actors run ---------------------------------------------
    def stages(self) -> list[Stage]:
        """The stages the learner runs in order, the last one online; lengths come from the config."""
        return [Stage("online", "online", 0)]

    def offline_update(self, stage: str, batch: Batch) -> dict[str, float]:
        """One gradient step of offline stage `stage` on a batch already on `self.device`."""
        raise NotImplementedError(f"{type(self).__name__} has no offline stage {stage!r}")

    def end_stage(self, stage: str) -> None:
        """Called once when stage `stage` completes (e.g. initialise the RL actor from the BC policy)."""

    def policy_program(self, policy: str = "online") -> tuple[str, dict[str, Any]]:
        """The actor program that runs the named policy, and its JSON-able settings."""
        return "one_step", {}

    @classmethod
    def make_named_policy(cls, config: Any, spec: RobotSpec, policy: str = "online") -> nn.Module:
        """The network of the named policy (what the actor builds from a `Weights` naming it)."""
        if policy != "online":
            raise ValueError(f"{cls.__name__} has no policy {policy!r}; it has 'online'")
        return cls.make_policy(config, spec)

    def named_policy_state_dict(self, policy: str = "online") -> dict[str, torch.Tensor]:
        """The weights of the named policy; loads strictly into `make_named_policy(config, spec, policy)`."""
        if policy != "online":
            raise ValueError(f"{type(self).__name__} has no policy {policy!r}; it has 'online'")
        return self.policy_state_dict()


ALGORITHMS: Registry[type[Algorithm]] = Registry("algorithm")


def make_algorithm(
    name: str,
    spec: RobotSpec,
    overrides: Mapping[str, str | float | int | bool] | None = None,
    device: torch.device | str = "cpu",
    seed: int = 0,
) -> Algorithm:
    """Build the registered algorithm `name` with its default config changed by `overrides`."""
    cls = ALGORITHMS.get(name)
    return cls(config_from_overrides(name, overrides or {}), spec, torch.device(device), seed)


def config_from_overrides(name: str, overrides: Mapping[str, str | float | int | bool]) -> Any:
    """The algorithm's Config with `overrides` applied; strings are converted to each field's type."""
    config_cls = ALGORITHMS.get(name).Config
    hints = typing.get_type_hints(config_cls)
    fields = {f.name for f in dataclasses.fields(config_cls) if f.init}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"unknown {name} config field(s) {unknown}; fields: {', '.join(sorted(fields))}")
    values = {}
    for key, value in overrides.items():
        try:
            values[key] = convert_value(value, hints[key])
        except (TypeError, ValueError) as error:
            raise ValueError(f"{name} config field {key}: {error}") from None
    return config_cls(**values)


def config_to_dict(config: Any) -> dict[str, Any]:
    """A config as a plain dict (tuples become lists), ready for JSON next to a checkpoint."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()}


def config_docs(config_cls: type) -> dict[str, str]:
    """Field name -> the one-line docstring written under it in the dataclass body (for `--help`).

    Base config classes are read first, so a preset that re-declares a field (to change its default)
    can document the new default, and the fields it inherits keep their documentation.
    """
    docs: dict[str, str] = {}
    for cls in reversed([c for c in config_cls.__mro__ if dataclasses.is_dataclass(c)]):
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
        body = tree.body[0].body
        for node, following in zip(body, body[1:]):
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                if isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant):
                    docs[node.target.id] = str(following.value.value).strip()
    return docs


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def convert_value(value: Any, annotation: Any) -> Any:
    """Convert a CLI value to `annotation` (bool, int, float, str, tuple[T, ...], Optional[T])."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, str) and value.lower() == "none"):
            if type(None) in args:
                return None
        return convert_value(value, next(a for a in args if a is not type(None)))
    if origin is tuple:
        items = value.split(",") if isinstance(value, str) else list(value)
        items = [item.strip() if isinstance(item, str) else item for item in items]
        return tuple(convert_value(item, args[0]) for item in items if item != "")
    if annotation is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text not in _TRUE | _FALSE:
            raise ValueError(f"expected a boolean, got {value!r}")
        return text in _TRUE
    if annotation is int:
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                value = float(value)  # accept "1e4"
        if isinstance(value, bool) or int(value) != value:
            raise ValueError(f"expected an integer, got {value!r}")
        return int(value)
    if annotation is float:
        if isinstance(value, bool):
            raise ValueError(f"expected a number, got {value!r}")
        return float(value)
    if annotation is str:
        return str(value)
    raise TypeError(f"cannot convert to {annotation!r}")
