"""What every policy program shares: its registry, its settings from JSON, and running one torch module.

A program is chosen by `Weights.program` and configured by `Weights.program_config_json`; it wraps the
module `make_named_policy(config, spec, weights.policy)` built. Each program documents the methods it
needs from that module as a `typing.Protocol` (`Module`), checked when the weights arrive, so a module
that cannot run the program is refused like bad weights instead of failing at the robot.
"""

from __future__ import annotations

import json
import typing
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from actor.policy import ActingPolicy, PolicyOutputError, checked_action
from common.registry import Registry
from common.specs import RobotSpec
from common.types import Observation


@dataclass(frozen=True)
class ProgramConfig:
    """Settings every program takes; a program's own Config adds fields (one docstring line each)."""

    deterministic: bool = False
    """Act deterministically in training episodes too (a rollouts stage running a BC policy's mode)."""

    @classmethod
    def from_json(cls, text: str) -> "ProgramConfig":
        """Parse `Weights.program_config_json`; unknown keys or wrongly typed values raise ValueError."""
        values = json.loads(text or "{}")
        if not isinstance(values, dict):
            raise ValueError(f"program settings must be a JSON object, got {text!r}")
        hints = typing.get_type_hints(cls)
        unknown = sorted(set(values) - set(hints))
        if unknown:
            raise ValueError(f"unknown {cls.__qualname__} setting(s) {unknown}; known: {', '.join(sorted(hints))}")
        for key, value in values.items():
            if not _has_type(value, hints[key]):
                raise ValueError(f"{cls.__qualname__}.{key} must be {hints[key].__name__}, got {value!r}")
        return cls(**values)


def _has_type(value: Any, annotation: type) -> bool:
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, annotation)


class NetworkProgram(ActingPolicy):
    """A program around one torch module of one weights version, run on the CPU with a batch of one.

    Subclasses set `Config`, `Module` (the runtime-checkable Protocol the module must follow) and implement
    `_next_action`; `act` adds inference mode and the output check every program's action goes through.
    """

    Config: ClassVar[type[ProgramConfig]] = ProgramConfig
    Module: ClassVar[type]

    def __init__(self, module: torch.nn.Module, spec: RobotSpec, version: int, config: ProgramConfig) -> None:
        if not isinstance(module, self.Module):
            needs = ", ".join(protocol_members(self.Module))
            raise ValueError(f"{type(self).__name__} needs a module with {needs}; got {type(module).__name__}")
        self.module = module.eval()
        self.spec = spec
        self.version = version
        self.config = config

    def act(self, observation: Observation, deterministic: bool = False) -> np.ndarray:
        with torch.inference_mode():
            action = self._next_action(observation, deterministic or self.config.deterministic)
        return checked_action(action, self.spec.action.shape, self.version)

    def _next_action(self, observation: Observation, deterministic: bool) -> np.ndarray:
        raise NotImplementedError

    def _checked(self, actions: torch.Tensor) -> np.ndarray:
        """The first batch row of a module's output, checked and clipped (a whole chunk at once)."""
        return checked_action(actions[0].numpy(), self.spec.action.shape, self.version)

    def _checked_chunk(self, chunk: torch.Tensor, length: int) -> np.ndarray:
        """A planned (1, length, d) chunk's actions, checked and clipped before any of them runs."""
        actions = self._checked(chunk)
        if actions.ndim != 2 or len(actions) != length:
            raise PolicyOutputError(f"policy v{self.version} planned shape {tuple(actions.shape)}, not ({length}, d)")
        return actions


def batch_of_one(observation: Observation) -> dict[str, torch.Tensor]:
    """A numpy observation as a batch of one torch tensor per key (no copy when already contiguous)."""
    return {key: torch.from_numpy(np.ascontiguousarray(value))[None] for key, value in observation.items()}


PROGRAMS: Registry[type[NetworkProgram]] = Registry("policy program")


def make_program(name: str, module: torch.nn.Module, spec: RobotSpec, version: int, config_json: str) -> NetworkProgram:
    """The registered program `name` around `module`, configured by `config_json`."""
    program = PROGRAMS.get(name)
    return program(module, spec, version, program.Config.from_json(config_json))


def protocol_members(protocol: type) -> list[str]:
    """The attribute and method names a Protocol declares (for the error naming what a module lacks)."""
    methods = {name for name in vars(protocol) if not name.startswith("_")}
    return sorted(methods | set(getattr(protocol, "__annotations__", {})))
