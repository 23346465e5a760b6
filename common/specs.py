"""Array and robot specifications: what a robot observes and accepts, known before it connects.

A `RobotSpec` is exchanged (as its `spec_hash`) at the actor-learner handshake, so both sides agree on
shapes, dtypes and action bounds before a single transition travels. Algorithms only ever see actions
normalised to [-1, 1]; `normalize_action` / `denormalize_action` are the one place that maps between
that range and the robot's physical units.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

ALLOWED_DTYPES = ("uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64", "bool")
_NUMPY_DTYPES = {name: np.dtype(name) for name in ALLOWED_DTYPES}  # np.dtype(name) per check costs ~1 us


def check_array(name: str, value: object, shape: tuple[int, ...], dtype: str) -> None:
    """Raise SpecError unless `value` is a numpy array of exactly `shape` and `dtype`, and finite (floats).

    ArraySpec.validate's check without building a spec: what a learner runs on every column of every batch."""
    if not isinstance(value, np.ndarray):
        raise SpecError(f"{name}: expected numpy array, got {type(value).__name__}")
    if value.shape != shape or value.dtype != _NUMPY_DTYPES[dtype]:
        raise SpecError(f"{name}: expected {dtype}{list(shape)}, got {value.dtype}{list(value.shape)}")
    if value.dtype.kind == "f" and not np.isfinite(value).all():
        raise SpecError(f"{name}: contains NaN or Inf")


class SpecError(ValueError):
    """An array or observation does not match its spec."""


@dataclass(frozen=True)
class ArraySpec:
    """A named array of fixed shape and dtype; `fields` optionally names each entry of a flat vector (what a
    policy's weights depend on beyond the shape: the same 4 floats mean something else in another order)."""

    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"
    fields: tuple[str, ...] = field(default=(), kw_only=True)

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))
        object.__setattr__(self, "fields", tuple(str(f) for f in self.fields))
        if self.dtype not in ALLOWED_DTYPES:
            raise SpecError(f"{self.name}: dtype {self.dtype!r} not in {ALLOWED_DTYPES}")
        if any(d <= 0 for d in self.shape):
            raise SpecError(f"{self.name}: shape {self.shape} has a non-positive dimension")
        if self.fields and (len(self.shape) != 1 or len(self.fields) != self.shape[0]):
            raise SpecError(f"{self.name}: {len(self.fields)} field names for shape {self.shape}")

    def validate(self, value: np.ndarray) -> None:
        """Raise SpecError unless `value` has exactly this shape and dtype and is finite."""
        check_array(self.name, value, self.shape, self.dtype)

    def zeros(self, batch: tuple[int, ...] = ()) -> np.ndarray:
        """An all-zero array of this spec, with optional leading batch dimensions."""
        return np.zeros(batch + self.shape, dtype=self.dtype)

    def to_dict(self) -> dict[str, Any]:
        data = {"type": type(self).__name__, "name": self.name, "shape": list(self.shape), "dtype": self.dtype}
        if self.fields:  # only when named, so the JSON of unnamed specs (and files holding it) is unchanged
            data["fields"] = list(self.fields)
        return data


@dataclass(frozen=True)
class BoundedSpec(ArraySpec):
    """A float array with elementwise inclusive bounds (physical units for robot actions)."""

    low: tuple[float, ...] = ()
    high: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        size = int(np.prod(self.shape))
        low = tuple(float(x) for x in np.broadcast_to(np.asarray(self.low, dtype=np.float64), (size,)))
        high = tuple(float(x) for x in np.broadcast_to(np.asarray(self.high, dtype=np.float64), (size,)))
        if not all(lo < hi for lo, hi in zip(low, high)):
            raise SpecError(f"{self.name}: every low must be below its high, got {low} / {high}")
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)

    @property
    def low_array(self) -> np.ndarray:
        return np.asarray(self.low, dtype=self.dtype).reshape(self.shape)

    @property
    def high_array(self) -> np.ndarray:
        return np.asarray(self.high, dtype=self.dtype).reshape(self.shape)

    def clip(self, value: np.ndarray) -> np.ndarray:
        """Clip into the bounds, returning an array of this spec's dtype."""
        return np.clip(np.asarray(value, dtype=self.dtype), self.low_array, self.high_array)

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "low": list(self.low), "high": list(self.high)}


@dataclass(frozen=True)
class ImageSpec(ArraySpec):
    """A uint8 image stored height x width x channels (grayscale has one channel)."""

    dtype: str = "uint8"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.dtype != "uint8" or len(self.shape) != 3:
            raise SpecError(f"{self.name}: images are uint8 HxWxC, got {self.dtype}{list(self.shape)}")


_SPEC_TYPES = {cls.__name__: cls for cls in (ArraySpec, BoundedSpec, ImageSpec)}


def spec_from_dict(data: Mapping[str, Any]) -> ArraySpec:
    """Rebuild an ArraySpec (or subclass) from `to_dict` output."""
    kind = data.get("type")
    if kind not in _SPEC_TYPES:
        raise SpecError(f"unknown spec type {kind!r}")
    kwargs = {k: v for k, v in data.items() if k != "type"}
    kwargs["shape"] = tuple(kwargs["shape"])
    for key in ("low", "high", "fields"):
        if key in kwargs:
            kwargs[key] = tuple(kwargs[key])
    return _SPEC_TYPES[kind](**kwargs)


