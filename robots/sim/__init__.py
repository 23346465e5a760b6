"""MuJoCo twins of the real robots, their tasks and scripted experts.

Rendering is offscreen and headless: EGL unless the user chose another backend. MuJoCo reads MUJOCO_GL
when it is first imported, so it is set here, before any twin imports mujoco.
"""

import os

os.environ.setdefault("MUJOCO_GL", "egl")
