"""A short real run (learner, a local LIMO twin actor, the final evaluation) leaves a playable video of the
final policy in RUN_DIR/videos, and the run's summary names it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import av
import pytest

from learner.__main__ import format_summary
from learner.app import Learner, LearnerConfig, LocalRunConfig
from learner.train_loop import TrainConfig

pytestmark = pytest.mark.timeout(240)


def test_a_short_run_leaves_a_playable_video_of_its_final_evaluation(tmp_path, port):
    local = LocalRunConfig("limo_sim", ["--time-scale", "25", "--eval-episodes", "2", "-o", "max_steps=20"],
                           final_eval_episodes=2)  # fmt: skip
    train = TrainConfig(learning_starts=32, publish_every=10, max_updates=40)
    learner = Learner(LearnerConfig(algo="sac", overrides={"hidden_dims": "16,16"}, port=port, run_dir=str(tmp_path),
                                    device="cpu", metrics_port=0, local=local, train=train))  # fmt: skip
    summary = learner.run()
    first = learner.stats.episodes(actor_id="final-eval")[0]  # block 0, episode 0 of the final evaluation
    video = Path(summary["latest_video"])
    outcome = "success" if first.success else "failure"
    assert video.name == f"final-eval-v{summary['policy_version']}-block0-episode0-{outcome}.mp4"
    # One block evaluated, its first episode filmed; no training actor renders; no temporary file is left.
    assert sorted(p.name for p in (tmp_path / "videos").iterdir()) == [video.name]
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
        assert stream.codec_context.name == "h264" and stream.average_rate == 10  # the LIMO's control rate
    assert len(frames) == first.steps + 1, "the scene after the reset, then one frame per step"
    assert frames[0].shape == (240, 320, 3)
    assert json.loads((tmp_path / "summary.json").read_text())["latest_video"] == str(video)
    assert re.search(rf"latest_video: {re.escape(str(video))}", format_summary(summary))


def test_the_evaluator_and_the_final_evaluation_render_and_the_training_actors_do_not(tmp_path):
    started = []

    class RecordingLauncher:
        def start(self, process, learner_address):
            started.append(process)
            return SimpleNamespace(actor_id=process.actor_id)

    def evaluator_args(video_every: int) -> dict[str, tuple[str, ...]]:
        started.clear()
        local = LocalRunConfig("limo_sim", ["--eval-episodes", "4"], fleet=["limo_sim=1"], eval_actor=True,
                               video_every=video_every)  # fmt: skip
        learner = Learner(LearnerConfig(run_dir=str(tmp_path), local=local, metrics_port=0), RecordingLauncher())
        learner.server = SimpleNamespace(port=5555)  # no server needed: the launcher only records
        learner._start_local_actors()
        return {process.actor_id: process.args for process in started}

    args = evaluator_args(video_every=3)
    start = args["eval"].index("--eval-only")
    assert args["eval"][start:start + 5] == ("--eval-only", "--render-videos", str((tmp_path / "videos").absolute()),
                                             "--render-every", "3")  # fmt: skip
    assert not any("--render-videos" in args[actor] for actor in ("train", "limo_sim-0"))
    assert "--render-videos" not in evaluator_args(video_every=0)["eval"], "0 turns the evaluator's videos off"
    with pytest.raises(ValueError, match="--video-every"):
        LocalRunConfig("limo_sim", [], video_every=-1)
