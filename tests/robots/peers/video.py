"""A tiny video file written at test time with cv2.VideoWriter: the CI stand-in for a webcam."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_test_video(path: Path, frames: int = 10, size: tuple[int, int] = (80, 60), fps: float = 30.0) -> Path:
    """MJPG .avi of `frames` BGR frames of `size` (width, height); frame i is a uniform grey of 20 * i + 10."""
    import cv2

    width, height = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    if not writer.isOpened():
        raise RuntimeError(f"cv2.VideoWriter could not open {path}")
    for index in range(frames):
        frame = np.full((height, width, 3), (20 * index + 10) % 256, dtype=np.uint8)
        frame[: height // 4, : width // 4] = (255, 0, 0)  # a blue corner, so the grey conversion shows
        writer.write(frame)
    writer.release()
    return Path(path)
