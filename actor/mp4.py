"""Videos as H.264 MP4 files (PyAV): RGB uint8 frames in, a file that appears whole or not at all.

Frames stream into a hidden temporary file beside the final one, which `finish` renames into place
once the encoder is flushed and the file synced: a process killed mid-episode leaves at most a
`.*.mp4.partial` file, never a half video under a final name. H.264 in yuv420p is what every player
decodes; its 2x2 chroma subsampling is why frame sizes must be even.
"""

from __future__ import annotations

import os
import tempfile
from fractions import Fraction
from pathlib import Path
from typing import Iterable

import av
import numpy as np

PARTIAL_SUFFIX = ".mp4.partial"
ENCODER_OPTIONS = {"preset": "veryfast", "crf": "23"}  # fast enough for a control loop's frame rate


class FrameError(ValueError):
    """A frame that cannot go into the video (wrong type, dtype, shape or size)."""


def check_frame(frame: object, size: tuple[int, int] | None = None) -> None:
    """Raise FrameError unless `frame` is uint8 RGB (H, W, 3) with even H and W (and (H, W) == `size` if given)."""
    if not isinstance(frame, np.ndarray):
        raise FrameError(f"a video frame must be a numpy array, got {type(frame).__name__}")
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise FrameError(f"a video frame must be uint8 RGB of shape (H, W, 3), got {frame.dtype} {frame.shape}")
    height, width = frame.shape[:2]
    if height % 2 or width % 2 or not height or not width:
        raise FrameError(f"H.264 (yuv420p) needs even, non-zero frame sizes, got {width}x{height}")
    if size is not None and (height, width) != size:
        raise FrameError(f"every frame of a video has one size: {size[1]}x{size[0]}, got {width}x{height}")


class Mp4Writer:
    """Streams frames into `directory`; `finish(path)` puts the video under its final name, `discard()` drops it.

    Used as a context manager, a video that was not finished (an exception, a bad frame) is discarded.
    """

    def __init__(self, directory: str | Path, fps: float, prefix: str = "video") -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(dir=self.directory, prefix=f".{prefix}-", suffix=PARTIAL_SUFFIX)
        os.close(handle)
        self.partial = Path(name)
        self.fps = Fraction(fps).limit_denominator(1001)  # 29.97 Hz as 30000/1001
        self.frames = 0
        try:
            self._container = av.open(str(self.partial), "w", format="mp4")
        except BaseException:
            self.partial.unlink(missing_ok=True)
            raise
        self._stream = None
        self._size: tuple[int, int] | None = None

    def add(self, frame: np.ndarray) -> None:
        """Encode one RGB uint8 (H, W, 3) frame; every frame has the first one's size."""
        check_frame(frame, self._size)
        if self._stream is None:
            self._open_stream(frame.shape[0], frame.shape[1])
        picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        self._container.mux(self._stream.encode(picture))
        self.frames += 1

    def finish(self, path: str | Path) -> Path:
        """Flush, sync and rename the video to `path` (in the same directory: a rename never copies)."""
        if self._stream is None:
            self.discard()
            raise FrameError("a video needs at least one frame")
        self._container.mux(self._stream.encode(None))  # flush the frames the encoder still holds
        self._container.close()
        with self.partial.open("rb") as handle:
            os.fsync(handle.fileno())
        path = Path(path)
        os.replace(self.partial, path)
        return path

    def discard(self) -> None:
        """Drop the video: close the encoder and delete the temporary file. Idempotent."""
        try:
            self._container.close()
        except (av.FFmpegError, ValueError):
            pass  # a stream never configured or already closed: nothing worth keeping anyway
        self.partial.unlink(missing_ok=True)

    def __enter__(self) -> "Mp4Writer":
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.partial.exists():
            self.discard()

    def _open_stream(self, height: int, width: int) -> None:
        self._stream = self._container.add_stream("libx264", rate=self.fps, options=ENCODER_OPTIONS)
        self._stream.width, self._stream.height, self._stream.pix_fmt = width, height, "yuv420p"
        self._size = (height, width)


def write_mp4(path: str | Path, frames: Iterable[np.ndarray], fps: float) -> Path:
    """Write `frames` (RGB uint8, all one even size) to `path` as H.264 MP4, atomically; returns `path`."""
    path = Path(path)
    with Mp4Writer(path.parent, fps, prefix=path.stem) as writer:
        for frame in frames:
            writer.add(frame)
        return writer.finish(path)
