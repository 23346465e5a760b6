"""OpenCVCamera on a video file written at test time: capture thread, grayscale + resize, stale frames."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from robots.base import RobotError
from robots.cameras import make_camera
from robots.cameras.opencv import OpenCVCamera
from tests.robots.peers.video import write_test_video

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def video(tmp_path):
    return write_test_video(tmp_path / "cam.avi", frames=12, size=(80, 60))


def test_frames_are_grayscale_resized_to_the_spec(video):
    camera = make_camera(str(video), 64, 48)
    assert isinstance(camera, OpenCVCamera) and camera.spec.shape == (64, 48, 1)
    camera.connect()
    try:
        frame = camera.read_latest(max_age_ms=1000)
        camera.spec.validate(frame)
        # The blue corner is darker than the uniform grey around it: colour really went through BGR->gray.
        assert frame[2, 2, 0] < 60 and abs(int(frame[-5, -5, 0]) - int(frame[-6, -6, 0])) <= 2
    finally:
        camera.disconnect()


def test_the_capture_thread_keeps_the_newest_frame_and_loops_a_file(video):
    camera = OpenCVCamera(str(video), 32, 32, fps=200.0)
    camera.connect()
    try:
        # Poll the newest frame (bounded): its grey level changes as the thread advances through the file.
        seen = set()
        for _ in range(400):
            seen.add(int(camera.read_latest(max_age_ms=1000)[-1, -1, 0]))
            if len(seen) >= 4 and camera.frames > 12:
                break
            camera.ended.wait(0.005)
        assert len(seen) >= 4 and camera.frames > 12  # more frames than the file holds: it looped
    finally:
        camera.disconnect()


def test_a_frozen_camera_raises_on_stale_frames(video):
    camera = OpenCVCamera(str(video), 32, 32, fps=500.0, loop=False)
    camera.connect()
    try:
        assert camera.ended.wait(5.0), "the file never ended"
        age_ms = camera.frame_age_s() * 1e3
        camera.read_latest(max_age_ms=age_ms + 10_000)  # old enough to be fine with a lax limit
        with pytest.raises(RobotError, match="ms old"):
            camera.read_latest(max_age_ms=age_ms / 2)
    finally:
        camera.disconnect()


def test_a_missing_source_fails_connect_at_once(tmp_path):
    camera = OpenCVCamera(str(tmp_path / "missing.avi"), 32, 32)
    with pytest.raises(RobotError, match="cannot open"):
        camera.connect()
    with pytest.raises(RobotError):
        camera.read_latest(max_age_ms=1000)
    camera.disconnect()
    camera.disconnect()


# ---- RealSense through pyrealsense2, with an rs.software_device as the device (optional extra) ----

def _software_realsense(width=96, height=72, fmt="bgr8"):
    rs = pytest.importorskip("pyrealsense2")
    device = rs.software_device()
    sensor = device.add_sensor("Color")
    intrinsics = rs.intrinsics()
    intrinsics.width, intrinsics.height, intrinsics.fx, intrinsics.fy = width, height, 50.0, 50.0
    intrinsics.ppx, intrinsics.ppy = width / 2, height / 2
    intrinsics.model, intrinsics.coeffs = rs.distortion.none, [0] * 5
    stream = rs.video_stream()
    stream.type, stream.index, stream.uid, stream.width, stream.height = rs.stream.color, 0, 0, width, height
    stream.fps, stream.bpp, stream.fmt, stream.intrinsics = 30, 3, getattr(rs.format, fmt), intrinsics
    profile = sensor.add_video_stream(stream)

    def push(bgr: np.ndarray, number: int) -> None:
        frame = rs.software_video_frame()
        frame.pixels, frame.bpp, frame.stride = np.ascontiguousarray(bgr), 3, width * 3
        frame.timestamp, frame.domain, frame.frame_number = number * 33.0, rs.timestamp_domain.system_time, number
        frame.profile = profile.as_video_stream_profile()
        sensor.on_video_frame(frame)

    return device, push


def test_realsense_frames_from_a_software_device():
    device, push = _software_realsense()
    from robots.cameras.realsense import RealSenseCamera

    camera = RealSenseCamera("", 48, 64, capture_width=96, capture_height=72, device=device, open_timeout_s=0.3)
    with pytest.raises(RobotError, match="no frame within"):  # a device that never delivers fails in bounded time
        camera.connect()
    camera = RealSenseCamera("", 48, 64, capture_width=96, capture_height=72, device=device, open_timeout_s=3.0)
    image = np.zeros((72, 96, 3), dtype=np.uint8)
    image[:, :, 0] = 200  # pure blue in BGR: gray = 0.114 * 200 ~ 23
    pusher_done = threading.Event()

    def pusher():  # the device's side: frames keep coming until the camera has one
        for number in range(1, 200):
            push(image, number)
            if camera.frames > 0 or pusher_done.wait(0.01):
                return

    thread = threading.Thread(target=pusher)
    thread.start()
    try:
        camera.connect()
        frame = camera.read_latest(max_age_ms=1000)
        camera.spec.validate(frame)
        assert frame.shape == (48, 64, 1) and abs(int(frame.mean()) - 23) <= 2
        with pytest.raises(RobotError, match="ms old"):
            camera.read_latest(max_age_ms=camera.frame_age_s() * 1e3 / 2)
    finally:
        pusher_done.set()
        thread.join()
        camera.disconnect()
        camera.disconnect()


def test_realsense_without_a_device_fails_at_once():
    rs = pytest.importorskip("pyrealsense2")
    if len(rs.context().query_devices()) > 0:
        pytest.skip("a real RealSense is plugged in")
    from robots.cameras.realsense import RealSenseCamera

    # At once: from the device query, not after pipeline.start()'s 15 s timeout (whose message differs).
    with pytest.raises(RobotError, match="no device connected"):
        make_camera("realsense", 64, 64).connect()
    assert isinstance(make_camera("realsense:123", 64, 64), RealSenseCamera)
