"""CSIL's offline stages survive kill -9 of the real learner: BC and the critic pretraining each resume at the update
count of their last checkpoint, each stage's updates are done once in total, and the run reaches its online stage."""

from __future__ import annotations

import signal
import sys
from functools import partial
from pathlib import Path

import pytest

from tests.conftest import wait_until
from tests.faults.processes import LearnerProcess
from tests.faults.test_aloe_stage_kill import Checkpoints, kill_and_resume_mid_offline
from tests.faults.test_stage_kill import start_actor
from tests.stage_fixture import write_fake_demo

pytestmark = pytest.mark.timeout(420)

BC, CRITIC, CHECKPOINT_EVERY = 1500, 1500, 100


def csil_learner(demo: Path, port: int, run_dir: Path, resume: bool) -> list[str]:
    """The real `learner` CLI training CSIL++ (the variant with more state: BN statistics), checkpointed often."""
    run = ["--resume", str(run_dir)] if resume else ["--run-dir", str(run_dir), "--demo", str(demo)]
    return [sys.executable, "-m", "learner", "--algo", "csil_pp", "--port", str(port), *run, "--metrics-port", "0",
            "--threads", "1", "--device", "cpu", "--final-eval", "0", "--learning-starts", "50",
            "--checkpoint-every", str(CHECKPOINT_EVERY), "--set", "batch_size=32", "--set", "hidden_dims=32,32",
            "--set", "critic_hidden_dims=32,32", "--set", "stationary_width=32",
            "--set", f"bc_updates={BC}", "--set", f"critic_pretrain_updates={CRITIC}"]  # fmt: skip


def test_kill_9_mid_bc_and_mid_critic_pretraining_resumes_each_where_it_stood(tmp_path, port):
    run_dir, command = tmp_path / "run", partial(csil_learner, write_fake_demo(tmp_path / "demo.npz"))
    checkpoints = Checkpoints(run_dir)
    learner, actor = LearnerProcess(port, run_dir, command=command), start_actor(port, tmp_path)
    try:
        for stage in ((0, "bc", BC), (1, "critic", CRITIC)):
            before = BC if stage[0] else 0
            learner = kill_and_resume_mid_offline(learner, checkpoints, port, run_dir, command, stage, 3, before)
        wait_until(lambda: "stage 3/3 online" in learner.text() or learner.process.poll() is not None, 200,
                   what="the online stage")  # fmt: skip
        assert learner.terminate() == 0, learner.text()[-3000:]
    finally:
        actor.send_signal(signal.SIGINT)
        actor.wait(timeout=30)
        if learner.process.poll() is None:
            learner.kill()
    state = checkpoints.newest()
    assert state["stages"]["index"] == 2, "every stage before online completed"
    assert state["train_loop"]["offline_updates"] == BC + CRITIC, "each offline update counted once"
