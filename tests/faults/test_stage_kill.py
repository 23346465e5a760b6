"""A stage interrupted by kill -9 of the real learner resumes where it stood: an offline stage at the update
count of its last checkpoint, a rollouts stage counting the episodes of its version already received."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest
import torch

from learner.checkpoint import list_checkpoints
from tests.conftest import wait_until
from tests.faults.processes import ROOT, LearnerProcess
from tests.stage_fixture import NAME, PLUGIN_ENV, ended_episodes, write_fake_demo

pytestmark = pytest.mark.timeout(300)

BC_UPDATES, BC_ROLLOUTS, CHECKPOINT_EVERY = 3000, 8, 200


def staged_learner(demo: Path, port: int, run_dir: Path, resume: bool) -> list[str]:
    """The real `learner` CLI training the fixture algorithm with a long offline stage checkpointed often."""
    run = ["--resume", str(run_dir)] if resume else ["--run-dir", str(run_dir), "--demo", str(demo)]
    return [sys.executable, "-m", "learner", "--algo", NAME, "--port", str(port), *run, "--metrics-port", "0",
            "--threads", "1", "--device", "cpu", "--final-eval", "0", "--learning-starts", "50",
            "--checkpoint-every", str(CHECKPOINT_EVERY), "--set", "batch_size=64", "--set", "hidden_dims=32,32",
            "--set", f"bc_updates={BC_UPDATES}", "--set", f"bc_rollouts={BC_ROLLOUTS}"]  # fmt: skip


def start_actor(port: int, tmp_path: Path) -> subprocess.Popen:
    """A real actor on the fake robot at real-time speed (0.4 s episodes), spooling while the learner is away."""
    command = [sys.executable, "-m", "actor", "--robot", "fake", "--learner", f"127.0.0.1:{port}", "--actor-id",
               "a1", "--metrics-port", "0", "--spool", str(tmp_path / "spool")]  # fmt: skip
    log = (tmp_path / "actor.log").open("w")
    return subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip


def checkpointed_stage(run_dir: Path) -> tuple[dict, dict]:
    state = torch.load(list_checkpoints(run_dir)[-1] / "state.pt", weights_only=True)
    return state["stages"], state["algorithm"]


def test_kill_9_mid_offline_and_mid_rollouts_resumes_each_stage_where_it_stood(tmp_path, port, monkeypatch):
    monkeypatch.setenv("TANDEM_PLUGINS", PLUGIN_ENV["TANDEM_PLUGINS"])  # learners and the actor inherit it
    run_dir, command = tmp_path / "run", partial(staged_learner, write_fake_demo(tmp_path / "demo.npz"))
    learner = LearnerProcess(port, run_dir, command=command)
    actor = start_actor(port, tmp_path)
    try:
        # 1. kill -9 right after the first checkpoint inside the offline stage.
        # (list_checkpoints only reads: the learner's half-written save must not be touched)
        wait_until(lambda: list_checkpoints(run_dir) or learner.process.poll() is not None, 120,
                   what="a checkpoint inside the offline stage")  # fmt: skip
        learner.kill()
        stages, algorithm = checkpointed_stage(run_dir)
        done = stages["done"]
        assert stages["index"] == 0 and 0 < done < BC_UPDATES and algorithm["offline_updates"] == done
        learner = LearnerProcess(port, run_dir, resume=True, command=command)
        wait_until(lambda: "resumed" in learner.text(), 60, what="the resume")
        assert f"stage 1/3 offline 'bc' {done}/{BC_UPDATES} updates" in learner.text()

        # 2. kill -9 once the rollouts of the BC policy (version 1) have begun to arrive.
        # Counted in the journal, not the learner's log: the log line comes when a batch is stored in memory,
        # before the journal's buffer reaches the OS at the ack, so a kill between the two loses it from the file.
        wait_until(lambda: ended_episodes(run_dir, 1) >= 2 or learner.process.poll() is not None, 120,
                   what="two rollout episodes in the journal")  # fmt: skip
        learner.kill()
        received = ended_episodes(run_dir, 1)
        assert 2 <= received < BC_ROLLOUTS, "the kill must land inside the rollouts stage"
        learner = LearnerProcess(port, run_dir, resume=True, command=command)
        wait_until(lambda: "stage 3/3 online" in learner.text() or learner.process.poll() is not None, 120,
                   what="the online stage")  # fmt: skip
        text = learner.text()
        resumed_at = re.search(r"resumed .*stage 2/3 rollouts 'bc_rollouts' (\d+)/8 episodes", text)
        assert resumed_at and int(resumed_at.group(1)) == received, text[-3000:]
        assert learner.terminate() == 0, learner.text()[-3000:]
    finally:
        actor.send_signal(signal.SIGINT)
        actor.wait(timeout=30)
        if learner.process.poll() is None:
            learner.kill()
    stages, algorithm = checkpointed_stage(run_dir)
    # The offline stage did its updates once in total (not again from zero after the kill), each stage ended once.
    assert algorithm["offline_updates"] == BC_UPDATES and algorithm["ended_stages"] == ["bc", "bc_rollouts"]
    assert stages["index"] == 2 and ended_episodes(run_dir, 1) >= BC_ROLLOUTS
