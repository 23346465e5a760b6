"""Episode videos from the real control loop on the LIMO twin: which episodes are filmed, how the files are
named, and that each decodes back to exactly steps + 1 frames (the reset, then one per step)."""

from __future__ import annotations

import re

import av
import numpy as np
import pytest

from actor.loop import ActorLoop, LoopConfig
from actor.policy import ActingPolicy
from actor.videos import VIDEO_SIZE, EvaluationRenders, LabelledEpisodes, make_episode_videos, rgb_frame
from common.protocol import EpisodeSummary
from robots.fake import FakeRobot
from robots.sim.limo import LimoSim

pytestmark = pytest.mark.timeout(120)


class ForwardPolicy(ActingPolicy):
    """Stands for learned weights v3: drive forward, turning a little."""

    version = 3

    def act(self, observation, deterministic: bool = False) -> np.ndarray:
        return np.array([0.6, 0.2], dtype=np.float32)


def decoded_frames(path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def run_evaluator(robot, directory, every: int, episodes: int, block: int) -> list:
    """An evaluator's loop on `robot` acting with ForwardPolicy, filming the first episode of every `every`th block."""
    policy = ForwardPolicy()
    videos = EvaluationRenders(directory, robot, "eval", every=every)
    config = LoopConfig(episodes=episodes, eval_episodes=block, eval_only=True, time_scale=50.0)
    loop = ActorLoop(robot, robot.task, lambda _item: None, lambda v: policy if v < policy.version else None, config,
                     "eval", videos=videos)  # fmt: skip
    with robot:
        robot.enable()
        return loop.run()


def test_an_evaluator_renders_the_first_episode_of_every_nth_block_only(tmp_path):
    robot = LimoSim(max_steps=12, seed=4)
    summaries = run_evaluator(robot, tmp_path, every=2, episodes=6, block=2)
    assert len(summaries) == 6  # blocks 0, 1, 2 of two episodes each
    names = sorted(p.name for p in tmp_path.iterdir())
    expected = [f"eval-v3-block{block}-episode0-{'success' if summaries[2 * block].success else 'failure'}.mp4"
                for block in (0, 2)]  # fmt: skip
    assert names == expected, "block 1 and every second episode are not filmed; no temporary file is left"
    for block in (0, 2):
        frames = decoded_frames(tmp_path / expected[block // 2])
        assert len(frames) == summaries[2 * block].steps + 1
        assert frames[0].shape == (VIDEO_SIZE[1], VIDEO_SIZE[0], 3)
        assert not np.array_equal(frames[0], frames[-1]), "the robot drove: the scene changed"


def test_labelled_episodes_keep_only_operator_labels_and_name_them():
    spec = LimoSim(observation="image").spec
    videos = LabelledEpisodes("unused", spec, "limo-1")
    assert videos.wants(False, -1, -1) and videos.wants(True, 0, 3), "the label comes at the end: film them all"
    assert [videos.keeps(o) for o in ("success", "failure", "task", "step_limit", "reset", "estop", "stopped")] == \
        [True, True, False, False, False, False, False]  # fmt: skip
    summary = EpisodeSummary(episode=1733, steps=5, episode_return=1.0, success=True, evaluation=False,
                             outcome_source="operator", policy_version=9)  # fmt: skip
    assert videos.file_name(summary, "success", -1, -1) == "limo-1-v9-episode1733-success.mp4"
    gray = np.arange(7 * 5, dtype=np.uint8).reshape(7, 5, 1)
    frame = rgb_frame(gray)
    assert frame.shape == (6, 4, 3) and np.array_equal(frame[:, :, 2], gray[:6, :4, 0]), "gray to RGB, even sizes"


def test_video_requests_that_cannot_work_are_refused_or_reported(tmp_path, caplog):
    limo, state_limo = LimoSim(observation="image"), LimoSim()
    with pytest.raises(ValueError, match="--eval-only"):
        make_episode_videos(limo, "train", eval_only=False, render_dir=str(tmp_path))
    with pytest.raises(ValueError, match="one at a time"):
        make_episode_videos(limo, "a", eval_only=True, render_dir=str(tmp_path), record_dir=str(tmp_path))
    with pytest.raises(ValueError, match="no camera observation"):
        make_episode_videos(state_limo, "a", eval_only=False, record_dir=str(tmp_path))
    assert make_episode_videos(limo, "eval", eval_only=True, render_dir=str(tmp_path), render_every=0) is None
    assert make_episode_videos(FakeRobot(), "final-eval", eval_only=True, render_dir=str(tmp_path)) is None
    assert re.search("cannot render", caplog.text), "a robot without a scene says so instead of failing the run"
    assert isinstance(make_episode_videos(limo, "op", eval_only=False, record_dir=str(tmp_path)), LabelledEpisodes)


class FlakyRenderLimo(LimoSim):
    """A LIMO twin whose scene renderer fails once, on its fifth frame."""

    renders = 0

    def render_view(self, width: int = 320, height: int = 240) -> np.ndarray:
        self.renders += 1
        if self.renders == 5:
            raise RuntimeError("EGL context lost")
        return super().render_view(width, height)


def test_a_failing_video_is_dropped_and_never_ends_the_episode(tmp_path, caplog):
    robot = FlakyRenderLimo(max_steps=8, seed=1)
    summaries = run_evaluator(robot, tmp_path, every=1, episodes=2, block=1)
    assert [s.steps for s in summaries] == [8, 8], "both episodes ran to their step limit"
    assert [p.name for p in tmp_path.iterdir()] == ["eval-v3-block1-episode0-failure.mp4"], "block 0's video dropped"
    assert "RuntimeError: EGL context lost" in caplog.text
