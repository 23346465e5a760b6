"""Each Q2RL stage interrupted by kill -9 of the real learner resumes where it stood: BC and Q-estimation at the
update count of their last checkpoint (Q-estimation sampling the restored rollouts' returns-to-go), the rollouts
counting the BC episodes already received; no stage's updates run twice."""

from __future__ import annotations

from functools import partial
from pathlib import Path
import re
import signal
import sys

import pytest
import torch

from learner.checkpoint import list_checkpoints
from tests.conftest import wait_until
from tests.faults.processes import LearnerProcess
from tests.faults.test_stage_kill import start_actor
from tests.stage_fixture import ended_episodes, write_fake_demo

pytestmark = pytest.mark.timeout(400)

BC_UPDATES, ROLLOUTS, Q_UPDATES, CHECKPOINT_EVERY = 2000, 8, 3000, 200


def q2rl_learner(demo: Path, port: int, run_dir: Path, resume: bool) -> list[str]:
    run = ["--resume", str(run_dir)] if resume else ["--run-dir", str(run_dir), "--demo", str(demo)]
    return [sys.executable, "-m", "learner", "--algo", "q2rl", "--port", str(port), *run, "--metrics-port", "0",
            "--threads", "1", "--device", "cpu", "--final-eval", "0", "--learning-starts", "50",
            "--checkpoint-every", str(CHECKPOINT_EVERY), "--set", "batch_size=64", "--set", "hidden_dims=32,32",
            "--set", "bc_hidden_dims=32,32", "--set", f"bc_updates={BC_UPDATES}", "--set", f"bc_rollouts={ROLLOUTS}",
            "--set", f"q_estimation_updates={Q_UPDATES}"]  # fmt: skip


def last_checkpoint(run_dir: Path) -> dict:
    return torch.load(list_checkpoints(run_dir)[-1] / "state.pt", weights_only=True)


def checkpoint_after(run_dir: Path, updates: int) -> bool:
    """A complete checkpoint named past `updates` (offline + online updates) exists."""
    return any(int(path.name.removeprefix("ckpt-")) > updates for path in list_checkpoints(run_dir))


def test_kill_9_in_each_q2rl_stage_resumes_it_where_it_stood(tmp_path, port):
    run_dir, command = tmp_path / "run", partial(q2rl_learner, write_fake_demo(tmp_path / "demo.npz"))
    learner = LearnerProcess(port, run_dir, command=command)
    actor = start_actor(port, tmp_path)
    try:
        # 1. BC: kill -9 after its first checkpoint.
        wait_until(lambda: checkpoint_after(run_dir, 0) or learner.process.poll() is not None, 120,
                   what="a checkpoint inside the BC stage")  # fmt: skip
        learner.kill()
        stages = last_checkpoint(run_dir)["stages"]
        assert stages["index"] == 0 and 0 < stages["done"] < BC_UPDATES
        learner = LearnerProcess(port, run_dir, resume=True, command=command)
        wait_until(lambda: "resumed" in learner.text(), 60, what="the resume")
        assert f"stage 1/4 offline 'bc' {stages['done']}/{BC_UPDATES} updates" in learner.text()

        # 2. Rollouts of the BC mode (version 1): kill -9 once two episodes arrived.
        # Counted in the journal, not the learner's log: the log line comes when a batch is stored in memory,
        # before the journal's buffer reaches the OS at the ack, so a kill between the two loses it from the file.
        wait_until(lambda: ended_episodes(run_dir, 1) >= 2 or learner.process.poll() is not None, 120,
                   what="two rollout episodes in the journal")  # fmt: skip
        learner.kill()
        received = ended_episodes(run_dir, 1)
        assert 2 <= received < ROLLOUTS, "the kill must land inside the rollouts stage"
        learner = LearnerProcess(port, run_dir, resume=True, command=command)

        # 3. Q-estimation on the rollouts: kill -9 after its first checkpoint.
        wait_until(lambda: checkpoint_after(run_dir, BC_UPDATES) or learner.process.poll() is not None, 180,
                   what="a checkpoint inside Q-estimation")  # fmt: skip
        resumed_at = re.search(r"resumed .*stage 2/4 rollouts 'bc_rollouts' (\d+)/8 episodes", learner.text())
        assert resumed_at and int(resumed_at.group(1)) == received, learner.text()[-3000:]
        learner.kill()
        state = last_checkpoint(run_dir)
        done = state["stages"]["done"]
        assert state["stages"]["index"] == 2 and 0 < done < Q_UPDATES
        assert state["train_loop"]["offline_updates"] == BC_UPDATES + done
        learner = LearnerProcess(port, run_dir, resume=True, command=command)
        wait_until(lambda: "stage 4/4 online" in learner.text() or learner.process.poll() is not None, 180,
                   what="the online stage")  # fmt: skip
        assert f"stage 3/4 offline 'q_estimation' {done}/{Q_UPDATES} updates" in learner.text()
        assert learner.terminate() == 0, learner.text()[-3000:]
    finally:
        actor.send_signal(signal.SIGINT)
        actor.wait(timeout=30)
        if learner.process.poll() is None:
            learner.kill()
    state = last_checkpoint(run_dir)
    # Each offline stage did its updates once in total, not again from zero after a kill.
    assert state["stages"]["index"] == 3 and state["train_loop"]["offline_updates"] == BC_UPDATES + Q_UPDATES
    assert ended_episodes(run_dir, 1) >= ROLLOUTS
