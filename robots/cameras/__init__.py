"""Real cameras behind the `Camera` interface (robots/base.py): a capture thread each, newest frame only.

`make_camera(source, height, width)` picks the implementation from a source string, so a driver can take
its camera as a plain `-o camera=...` option: "realsense" or "realsense:SERIAL" (pyrealsense2), a device
index such as "0" or a /dev/video path, or a video file (OpenCV; files are what CI uses).
"""

from __future__ import annotations

from robots.base import Camera


def make_camera(source: str, height: int, width: int, **options) -> Camera:
    """A camera for `source` delivering grayscale uint8 (height, width, 1) frames; not yet connected."""
    source = str(source)
    if source == "realsense" or source.startswith("realsense:"):
        from robots.cameras.realsense import RealSenseCamera

        return RealSenseCamera(source.partition(":")[2], height, width, **options)
    from robots.cameras.opencv import OpenCVCamera

    return OpenCVCamera(source, height, width, **options)
