"""The last gate between a policy and the motors: every robot routes `send_action` through `ActionSafety`.

This minimal version does two things, in this order:
  1. a NaN or Inf anywhere in the action means the policy is broken, so the robot gets the *stop action*
     (zero motion, clipped into the bounds) instead of a guess at what was meant;
  2. anything else is clipped elementwise into the spec's bounds (physical units).
Counters are shared with the metrics thread, so they are updated and read under a lock.
"""

from __future__ import annotations

import threading

import numpy as np

from common.specs import BoundedSpec, SpecError


class ActionSafety:
    """Clips actions into a BoundedSpec and replaces non-finite actions by the stop action.

    Counters: `nan_stops` (actions replaced by the stop action), `clipped` (finite actions that had at
    least one element outside the bounds).
    """

    def __init__(self, spec: BoundedSpec) -> None:
        self.spec = spec
        # "No motion" is zero velocity; for specs whose bounds exclude zero, the nearest allowed value.
        self._low = spec.low_array.astype(np.float64)
        self._high = spec.high_array.astype(np.float64)
        self._stop_action = spec.clip(np.zeros(spec.shape))
        self._lock = threading.Lock()
        self._nan_stops = 0
        self._clipped = 0

    @property
    def stop_action(self) -> np.ndarray:
        """The action sent when motion must stop (a fresh copy, so callers cannot alter it)."""
        return self._stop_action.copy()

    def apply(self, action: np.ndarray) -> tuple[np.ndarray, bool]:
        """Return (safe_action, stopped). `stopped` is True when the action was replaced by the stop action.

        Raises SpecError if the action does not have the spec's shape: a shape bug is a programming error,
        not something to clip away.
        """
        raw = np.asarray(action, dtype=np.float64)
        if raw.shape != self.spec.shape:
            raise SpecError(f"{self.spec.name}: action shape {raw.shape} != spec shape {self.spec.shape}")
        if not np.all(np.isfinite(raw)):
            with self._lock:
                self._nan_stops += 1
            return self.stop_action, True
        # Clip in float64 before casting, so a huge finite request cannot overflow into Inf.
        safe = np.clip(raw, self._low, self._high).astype(self.spec.dtype)
        if np.any(raw < self._low) or np.any(raw > self._high):
            with self._lock:
                self._clipped += 1
        return safe, False

    @property
    def nan_stops(self) -> int:
        """How many actions were replaced by the stop action because they held NaN or Inf."""
        with self._lock:
            return self._nan_stops

    @property
    def clipped(self) -> int:
        """How many finite actions had at least one element outside the bounds."""
        with self._lock:
            return self._clipped


class StepChangeLimit:
    """Limits how much each action element may change from one step to the next (after ActionSafety).

    `max_change` is per element, in the action's units. A stop action (all zeros) always passes unchanged:
    slowing down to a stop must never be rate-limited. Counter: `limited` (actions that were changed).
    """

    def __init__(self, max_change) -> None:
        self.max_change = np.asarray(max_change, dtype=np.float64)
        if np.any(~np.isfinite(self.max_change)) or np.any(self.max_change <= 0):
            raise ValueError(f"max_change must be positive and finite, got {max_change}")
        self._lock = threading.Lock()
        self._previous: np.ndarray | None = None
        self._limited = 0

    def apply(self, action: np.ndarray) -> np.ndarray:
        """Return `action` moved at most `max_change` away from the previous returned action."""
        raw = np.asarray(action, dtype=np.float64)
        with self._lock:
            if self._previous is None or not np.any(raw):
                limited = raw
            else:
                limited = np.clip(raw, self._previous - self.max_change, self._previous + self.max_change)
                if not np.array_equal(limited, raw):
                    self._limited += 1
            self._previous = limited
        return limited.astype(np.asarray(action).dtype)

    def reset(self) -> None:
        """Forget the previous action (after a stop or a new episode)."""
        with self._lock:
            self._previous = None

    @property
    def limited(self) -> int:
        with self._lock:
            return self._limited


class WorkspaceBox:
    """An axis-aligned box for a position (e.g. a tool tip); velocity components leading out of it are zeroed.

    `hold(position, velocity)` returns the velocity with every component that would carry the position
    further out of the box set to zero; components leading back in are kept. Counter: `held`.
    """

    def __init__(self, low, high) -> None:
        self.low = np.asarray(low, dtype=np.float64)
        self.high = np.asarray(high, dtype=np.float64)
        if self.low.shape != self.high.shape or not np.all(self.low < self.high):
            raise ValueError(f"empty or mismatched workspace box {low} / {high}")
        self._lock = threading.Lock()
        self._held = 0

    def contains(self, position) -> bool:
        position = np.asarray(position, dtype=np.float64)
        return bool(np.all(position >= self.low) and np.all(position <= self.high))

    def hold(self, position, velocity) -> np.ndarray:
        position = np.asarray(position, dtype=np.float64)
        velocity = np.array(velocity, dtype=np.float64)
        outward = ((position <= self.low) & (velocity < 0.0)) | ((position >= self.high) & (velocity > 0.0))
        if np.any(outward):
            velocity[outward] = 0.0
            with self._lock:
                self._held += 1
        return velocity

    @property
    def held(self) -> int:
        with self._lock:
            return self._held
