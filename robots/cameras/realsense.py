"""`RealSenseCamera`: the colour stream of an Intel RealSense (pyrealsense2), grayscale and resized to the spec.

pyrealsense2 (and apt libusb-1.0-0) are imported in connect(). A missing device is reported at once from
`rs.context().query_devices()`, never after pipeline.start()'s 15 s timeout. The colour sensor is driven
directly (sensor.open + sensor.start with a callback): librealsense's own thread delivers each frame, which
is converted and kept as the newest, so there is no pipeline queue to go stale behind our back. The same
code drives an `rs.software_device` in CI (pass it as `device`).

Exposure: `exposure_us` > 0 switches auto exposure off and sets it (and `gain` if > 0); 0 keeps auto.
"""

from __future__ import annotations


import numpy as np

from common.specs import ImageSpec
from robots.base import RobotError
from robots.cameras.newest import NewestFrame, NewestFrameCamera

COLOR_FORMATS = ("bgr8", "rgb8")


class RealSenseCamera(NewestFrameCamera):
    """Grayscale (height, width, 1) frames from a RealSense colour stream (see module docstring)."""

    def __init__(self, serial: str, height: int, width: int, capture_width: int = 640, capture_height: int = 480,
                 fps: int = 30, exposure_us: float = 0.0, gain: float = 0.0, open_timeout_s: float = 3.0,
                 device=None, name: str = "image") -> None:
        self.serial = str(serial or "")
        self.capture_size = (int(capture_width), int(capture_height))
        self.fps = int(fps)
        self.exposure_us, self.gain = float(exposure_us), float(gain)
        self.open_timeout_s = float(open_timeout_s)
        self._device = device  # an rs.device (e.g. an rs.software_device in tests); None: find by serial
        self._spec = ImageSpec(name, (int(height), int(width), 1))
        self._newest = NewestFrame(f"realsense {self.serial or '(first)'}")
        self._sensor = None

    def connect(self) -> None:
        if self._sensor is not None:
            return
        import pyrealsense2 as rs

        device = self._device if self._device is not None else self._find_device(rs)
        sensor, profile = self._color_sensor(rs, device)
        self._configure_exposure(rs, sensor)
        self._newest.clear()
        sensor.open(profile)
        sensor.start(self._on_frame)
        self._sensor = sensor
        if not self._newest.first.wait(self.open_timeout_s):
            self.disconnect()
            raise RobotError(f"realsense {self.serial or '(first)'}: no frame within {self.open_timeout_s:.1f} s")

    def disconnect(self) -> None:
        sensor, self._sensor = self._sensor, None
        if sensor is not None:
            for step in (sensor.stop, sensor.close):
                try:
                    step()
                except RuntimeError:
                    pass  # already stopped / closed
        self._newest.clear()

    # ---- internals ----

    def _find_device(self, rs):
        devices = list(rs.context().query_devices())
        if not devices:
            raise RobotError("realsense: no device connected (check the USB cable; `rs-enumerate-devices`)")
        if not self.serial:
            return devices[0]
        for device in devices:
            if device.get_info(rs.camera_info.serial_number) == self.serial:
                return device
        found = [device.get_info(rs.camera_info.serial_number) for device in devices]
        raise RobotError(f"realsense: no device with serial {self.serial} (found {found})")

    def _color_sensor(self, rs, device):
        width, height = self.capture_size
        candidates = []
        for sensor in device.query_sensors():
            for profile in sensor.get_stream_profiles():
                if (profile.stream_type() != rs.stream.color
                        or str(profile.format()).split(".")[-1] not in COLOR_FORMATS):
                    continue
                video = profile.as_video_stream_profile()
                exact = (video.width(), video.height(), profile.fps()) == (width, height, self.fps)
                candidates.append(
                    (not exact, abs(video.width() - width) + abs(profile.fps() - self.fps), sensor, profile)
                )
        if not candidates:
            raise RobotError("realsense: the device has no bgr8/rgb8 colour stream")
        candidates.sort(key=lambda item: item[:2])
        return candidates[0][2], candidates[0][3]

    def _configure_exposure(self, rs, sensor) -> None:
        if self.exposure_us <= 0 or not sensor.supports(rs.option.enable_auto_exposure):
            return
        sensor.set_option(rs.option.enable_auto_exposure, 0)
        sensor.set_option(rs.option.exposure, self.exposure_us)
        if self.gain > 0 and sensor.supports(rs.option.gain):
            sensor.set_option(rs.option.gain, self.gain)

    def _on_frame(self, frame) -> None:
        # librealsense's thread: convert at once, keep only the newest; never raise into the SDK.
        try:
            import cv2

            pixels = np.asanyarray(frame.get_data())
            rgb = str(frame.get_profile().format()).endswith("rgb8")
            gray = cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY if rgb else cv2.COLOR_BGR2GRAY)
            height, width = self._spec.shape[:2]
            if gray.shape != (height, width):
                gray = cv2.resize(gray, (width, height), interpolation=cv2.INTER_AREA)
            image = np.ascontiguousarray(gray, dtype=np.uint8)[:, :, None]
        except Exception:  # noqa: BLE001 - a bad frame is dropped; staleness then shows in read_latest
            return
        self._newest.put(image)
