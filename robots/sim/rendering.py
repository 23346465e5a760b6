"""Fast headless grayscale camera rendering for the twins (EGL by default, see robots/sim/__init__.py).

On CPU (llvmpipe) the shadow map, reflections, skybox and multisampling cost ~10x the geometry, so they
are all switched off; training cameras only need flat, high-contrast shapes.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

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


class GrayscaleCamera:
    """Renders one model camera to uint8 (H, W, 1).

    An OpenGL context can be current in only one thread at a time, and the robot may be built in one
    thread and stepped in another (or by several, one after the other). So every GL call runs on one
    private render thread, which creates the context on first use and releases it on close().
    """

    def __init__(self, model: mujoco.MjModel, camera_name: str, height: int, width: int) -> None:
        model.vis.quality.offsamples = 0
        self._model = model
        self._camera_name = camera_name
        self._height, self._width = int(height), int(width)
        self._renderer: mujoco.Renderer | None = None
        self._render_thread: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def render(self, data: mujoco.MjData) -> np.ndarray:
        """The camera's current view as grayscale uint8 (H, W, 1). `data` must not change meanwhile."""
        gray = self.render_rgb(data).astype(np.float32) @ _LUMA
        return np.clip(gray + 0.5, 0, 255).astype(np.uint8)[:, :, None]

    def render_rgb(self, data: mujoco.MjData) -> np.ndarray:
        """The colour frame the grayscale image is made from, uint8 (H, W, 3): for people (videos,
        gymnasium's render), never for the policy. `data` must not change meanwhile."""
        with self._lock:
            if self._render_thread is None:
                self._render_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mujoco-render")
            return self._render_thread.submit(self._render_rgb, data).result()

    def close(self) -> None:
        """Free the GL context and stop the render thread. Idempotent; render() after close reopens."""
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
        self._renderer.update_scene(data, camera=self._camera_name)
        return self._renderer.render()

    def _close_renderer(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
