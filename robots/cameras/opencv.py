"""`OpenCVCamera`: a webcam (device index or /dev/video path) or a video file, via cv2.VideoCapture.

A capture thread reads frames as fast as the source delivers them (a file is paced to `fps`, so it
behaves like a live camera; it loops at the end), converts each to grayscale and resizes it to the spec,
and keeps only the newest with its capture time. `read_latest(max_age_ms)` never waits for the device:
it returns the newest frame, or raises RobotError if that frame is older than max_age_ms (a frozen or
unplugged camera must not feed the policy old images). cv2 is imported in connect().
"""

from __future__ import annotations

import logging
import threading
import time

import numpy as np

from common.specs import ImageSpec
from robots.base import RobotError
from robots.cameras.newest import NewestFrame, NewestFrameCamera

log = logging.getLogger(__name__)


class OpenCVCamera(NewestFrameCamera):
    """A grayscale (height, width, 1) camera on cv2.VideoCapture with a capture thread."""

    def __init__(self, source: str, height: int, width: int, fps: float = 30.0, open_timeout_s: float = 3.0,
                 loop: bool = True, name: str = "image") -> None:
        if fps <= 0 or open_timeout_s <= 0:
            raise ValueError("fps and open_timeout_s must be positive")
        self.source = str(source)
        self.fps = float(fps)
        self.open_timeout_s = float(open_timeout_s)
        self.loop = loop
        self._spec = ImageSpec(name, (int(height), int(width), 1))
        self._newest = NewestFrame(f"camera {self.source!r}")
        self._errors = 0
        self._closing = threading.Event()
        self.ended = threading.Event()  # set when a non-looping file has no more frames
        self._thread: threading.Thread | None = None
        self._capture = None

    def connect(self) -> None:
        if self._thread is not None:
            return
        import cv2

        target = int(self.source) if self.source.isdigit() else self.source
        capture = cv2.VideoCapture(target)
        if not capture.isOpened():
            raise RobotError(f"camera {self.source!r}: cannot open (no such device or file)")
        self._is_file = not isinstance(target, int) and not self.source.startswith("/dev/")
        self._capture = capture
        self._closing.clear()
        self._newest.clear()
        self.ended.clear()
        self._thread = threading.Thread(target=self._capture_loop, daemon=True, name=f"camera-{self.source}")
        self._thread.start()
        if not self._newest.first.wait(self.open_timeout_s):
            self.disconnect()
            raise RobotError(f"camera {self.source!r}: no frame within {self.open_timeout_s:.1f} s")

    def disconnect(self) -> None:
        self._closing.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=2.0)
        capture, self._capture = self._capture, None
        if capture is not None:
            capture.release()
        self._newest.clear()

    def _capture_loop(self) -> None:
        import cv2

        capture, period = self._capture, 1.0 / self.fps
        next_time = time.monotonic()
        while not self._closing.is_set():
            ok, bgr = capture.read()
            if not ok:
                if self._is_file and self.loop and self._newest.count > 0:
                    capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
                    continue
                if self._is_file and self._newest.count > 0:
                    self.ended.set()  # the newest frame now only ages, as with a frozen camera
                    break
                self._errors += 1
                if self._closing.wait(0.05):  # a live device hiccup: retry, without spinning
                    break
                continue
            self._newest.put(self._convert(cv2, bgr))
            if self._is_file:  # pace a file like a camera; a device paces itself
                next_time += period
                self._closing.wait(max(0.0, next_time - time.monotonic()))

    def _convert(self, cv2, bgr: np.ndarray) -> np.ndarray:
        gray = bgr if bgr.ndim == 2 else cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
        height, width = self._spec.shape[:2]
        if gray.shape != (height, width):
            gray = cv2.resize(gray, (width, height), interpolation=cv2.INTER_AREA)
        return np.ascontiguousarray(gray, dtype=np.uint8)[:, :, None]
