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


def test_csil_pp_acts_ensembled_with_a_saved_base_chunk_policy_end_to_end(tmp_path, port):
    """A saved ALOE chunk policy is the frozen base: the local actor runs the "ensembled" program on it."""
    from common.protocol import Weights
    from learner.algorithms import config_to_dict, make_algorithm
    from learner.best_policy import Tally, save_weights
    from robots.fake import FakeRobot

    spec = FakeRobot().spec
    aloe = make_algorithm("aloe", spec, {"hidden_dims": "32,32", "flow_steps": 2}, seed=0)
    tensors = {k: v.numpy() for k, v in aloe.named_policy_state_dict().items()}
    base = tmp_path / "base.npz"
    save_weights(Weights(1, "aloe", json.dumps(config_to_dict(aloe.config)), spec.spec_hash, tensors), base,
                 Tally(1, 0, 0))  # fmt: skip
    demo = write_fake_demo(tmp_path / "demo.npz")
    command = [
        sys.executable, "-m", "learner", "--algo", "csil_pp", "--port", str(port), "--run-dir", str(tmp_path / "run"),
        "--demo", str(demo), "--set", "bc_updates=10", "--set", "critic_pretrain_updates=5", "--utd", "4",
        "--set", f"base_policy={base}", "--metrics-port", "0", "--max-updates", "24", "--learning-starts", "32",
        "--publish-every", "8", "--set", "batch_size=32", "--set", "hidden_dims=32,32",
        "--set", "critic_hidden_dims=32,32", "--threads", "1",
        "--local-actor", "fake", "--actor-arg=--time-scale", "--actor-arg=25", "--final-eval", "1",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=150)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert (summary["offline_updates"], summary["updates"]) == (15, 24) and summary["env_steps"] >= 32
    from learner.best_policy import load_weights

    best, tally = load_weights(tmp_path / "run" / "best_policy.npz")  # a version the actor evaluated
    assert tally.episodes >= 1 and (best.program, json.loads(best.program_config_json)) == (
        "ensembled", {"every": 10, "combine": "mean"})
    assert any(k.startswith("base.") for k in best.tensors) and any(k.startswith("learned.") for k in best.tensors)
