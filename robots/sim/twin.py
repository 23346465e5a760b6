"""What every MuJoCo twin shares: the lifecycle-guarded Robot methods around a twin's scene hooks."""

from __future__ import annotations

from typing import Any

import numpy as np

from robots.base import Observation
from robots.driver_kit import GuardedRobot


class MujocoTwin(GuardedRobot):
    """A simulated robot whose physics advances only inside `send_action`.

    A subclass sets `_spec`, `safety` (ActionSafety), `_lifecycle`, `_camera` (or None) and
    `_command` in its constructor and provides the scene hooks: `_default_layout`, `_apply_layout`,
    `_observe`, `_step_one_control_period` (tracks `_command` for one control period) and `_halt`.
    """

    def connect(self) -> None:
        self._lifecycle.connect()

    def enable(self) -> None:
        self._lifecycle.enable()

    def reset(self, layout: Any = None) -> Observation:
        """Start a new episode from `layout` (default: the twin's nominal layout), robot at rest."""
        with self._lifecycle.lock:
            self._lifecycle.require_connected("reset")
            self._apply_layout(layout or self._default_layout())
            return self._observe()

    def _execute(self, action: np.ndarray) -> np.ndarray:
        self._command = action.astype(np.float64)
        self._step_one_control_period()
        return action

    def stop(self) -> None:
        # Simulated time only advances inside send_action, so a stop must be immediate (`_halt`).
        with self._lifecycle.lock:
            self._halt()

    def disconnect(self) -> None:
        with self._lifecycle.lock:
            self.stop()
            if self._camera is not None:
                self._camera.close()
            self._lifecycle.disconnect()
