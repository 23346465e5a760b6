"""CSIL and CSIL++ train through the real learner process with a local actor (tiny budgets): BC, critic
pretraining, then online updates with the actor running the HetStat policy."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.stage_fixture import write_fake_demo

pytestmark = pytest.mark.timeout(180)


@pytest.mark.parametrize("algo", ["csil", "csil_pp"])
def test_learner_trains_csil_end_to_end(tmp_path, port, algo):
    demo = write_fake_demo(tmp_path / "demo.npz")
    command = [
        sys.executable, "-m", "learner", "--algo", algo, "--port", str(port), "--run-dir", str(tmp_path / "run"),
        "--demo", str(demo), "--set", "bc_updates=10", "--set", "critic_pretrain_updates=5", "--utd", "4",
        "--metrics-port", "0", "--max-updates", "24", "--learning-starts", "32", "--publish-every", "8",
        "--set", "batch_size=32", "--set", "hidden_dims=32,32", "--set", "critic_hidden_dims=32,32", "--threads", "1",
        "--local-actor", "fake", "--actor-arg=--time-scale", "--actor-arg=25", "--final-eval", "1",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=150)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert (summary["offline_updates"], summary["updates"]) == (15, 24) and summary["env_steps"] >= 32
