"""Smoke runs of both command-line programs, as separate processes, with tiny budgets."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.timeout(180)


def run(*args: str, timeout: float = 150) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=timeout)


def test_unknown_algorithm_lists_the_known_ones():
    result = run("learner", "--algo", "no_such_algo")
    assert result.returncode == 2
    assert "unknown algorithm 'no_such_algo'" in result.stderr and "sac" in result.stderr


def test_unknown_robot_lists_the_known_ones():
    result = run("actor", "--robot", "no_such_robot")
    assert result.returncode == 2
    assert "unknown robot 'no_such_robot'" in result.stderr and "limo_sim" in result.stderr


def test_unknown_algorithm_field_lists_the_fields():
    result = run("learner", "--set", "no_such_field=1")
    assert result.returncode == 2 and "no_such_field" in result.stderr and "batch_size" in result.stderr


def test_help_is_enough_to_start():
    for program, essential in (("learner", "--algo"), ("actor", "--robot")):
        result = run(program, "--help")
        assert result.returncode == 0 and "Usage" in result.stdout and essential in result.stdout


def test_actor_help_says_what_a_killed_actor_loses_with_and_without_a_spool():
    text = " ".join(run("actor", "--help").stdout.split())
    assert "kill -9 or a crash loses nothing recorded" in text and "WITHOUT --spool a killed or crashed actor" in text


def test_learner_with_a_local_fake_actor_trains_evaluates_and_reports(tmp_path, port):
    result = run(
        "learner", "--port", str(port), "--run-dir", str(tmp_path), "--metrics-port", "0",
        "--max-updates", "60", "--learning-starts", "32", "--publish-every", "10",
        "--local-actor", "fake", "--actor-arg=--time-scale", "--actor-arg=25", "--final-eval", "3",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["updates"] == 60
    assert summary["final_eval_episodes"] == 3
    assert summary["env_steps"] >= 32
    assert (tmp_path / "learning_curve.png").stat().st_size > 1000
    assert list((tmp_path / "checkpoints").glob("ckpt-*/state.pt"))
    assert "final evaluation: " in result.stdout and "(policy: " in result.stdout
    assert summary["evaluated_policy"] == "latest" or (tmp_path / "best_policy.npz").exists()
