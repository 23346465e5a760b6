"""What every MuJoCo twin shares: the lifecycle-guarded Robot methods around a twin's scene hooks."""

from __future__ import annotations

from typing import Any

import mujoco
import numpy as np

from common.specs import RobotSpec
from robots.base import Observation, Robot
from robots.sim.rendering import GrayscaleCamera

VIEW_SIZE = 256  # pixels, square: the scenes' offscreen buffers are 256 x 256


class MujocoTwin(Robot):
    """A simulated robot whose physics advances only inside `send_action`.

    A subclass sets `_spec`, `safety` (ActionSafety), `_lifecycle`, `_camera` (or None) and
    `_command` in its constructor and provides the scene hooks: `_default_layout`, `_apply_layout`,
    `_observe`, `_step_one_control_period` (tracks `_command` for one control period) and `_halt`.
    It also sets `_model` and `_data` (MuJoCo), which `render_view` reads.
    """

    _view: GrayscaleCamera | None = None  # the colour camera of render_view, opened on first use

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

    def render_view(self) -> np.ndarray:
        """A colour frame (uint8 VIEW_SIZE x VIEW_SIZE x 3) from the robot's camera, for people: gymnasium's
        render() and videos. Never an observation; works in state mode too (the model always has the camera)."""
        with self._lifecycle.lock:
            if self._view is None:
                camera = mujoco.mj_id2name(self._model, mujoco.mjtObj.mjOBJ_CAMERA, 0)
                self._view = GrayscaleCamera(self._model, camera, VIEW_SIZE, VIEW_SIZE)
            return self._view.render_rgb(self._data)

    def disconnect(self) -> None:
        with self._lifecycle.lock:
            self.stop()
            for camera in (self._camera, self._view):
                if camera is not None:
                    camera.close()  # frees the GL context and its render thread
            self._lifecycle.disconnect()