@dataclass(frozen=True)
class RobotSpec:
    """Everything an algorithm and the wire need to know about a robot, before connecting to it."""

    name: str
    observation: Mapping[str, ArraySpec]
    action: BoundedSpec
    control_hz: float
    metadata: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.control_hz <= 0:
            raise SpecError(f"control_hz must be positive, got {self.control_hz}")
        if not self.observation:
            raise SpecError("a robot spec needs at least one observation")
        for key, spec in self.observation.items():
            if key != spec.name:
                raise SpecError(f"observation key {key!r} differs from its spec name {spec.name!r}")
        object.__setattr__(self, "observation", dict(sorted(self.observation.items())))

    @property
    def action_dim(self) -> int:
        return int(np.prod(self.action.shape))

    def validate_observation(self, observation: Mapping[str, np.ndarray]) -> None:
        """Raise SpecError unless `observation` has exactly the spec's keys, shapes and dtypes."""
        if set(observation) != set(self.observation):
            raise SpecError(f"observation keys {sorted(observation)} != spec keys {sorted(self.observation)}")
        for key, spec in self.observation.items():
            spec.validate(observation[key])

    def normalize_action(self, action: np.ndarray) -> np.ndarray:
        """Map a physical action into [-1, 1] (clipping anything outside the bounds)."""
        low, high = self.action.low_array, self.action.high_array
        clipped = np.clip(np.asarray(action, dtype=np.float32), low, high)
        return (2.0 * (clipped - low) / (high - low) - 1.0).astype(np.float32)

    def denormalize_action(self, normalized: np.ndarray) -> np.ndarray:
        """Map a [-1, 1] action into physical units (clipping anything outside [-1, 1])."""
        low, high = self.action.low_array, self.action.high_array
        unit = np.clip(np.asarray(normalized, dtype=np.float32), -1.0, 1.0)
        return (low + (unit + 1.0) * 0.5 * (high - low)).astype(self.action.dtype)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "observation": {k: v.to_dict() for k, v in self.observation.items()},
            "action": self.action.to_dict(),
            "control_hz": float(self.control_hz),
            "metadata": dict(sorted(self.metadata.items())),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "RobotSpec":
        action = spec_from_dict(data["action"])
        if not isinstance(action, BoundedSpec):
            raise SpecError("a robot's action spec must be bounded")
        observation = {k: spec_from_dict(v) for k, v in data["observation"].items()}
        return cls(data["name"], observation, action, float(data["control_hz"]), dict(data.get("metadata", {})))

    @classmethod
    def from_json(cls, text: str) -> "RobotSpec":
        return cls.from_dict(json.loads(text))

    @property
    def spec_hash(self) -> str:
        """A stable 16-hex-digit digest of what a policy's weights depend on: the observation specs (keys,
        shapes, dtypes, field names), the action spec (shape, dtype, bounds) and the control rate. Not the
        robot's name nor its metadata: a twin and its real robot observing and acting alike share a hash."""
        payload = {k: v for k, v in self.to_dict().items() if k not in ("name", "metadata")}
        canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def spec_differences(expected: RobotSpec, actual: RobotSpec) -> list[str]:
    """What `spec_hash` covers and differs between two specs, one phrase each (empty: the hashes agree).

    Per observation key: missing, extra, or its type, shape, dtype or field names; the action's shape,
    dtype and bounds; the control rate. `expected` is e.g. what a saved policy was trained for, `actual`
    the robot it is about to run on."""
    differences = []
    for key in sorted(set(expected.observation) | set(actual.observation)):
        want, have = expected.observation.get(key), actual.observation.get(key)
        if have is None:
            differences.append(f"observation {key!r} missing (expected {_describe(want)})")
        elif want is None:
            differences.append(f"observation {key!r} not expected (got {_describe(have)})")
        else:
            differences += _array_differences(f"observation {key!r}", want, have)
    differences += _array_differences("action", expected.action, actual.action)
    if float(expected.control_hz) != float(actual.control_hz):
        differences.append(f"control rate: expected {expected.control_hz:g} Hz, got {actual.control_hz:g} Hz")
    return differences


def _describe(spec: ArraySpec) -> str:
    return f"{spec.dtype}{list(spec.shape)}"


def _array_differences(what: str, expected: ArraySpec, actual: ArraySpec) -> list[str]:
    """Differences of two array specs' hashed parts, as "<what> <part>: expected <expected>, got <actual>"."""
    parts = [(part, getattr(expected, part, None), getattr(actual, part, None))
             for part in ("shape", "dtype", "fields", "low", "high")]
    if type(expected) is not type(actual):
        parts.insert(0, ("type", type(expected).__name__, type(actual).__name__))
    return [f"{what} {part}: expected {_show(want)}, got {_show(have)}"
            for part, want, have in parts if want != have]


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return "(" + ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value) + ")"
    return str(value)
