"""`NewestFrame`: the one frame a camera keeps, written by its capture thread and read by the control loop;
`NewestFrameCamera`: the Camera methods every real camera answers from it.

Only the newest frame is kept, with the time it arrived. Reading never waits for the device: it returns that
frame or raises RobotError if it is older than the reader allows (a frozen or unplugged camera must not feed
the policy old images), or if there is none yet.
"""

from __future__ import annotations

import threading
import time

import numpy as np

from common.specs import ImageSpec
from robots.base import Camera, RobotError


class NewestFrame:
    """The newest frame of the camera called `name` (in error messages) and when it arrived (monotonic)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.first = threading.Event()  # set by the first put() after clear()
        self._lock = threading.Lock()
        self._frame: np.ndarray | None = None
        self._time = 0.0
        self._count = 0

    def put(self, frame: np.ndarray) -> None:
        with self._lock:
            self._frame, self._time = frame, time.monotonic()
            self._count += 1
        self.first.set()

    def read(self, max_age_ms: float) -> np.ndarray:
        """The newest frame; RobotError if there is none or it is older than `max_age_ms`."""
        with self._lock:
            frame, stamp = self._frame, self._time
        if frame is None:
            raise RobotError(f"{self.name}: no frame (not connected?)")
        age_ms = (time.monotonic() - stamp) * 1e3
        if age_ms > max_age_ms:
            raise RobotError(f"{self.name}: newest frame is {age_ms:.0f} ms old (limit {max_age_ms:.0f} ms)")
        return frame

    def age_s(self) -> float:
        """Age of the newest frame in seconds (inf before the first); for the frame-age metric."""
        with self._lock:
            return time.monotonic() - self._time if self._frame is not None else float("inf")

    @property
    def count(self) -> int:
        """Frames put since the camera was made."""
        with self._lock:
            return self._count

    def clear(self) -> None:
        """Forget the frame (the camera disconnected) and wait for a new first one."""
        with self._lock:
            self._frame = None
        self.first.clear()


class NewestFrameCamera(Camera):
    """A Camera whose frames arrive on another thread into `self._newest`; a subclass sets `_spec` and
    `_newest` and provides connect() and disconnect()."""

    _spec: ImageSpec
    _newest: NewestFrame

    @property
    def spec(self) -> ImageSpec:
        return self._spec

    @property
    def frames(self) -> int:
        """Frames captured since the camera was made."""
        return self._newest.count

    def read_latest(self, max_age_ms: float) -> np.ndarray:
        return self._newest.read(max_age_ms)

    def frame_age_s(self) -> float:
        """Age of the newest frame in seconds (inf before the first); for the frame-age metric."""
        return self._newest.age_s()
