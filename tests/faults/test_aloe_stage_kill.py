"""ALOE's stages survive kill -9 of the real learner: the BC stage and a round's critic stage resume at the update
count of their last checkpoint, each stage's updates are done once in total, and the run reaches its online stage.
(The rollouts stage's resume is the stage runner's, tested with every stage kind in test_stage_kill.py.)"""

from __future__ import annotations

import signal
import sys
from functools import partial
from pathlib import Path

import pytest
import torch

from learner.checkpoint import list_checkpoints
from tests.conftest import wait_until
from tests.faults.processes import LearnerProcess
from tests.faults.test_stage_kill import start_actor
from tests.stage_fixture import write_fake_demo

pytestmark = pytest.mark.timeout(420)

BC, CRITIC, ACTOR, CHECKPOINT_EVERY = 1500, 1500, 300, 100


def aloe_learner(demo: Path, port: int, run_dir: Path, resume: bool) -> list[str]:
    """The real `learner` CLI training ALOE in one round of the paper's schedule, checkpointed often."""
    run = ["--resume", str(run_dir)] if resume else ["--run-dir", str(run_dir), "--demo", str(demo)]
    return [sys.executable, "-m", "learner", "--algo", "aloe", "--port", str(port), *run, "--metrics-port", "0",
            "--threads", "1", "--device", "cpu", "--final-eval", "0", "--learning-starts", "50",
            "--checkpoint-every", str(CHECKPOINT_EVERY), "--set", "batch_size=32", "--set", "hidden_dims=32,32",
            "--set", "flow_steps=2", "--set", "value_samples=1", "--set", f"offline_updates={BC}",
            "--set", "schedule=rounds", "--set", "rounds=1", "--set", "round_episodes=2",
            "--set", f"round_critic_updates={CRITIC}", "--set", f"round_actor_updates={ACTOR}"]  # fmt: skip


class Checkpoints:
    """The stage progress of a run's newest checkpoint, loaded once per checkpoint (polled by wait_until)."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir, self.path, self.state = run_dir, None, None

    def newest(self) -> dict | None:
        found = list_checkpoints(self.run_dir)  # only reads: a half-written save is not listed
        if found and found[-1] != self.path:
            try:
                self.path, self.state = found[-1], torch.load(found[-1] / "state.pt", weights_only=True)
            except FileNotFoundError:  # replaced by a second save of the same count (a stage's end) or pruned
                pass  # between listing and loading, as the learner writes on: the next poll reads it
        return self.state

    def inside(self, index: int) -> dict | None:
        """The newest checkpoint if it was taken inside stage `index`, after some of its updates."""
        state = self.newest()
        return state if state and state["stages"]["index"] == index and state["stages"]["done"] > 0 else None


def kill_and_resume_mid_offline(learner: LearnerProcess, checkpoints: Checkpoints, port: int, run_dir: Path,
                                command, stage: tuple[int, str, int], stages: int, before: int) -> LearnerProcess:
    """kill -9 once a checkpoint lands inside offline stage `stage` = (index, name, length), check where that
    checkpoint stands (`before` offline updates of earlier stages), resume, and check the resumed learner
    continues the stage at the checkpoint's count; returns the resumed learner."""
    index, name, length = stage
    wait_until(lambda: checkpoints.inside(index) or learner.process.poll() is not None, 200,
               what=f"a checkpoint inside stage {name}")  # fmt: skip
    learner.kill()
    state = checkpoints.newest()  # the kill may land just after a newer one
    done = state["stages"]["done"]
    assert state["stages"]["index"] == index and 0 < done < length, state["stages"]
    assert state["train_loop"]["offline_updates"] == before + done
    learner = LearnerProcess(port, run_dir, resume=True, command=command)
    wait_until(lambda: "resumed" in learner.text() or learner.process.poll() is not None, 60, what="resume")
    assert f"stage {index + 1}/{stages} offline '{name}' {done}/{length} updates" in learner.text(), learner.text()
    return learner


def test_kill_9_mid_bc_and_mid_critic_round_resumes_each_where_it_stood(tmp_path, port):
    run_dir, command = tmp_path / "run", partial(aloe_learner, write_fake_demo(tmp_path / "demo.npz"))
    checkpoints = Checkpoints(run_dir)
    learner, actor = LearnerProcess(port, run_dir, command=command), start_actor(port, tmp_path)
    try:
        for stage in ((0, "bc", BC), (2, "critic_1", CRITIC)):
            before = BC if stage[0] else 0
            learner = kill_and_resume_mid_offline(learner, checkpoints, port, run_dir, command, stage, 5, before)
        wait_until(lambda: "stage 5/5 online" in learner.text() or learner.process.poll() is not None, 200,
                   what="the online stage")  # fmt: skip
        assert learner.terminate() == 0, learner.text()[-3000:]
    finally:
        actor.send_signal(signal.SIGINT)
        actor.wait(timeout=30)
        if learner.process.poll() is None:
            learner.kill()
    state = checkpoints.newest()
    assert state["stages"]["index"] == 4, "every stage before online completed"
    assert state["train_loop"]["offline_updates"] == BC + CRITIC + ACTOR, "each offline update counted once"
