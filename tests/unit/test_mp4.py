"""The MP4 writer: what it writes decodes back frame for frame, bad frames are refused clearly, and a video
appears under its final name whole or not at all (even when the writing process is killed)."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import av
import numpy as np
import pytest

from actor.mp4 import PARTIAL_SUFFIX, FrameError, Mp4Writer, write_mp4

pytestmark = pytest.mark.timeout(60)


def frames(count: int, height: int = 48, width: int = 64) -> list[np.ndarray]:
    """A bright square moving across a dark background, one step per frame."""
    out = []
    for index in range(count):
        frame = np.full((height, width, 3), 30, dtype=np.uint8)
        frame[8:24, 4 * index:4 * index + 16] = (240, 200, 40)
        out.append(frame)
    return out


def decode(path) -> tuple[list[np.ndarray], av.video.stream.VideoStream]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        decoded = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
        return decoded, stream


def test_a_written_video_decodes_back_to_the_same_frames(tmp_path):
    written = frames(9)
    path = write_mp4(tmp_path / "episode.mp4", written, fps=10)
    decoded, stream = decode(path)
    assert len(decoded) == 9
    assert stream.codec_context.name == "h264" and stream.codec_context.pix_fmt == "yuv420p"
    assert stream.average_rate == 10 and (stream.codec_context.width, stream.codec_context.height) == (64, 48)
    for original, back in zip(written, decoded):
        assert np.abs(original.astype(int) - back.astype(int)).mean() < 6, "lossy, but the same picture"
    assert [p.name for p in tmp_path.iterdir()] == ["episode.mp4"], "no temporary file is left behind"


@pytest.mark.parametrize("frame, message", [
    (np.zeros((48, 64, 3), np.float32), "uint8 RGB"),
    (np.zeros((48, 64, 1), np.uint8), "uint8 RGB"),
    (np.zeros((48, 64), np.uint8), "uint8 RGB"),
    (np.zeros((48, 63, 3), np.uint8), "even"),
    (np.zeros((47, 64, 3), np.uint8), "even"),
    (np.zeros((32, 64, 3), np.uint8), "one size"),
    ([[0, 0, 0]], "numpy array"),
])  # fmt: skip
def test_a_malformed_frame_is_refused_clearly_and_leaves_no_file(tmp_path, frame, message):
    with pytest.raises(FrameError, match=message):
        write_mp4(tmp_path / "bad.mp4", [*frames(2), frame], fps=10)
    assert list(tmp_path.iterdir()) == []


def test_a_video_without_frames_is_an_error_and_leaves_no_file(tmp_path):
    with pytest.raises(FrameError, match="at least one frame"):
        write_mp4(tmp_path / "empty.mp4", [], fps=10)
    assert list(tmp_path.iterdir()) == []


def test_the_final_name_appears_only_when_finished_and_discard_leaves_nothing(tmp_path):
    writer = Mp4Writer(tmp_path, fps=15)
    for frame in frames(5):
        writer.add(frame)
    assert writer.partial.exists() and writer.partial.name.endswith(PARTIAL_SUFFIX)
    assert not list(tmp_path.glob("*.mp4")), "nothing under a video's name while it is written"
    writer.finish(tmp_path / "done.mp4")
    assert [p.name for p in tmp_path.iterdir()] == ["done.mp4"]
    dropped = Mp4Writer(tmp_path, fps=15)
    dropped.add(frames(1)[0])
    dropped.discard()
    assert [p.name for p in tmp_path.iterdir()] == ["done.mp4"]


def test_a_writer_killed_mid_video_leaves_no_file_under_the_final_name(tmp_path):
    script = textwrap.dedent(f"""
        import sys
        from actor.mp4 import Mp4Writer
        from tests.unit.test_mp4 import frames
        writer = Mp4Writer({str(tmp_path)!r}, fps=10)
        for frame in frames(12):
            writer.add(frame)
        print("frames written", flush=True)
        sys.stdin.readline()  # killed here, before finish()
        writer.finish({str(tmp_path / "episode.mp4")!r})
    """)
    child = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "frames written"
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=10) == -signal.SIGKILL
    finally:
        child.kill()
        child.stdin.close()
        child.stdout.close()
    assert not (tmp_path / "episode.mp4").exists()
    assert [p.name.endswith(PARTIAL_SUFFIX) and p.name.startswith(".") for p in tmp_path.iterdir()] == [True]
