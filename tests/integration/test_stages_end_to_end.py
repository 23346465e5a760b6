"""An algorithm with offline, rollouts and online stages trains through the real learner and a real actor."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest
import torch

from tests.stage_fixture import NAME, PLUGIN_ENV, ended_episodes, write_fake_demo

pytestmark = pytest.mark.timeout(240)
# Online updates (utd 1: one per transition received). The transitions before the online stage (a few hundred)
# allow that many at once; the rest wait for new ones, acted by the online policy (version 2 on), so the run
# cannot end before episodes of it do. With 20 it often did: CI under load saw no version-2 episode.
UPDATES = 1000


def test_the_learner_runs_the_stages_in_order_with_a_real_actor(tmp_path, port):
    run_dir = tmp_path / "run"
    command = [
        sys.executable, "-m", "learner", "--algo", NAME, "--demo", str(write_fake_demo(tmp_path / "demo.npz")),
        "--port", str(port), "--run-dir", str(run_dir), "--metrics-port", "0", "--threads", "1",
        "--max-updates", str(UPDATES), "--learning-starts", "32", "--publish-every", "10", "--final-eval", "0",
        "--set", "batch_size=32", "--set", "hidden_dims=32,32", "--set", "bc_updates=30", "--set", "bc_rollouts=3",
        "--local-actor", "fake", "--actor-arg=--time-scale", "--actor-arg=25",
    ]  # fmt: skip
    env = {**os.environ, **PLUGIN_ENV}  # the learner and its actor both register the fixture algorithm
    result = subprocess.run(command, capture_output=True, text=True, timeout=200, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    log = result.stderr
    events = ["stage 1/3 offline 'bc' 0/30 updates started", "stage 1/3 offline 'bc' completed",
              "stage 2/3 rollouts 'bc_rollouts' 0/3 episodes started", "stage 2/3 rollouts 'bc_rollouts' completed",
              "stage 3/3 online 'online' 0 updates started"]  # fmt: skip
    positions = [log.find(event) for event in events]
    assert -1 not in positions and positions == sorted(positions), log[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert (summary["offline_updates"], summary["updates"]) == (30, UPDATES)
    # Version 1 is the BC policy the rollouts stage published: the actor ran it for at least 3 training
    # episodes, the learner stored them, and the online policy came after (version 2 on).
    assert ended_episodes(run_dir, 1) >= 3
    with (run_dir / "episodes.csv").open() as handle:
        versions = [int(row["policy_version"]) for row in csv.DictReader(handle) if row["evaluation"] == "0"]
    assert versions.count(1) >= 3 and max(versions) >= 2
    final = sorted((run_dir / "checkpoints").glob("ckpt-*"))[-1]
    state = torch.load(final / "state.pt", weights_only=True)
    assert state["algorithm"]["ended_stages"] == ["bc", "bc_rollouts"]
    assert state["algorithm"]["offline_updates"] == 30 and state["stages"]["index"] == 2


def test_help_lists_the_chosen_algorithms_config_fields_with_its_stage_lengths():
    env = {**os.environ, **PLUGIN_ENV}
    result = subprocess.run([sys.executable, "-m", "learner", "--algo", NAME, "--help"], capture_output=True,
                            text=True, timeout=120, env=env)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    help_text = " ".join(result.stdout.split())  # click wraps long lines
    assert f"{NAME} config fields" in help_text
    assert "bc_updates=50 Offline behaviour-cloning updates of the BC policy" in help_text
    assert "hidden_dims=256,256" in help_text, "defaults are written as --set takes them"
    default = subprocess.run([sys.executable, "-m", "learner", "--help"], capture_output=True, text=True,
                             timeout=120, env=env)  # fmt: skip
    assert "sigent_sac config fields" in default.stdout and "bc_updates" not in default.stdout
