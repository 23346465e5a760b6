"""Every baseline trains through the real learner process with a local actor (tiny budgets)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.timeout(180)


@pytest.mark.parametrize("algo", ["cal_ql", "iql"])
def test_learner_trains_a_baseline_end_to_end(tmp_path, port, algo):
    """Cal-QL also exercises the learner's Monte-Carlo returns (episodes held until they end)."""
    command = [
        sys.executable, "-m", "learner", "--algo", algo, "--port", str(port), "--run-dir", str(tmp_path),
        "--metrics-port", "0", "--max-updates", "20", "--learning-starts", "32", "--publish-every", "10",
        "--set", "batch_size=32", "--set", "hidden_dims=32,32", "--threads", "1",
        "--local-actor", "fake", "--actor-arg=--time-scale", "--actor-arg=25", "--final-eval", "1",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=150)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["updates"] == 20 and summary["env_steps"] >= 32
