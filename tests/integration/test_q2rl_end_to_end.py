"""Q2RL through the real learner with a real local actor: from the LIMO demo, and from a saved BC policy alone."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import torch

import pytest

from common.protocol import Weights
from common.types import PROPOSAL_NONE, split_observations, unpack_transitions
from learner.algorithms import config_from_overrides, config_to_dict, make_algorithm
from learner.best_policy import Tally, save_weights
from learner.replay.durable import read_journal, read_spec
from robots.fake import FakeRobot

pytestmark = pytest.mark.timeout(300)
ROOT = Path(__file__).resolve().parents[2]
LIMO_DEMO = ROOT / "robots" / "sim" / "demos" / "limo_ball_to_goal.npz"
TINY = ["--set", "batch_size=32", "--set", "hidden_dims=32,32", "--set", "bc_hidden_dims=32,32",
        "--set", "bc_rollouts=3", "--set", "q_estimation_updates=30"]  # fmt: skip


def learner_command(port: int, run_dir: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "learner", "--algo", "q2rl", "--port", str(port), "--run-dir", str(run_dir),
            "--metrics-port", "0", "--threads", "1", "--publish-every", "10", "--learning-starts", "32", *TINY,
            *args]  # fmt: skip


def stored_columns(run_dir: Path) -> dict[str, np.ndarray]:
    """Every transition in the run's durable replay, as concatenated columns."""
    spec = read_spec(run_dir / "replay")
    batches = [unpack_transitions(record.arrays, spec) for record in read_journal(run_dir / "replay")
               if record.arrays is not None]  # fmt: skip
    return {key: np.concatenate([batch[key] for batch in batches]) for key in batches[0]}


def in_order(log: str, events: list[str]) -> bool:
    positions = [log.find(event) for event in events]
    return -1 not in positions and positions == sorted(positions)


def test_q2rl_trains_end_to_end_from_the_limo_demo_and_the_actor_gates_online(tmp_path, port):
    """Paced as the comparison runs it: the BC rollouts (more than the pacing slack) must not stall the actor."""
    run_dir = tmp_path / "run"
    command = learner_command(port, run_dir, "--demo", str(LIMO_DEMO), "--set", "bc_updates=20",
                              "--max-updates", "400", "--local-actor", "limo_sim", "--actor-arg=--time-scale",
                              "--actor-arg=50", "--actor-arg=--pace-utd=1", "--actor-arg=--pace-slack=100",
                              "--final-eval", "1")  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=280, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    assert in_order(result.stderr, ["stage 1/4 offline 'bc' completed", "stage 2/4 rollouts 'bc_rollouts' completed",
                                    "stage 3/4 offline 'q_estimation' completed", "stage 4/4 online"]), \
        result.stderr[-3000:]  # fmt: skip
    summary = json.loads((run_dir / "summary.json").read_text())
    assert (summary["offline_updates"], summary["updates"]) == (50, 400)
    columns = stored_columns(run_dir)
    training = ~columns["evaluation"]
    bc, gated = training & (columns["policy_version"] == 1), training & (columns["policy_version"] >= 2)
    assert bc.sum() >= 3 * 10 and np.all(columns["proposal"][bc] == PROPOSAL_NONE), "v1 is the BC policy, one_step"
    assert gated.any() and np.all(np.isin(columns["proposal"][gated], [0, 1])), "the online policy is gated"
    # episodes.csv's RL-action share of each training episode is its stored steps' share of proposal 1.
    stored = Counter()
    for episode in np.unique(columns["episode"][training]):
        rows = columns["episode"] == episode
        steps, last = int(rows.sum()), columns["policy_version"][rows][-1]
        stored[(steps, int(last), f"{np.mean(columns['proposal'][rows] == 1):.4f}")] += 1
    with (run_dir / "episodes.csv").open() as handle:
        listed = Counter((int(row["steps"]), int(row["policy_version"]), row["rl_action_fraction"])
                         for row in csv.DictReader(handle) if row["evaluation"] == "0")  # fmt: skip
    assert listed and not listed - stored, (listed, stored)
    assert any(version >= 2 for _, version, _ in listed), "a gated training episode ended"


def saved_bc_policy(path: Path, spec) -> torch.nn.Module:
    """An untrained but seeded SAC policy saved as best_policy.npz; returns the network it holds."""
    overrides = {"hidden_dims": "32,32"}
    source = make_algorithm("sac", spec, overrides, seed=11)
    tensors = {k: v.numpy() for k, v in source.policy_state_dict().items()}
    config = json.dumps(config_to_dict(config_from_overrides("sac", overrides)))
    save_weights(Weights(4, "sac", config, spec.spec_hash, tensors), path, Tally(4))
    return source.nets.policy


def test_a_saved_bc_policy_alone_starts_a_run_and_its_mode_acts_the_rollouts(tmp_path, port):
    spec = FakeRobot().spec
    policy = saved_bc_policy(tmp_path / "best_policy.npz", spec)
    run_dir = tmp_path / "run"
    command = learner_command(port, run_dir, "--set", f"bc_policy={tmp_path / 'best_policy.npz'}",
                              "--max-updates", "20", "--local-actor", "fake", "--actor-arg=--time-scale",
                              "--actor-arg=25", "--final-eval", "0")  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=280, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    assert in_order(result.stderr, ["stage 1/3 rollouts 'bc_rollouts' completed",
                                    "stage 2/3 offline 'q_estimation' completed", "stage 3/3 online"])
    summary = json.loads((run_dir / "summary.json").read_text())
    assert (summary["offline_updates"], summary["updates"]) == (30, 20)
    columns = stored_columns(run_dir)
    rollouts = columns["policy_version"] == 1
    assert rollouts.sum() >= 3 * 10
    observation = {k: torch.from_numpy(v[rollouts]) for k, v in split_observations(columns, "observation/").items()}
    with torch.no_grad():
        mode = policy(observation).deterministic_action().numpy()
    assert np.allclose(columns["action"][rollouts], mode, atol=1e-5), "the rollouts ran the saved policy's mode"
