"""Fast headless rendering for the twins (EGL by default, see robots/sim/__init__.py): the grayscale
camera observations, and the RGB scene views that episode videos are made of.

On CPU (llvmpipe) the shadow map, reflections, skybox and multisampling cost ~10x the geometry, so they
are all switched off; training cameras only need flat, high-contrast shapes.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

os.environ.setdefault("MUJOCO_GL", "egl")

import mujoco  # noqa: E402
import numpy as np  # noqa: E402

_SLOW_FLAGS = (
    mujoco.mjtRndFlag.mjRND_SHADOW,
    mujoco.mjtRndFlag.mjRND_REFLECTION,
    mujoco.mjtRndFlag.mjRND_SKYBOX,
    mujoco.mjtRndFlag.mjRND_HAZE,
    mujoco.mjtRndFlag.mjRND_FOG,
)
# ITU-R BT.601 luma weights, the usual RGB -> gray conversion.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


class OffscreenCamera:
    """Renders one view of a model to RGB uint8 (H, W, 3); `camera` is a model camera's name or a free
    `mujoco.MjvCamera`.

    An OpenGL context can be current in only one thread at a time, and the robot may be built in one
    thread and stepped in another (or by several, one after the other). So every GL call runs on one
    private render thread, which creates the context on first use and releases it on close().
    """

    def __init__(self, model: mujoco.MjModel, camera: str | mujoco.MjvCamera, height: int, width: int) -> None:
        self._model = model
        self._camera = camera
        self._height, self._width = int(height), int(width)
        self._renderer: mujoco.Renderer | None = None
        self._render_thread: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def render_rgb(self, data: mujoco.MjData) -> np.ndarray:
        """The current view as RGB uint8 (H, W, 3). `data` must not change meanwhile."""
        with self._lock:
            if self._render_thread is None:
                self._render_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mujoco-render")
            return self._render_thread.submit(self._render_rgb, data).result()

    def close(self) -> None:
        """Free the GL context and stop the render thread. Idempotent; rendering after close reopens."""
        with self._lock:
            if self._render_thread is None:
                return
            self._render_thread.submit(self._close_renderer).result()
            self._render_thread.shutdown(wait=True)
            self._render_thread = None

    def _render_rgb(self, data: mujoco.MjData) -> np.ndarray:
        if self._renderer is None:
            self._renderer = mujoco.Renderer(self._model, self._height, self._width)
            for flag in _SLOW_FLAGS:
                self._renderer.scene.flags[flag] = False
        self._renderer.update_scene(data, camera=self._camera)
        return self._renderer.render()

    def _close_renderer(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None


class GrayscaleCamera(OffscreenCamera):
    """Renders one model camera to uint8 (H, W, 1): the twins' image observations."""

    def __init__(self, model: mujoco.MjModel, camera_name: str, height: int, width: int) -> None:
        model.vis.quality.offsamples = 0
        super().__init__(model, camera_name, height, width)

    def render(self, data: mujoco.MjData) -> np.ndarray:
        """The camera's current view as grayscale uint8 (H, W, 1). `data` must not change meanwhile."""
        gray = self.render_rgb(data).astype(np.float32) @ _LUMA
        return np.clip(gray + 0.5, 0, 255).astype(np.uint8)[:, :, None]


@dataclass(frozen=True)
class ViewPoint:
    """Where the free camera of a twin's scene view (episode videos) looks from."""

    body: str = ""  # the camera follows this body ("": it looks at the model's centre and stays put)
    distance: float = 0.0  # metres from the point looked at (0: MuJoCo's default, the whole model in view)
    azimuth: float = 90.0  # degrees about the vertical axis (90: looking along +y, x runs left to right)
    elevation: float = -45.0  # degrees, negative looks down


def scene_camera(model: mujoco.MjModel, view: ViewPoint, height: int, width: int) -> OffscreenCamera:
    """An RGB camera on the whole scene from `view`, for videos a person watches (not an observation)."""
    # The models' offscreen framebuffers are sized for the small observation cameras; a renderer
    # larger than the framebuffer is refused.
    model.vis.global_.offwidth = max(model.vis.global_.offwidth, int(width))
    model.vis.global_.offheight = max(model.vis.global_.offheight, int(height))
    camera = mujoco.MjvCamera()
    mujoco.mjv_defaultFreeCamera(model, camera)
    if view.body:
        camera.type = mujoco.mjtCamera.mjCAMERA_TRACKING
        camera.trackbodyid = model.body(view.body).id
    if view.distance:
        camera.distance = view.distance
    camera.azimuth, camera.elevation = view.azimuth, view.elevation
    return OffscreenCamera(model, camera, height, width)
