"""`actor --record-video DIR` on a pty, as an operator would run it: one video per episode labelled success or
failure, of the camera images the policy sees, frame for frame; unlabelled episodes leave nothing."""

from __future__ import annotations

import re

import av
import pytest

from learner.server import LearnerServer
from robots.sim.limo import make_limo_spec
from tests.conftest import wait_until
from tests.integration.test_transport import Store
from tests.operator.pty_process import PtyProcess

pytestmark = pytest.mark.timeout(90)


def test_each_labelled_episode_leaves_one_video_of_its_camera_frames(tmp_path, port):
    summaries = []
    server = LearnerServer("127.0.0.1", port, make_limo_spec("image"), Store(),
                           on_episode=lambda _a, s: summaries.append(s)).start()  # fmt: skip
    term = PtyProcess.module("actor", "--robot", "limo_sim", "-o", "observation=image", "-o", "max_steps=10000",
                             "--learner", f"127.0.0.1:{port}", "--actor-id", "op", "--metrics-port", "0",
                             "--time-scale", "2", "--record-video", str(tmp_path))  # fmt: skip
    try:
        term.expect("operator console on", timeout_s=30)
        for episode, key in ((1, "s"), (2, "f"), (3, "r")):  # success, failure, then a reset: not a label
            term.expect(rf"ep {episode} step [3-9]")
            term.send(key)
        term.expect(r"ep 4 step [1-9]")
        term.send("\x03")  # Ctrl-C ends episode 4 unlabelled
        assert term.wait() == 0, term.output[-2000:]
        wait_until(lambda: len(summaries) >= 4, 10, "four episode summaries at the learner")
    finally:
        term.close()
        server.close()
    videos = sorted(tmp_path.iterdir())
    assert len(videos) == 2, f"one per label, no temporary file left: {[p.name for p in videos]}"
    by_episode = {s.episode: s for s in summaries}
    outcomes = []
    for path in videos:
        episode, label = re.fullmatch(r"op-random-episode(\d+)-(success|failure)\.mp4", path.name).groups()
        summary = by_episode[int(episode)]
        with av.open(str(path)) as container:
            frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
        assert len(frames) == summary.steps + 1, "the camera image after the reset, then one per step"
        assert frames[0].shape == (64, 64, 3), "the policy's own 64x64 camera, gray as RGB"
        outcomes.append((label, summary.success, summary.outcome_source))
    assert sorted(outcomes) == [("failure", False, "operator"), ("success", True, "operator")]
