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
