"""What every MuJoCo twin shares: the lifecycle-guarded Robot methods around a twin's scene hooks."""

from __future__ import annotations

from typing import Any

import numpy as np

from common.specs import RobotSpec
from robots.base import Observation, Robot
from robots.sim.rendering import OffscreenCamera, ViewPoint, scene_camera


class MujocoTwin(Robot):
    """A simulated robot whose physics advances only inside `send_action`.

    A subclass sets `_spec`, `safety` (ActionSafety), `_lifecycle`, `_camera` (or None) and
    `_command` in its constructor and provides the scene hooks: `_default_layout`, `_apply_layout`,
    `_observe`, `_step_one_control_period` (tracks `_command` for one control period) and `_halt`.
    `VIEW` says where the scene view of episode videos (`render_view`) looks from.
    """

    VIEW = ViewPoint()
    _views: dict[tuple[int, int], OffscreenCamera] | None = None  # (width, height) -> camera, made on first use

    @property
    def spec(self) -> RobotSpec:
        return self._spec

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

    def get_observation(self) -> Observation:
        with self._lifecycle.lock:
            self._lifecycle.require_connected("get_observation")
            return self._observe()

    def send_action(self, action: np.ndarray) -> np.ndarray:
        with self._lifecycle.lock:
            self._lifecycle.require_enabled("send_action")
            executed, _ = self.safety.apply(action)
            self._command = executed.astype(np.float64)
            self._step_one_control_period()
            return executed

    def stop(self) -> None:
        # Simulated time only advances inside send_action, so a stop must be immediate (`_halt`).
        with self._lifecycle.lock:
            self._halt()

    def render_view(self, width: int = 320, height: int = 240) -> np.ndarray:
        """The whole scene as RGB uint8 (height, width, 3), from `VIEW`: what an episode video shows, not
        what the policy sees. Costs a render per call, so only an evaluator's chosen episodes call it."""
        with self._lifecycle.lock:  # the physics must not step mid-render
            if self._views is None:
                self._views = {}
            if (width, height) not in self._views:
                self._views[width, height] = scene_camera(self._model, self.VIEW, height, width)
            return self._views[width, height].render_rgb(self._data)

    def disconnect(self) -> None:
        with self._lifecycle.lock:
            self.stop()
            for camera in [self._camera, *(self._views or {}).values()]:
                if camera is not None:
                    camera.close()
            self._lifecycle.disconnect()
