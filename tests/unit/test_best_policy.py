"""The learner keeps the best-evaluated policy version, saves it, and the final evaluation runs it."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pytest
import torch

from common.protocol import EpisodeSummary, Weights
from learner.app import Learner, LearnerConfig, LocalRunConfig
from learner.best_policy import BestPolicy, Tally, load_weights, save_weights, saved_spec
from robots.fake import FakeRobot
from tests.conftest import RecordingServer

pytestmark = pytest.mark.timeout(60)


def weights(version: int, value: float = 0.0, size: int = 4) -> Weights:
    return Weights(version, "sac", "{}", "hash", {"layer": np.full(size, value or version, np.float32)})


def evaluate(best: BestPolicy, version: int, outcomes: list[bool], evaluation: bool = True) -> None:
    for success in outcomes:
        best.observe(EpisodeSummary(0, 10, 0.0, success, evaluation, "task", version))


def test_the_lower_bound_ranks_more_evidence_higher_at_the_same_rate():
    assert Tally(1, 20, 20).lower_bound > Tally(2, 5, 5).lower_bound > Tally(3, 4, 5).lower_bound
    assert Tally(4, 5, 5).lower_bound > Tally(5, 1, 1).lower_bound > Tally(6, 0, 0).lower_bound == 0.0
    assert 0.6 < Tally(7, 17, 20).lower_bound < 0.7  # 17/20: about 0.64


def test_the_best_version_is_saved_and_a_newer_equal_one_replaces_it(tmp_path):
    best = BestPolicy(tmp_path / "best.npz")
    for version in range(1, 6):
        best.remember(weights(version))
    evaluate(best, 2, [True] * 5)
    evaluate(best, 4, [True, False, True, True, True])
    evaluate(best, 3, [True] * 5, evaluation=False)  # training episodes say nothing about a version
    saved, tally = load_weights(tmp_path / "best.npz")
    assert (saved.version, tally.successes, tally.episodes) == (2, 5, 5)
    assert np.array_equal(saved.tensors["layer"], weights(2).tensors["layer"])
    evaluate(best, 5, [True] * 5)
    assert load_weights(tmp_path / "best.npz")[0].version == 5, "on a tie the newer (longer-trained) version wins"
    evaluate(best, 5, [False, False])
    assert load_weights(tmp_path / "best.npz")[1].episodes == 5 and best.best.version == 2, "v5 fell behind v2"


def test_versions_pushed_out_of_the_byte_budget_cannot_become_the_best(tmp_path):
    best = BestPolicy(tmp_path / "best.npz", keep_bytes=3 * 16)  # three 4-float versions
    for version in range(1, 7):
        best.remember(weights(version))
    evaluate(best, 1, [True] * 5)
    assert best.best is None and not (tmp_path / "best.npz").exists()
    evaluate(best, 6, [True])
    for version in range(7, 12):  # the best's own weights stay even after they leave the budget
        best.remember(weights(version))
    evaluate(best, 6, [True])
    assert best.best.version == 6 and best.best.episodes == 2


def test_the_stop_rule_needs_one_version_at_the_target_over_enough_of_its_own_episodes(tmp_path):
    best = BestPolicy(tmp_path / "best.npz")
    for version in range(1, 5):
        best.remember(weights(version))
    for version in range(1, 5):  # 20 straight successes, but spread over four versions
        evaluate(best, version, [True] * 5)
    assert best.reached(1.0, 20) is None
    evaluate(best, 4, [True] * 14 + [False])
    assert best.reached(1.0, 20) is None and best.reached(0.9, 20).version == 4  # 19/20
    evaluate(best, 3, [True] * 15)
    assert best.reached(1.0, 20).version == 3


def test_a_resumed_run_keeps_its_saved_best_against_a_worse_newcomer(tmp_path):
    first = BestPolicy(tmp_path / "best.npz")
    first.remember(weights(3))
    evaluate(first, 3, [True] * 5)
    resumed = BestPolicy(tmp_path / "best.npz")
    resumed.load_saved()
    assert resumed.reached(1.0, 5) is None, "a resumed run trains on; its saved 5/5 does not stop it"
    resumed.remember(weights(9))
    evaluate(resumed, 9, [True, True, False])
    assert load_weights(tmp_path / "best.npz")[0].version == 3


@pytest.mark.parametrize("final_policy", ["best", "latest"])
def test_the_final_evaluation_runs_the_best_version_republished_as_the_newest(tmp_path, final_policy):
    config = LearnerConfig(algo="sac", overrides={"hidden_dims": "16,16"}, run_dir=str(tmp_path), device="cpu",
                           metrics_port=0, local=LocalRunConfig(final_policy=final_policy))  # fmt: skip
    learner = Learner(config)
    learner.server = RecordingServer()
    learner.build(learner.server.spec)
    learner.loop.publish()  # v1
    with torch.no_grad():
        for parameter in learner.loop.algorithm.policy_state_dict().values():
            parameter.add_(1.0)
    learner.loop.publish()  # v2: different weights, and it evaluates worse
    episode = iter(range(100))
    for version, outcomes in ((1, [True] * 5), (2, [True, False, False, True, False])):
        for success in outcomes:
            learner.on_episode("a1", EpisodeSummary(next(episode), 10, 0.0, success, True, "task", version))
    chosen = learner._publish_final_policy()
    final = learner.server.published[-1]
    assert final.version == 3, "actors take only newer versions"
    expected = learner.server.published[0 if final_policy == "best" else 1].tensors
    assert all(np.array_equal(final.tensors[k], expected[k]) for k in expected)
    assert chosen["evaluated_policy"].startswith(final_policy) and chosen["best_policy_npz"].endswith("best_policy.npz")


def saved_policy(path, spec, version: int = 7) -> None:
    """A SAC policy for `spec`, saved the way the learner saves its best."""
    import json

    from learner.algorithms import config_from_overrides, config_to_dict, make_algorithm

    overrides = {"hidden_dims": "16,16"}
    algorithm = make_algorithm("sac", spec, overrides, torch.device("cpu"), 0)
    tensors = {k: v.detach().numpy().copy() for k, v in algorithm.policy_state_dict().items()}
    config_json = json.dumps(config_to_dict(config_from_overrides("sac", overrides)), sort_keys=True)
    save_weights(Weights(version, "sac", config_json, spec.spec_hash, tensors), path, Tally(version, 5, 5), spec)


def test_actor_runs_a_saved_best_policy_without_a_learner(tmp_path):
    path = tmp_path / "best_policy.npz"
    saved_policy(path, FakeRobot().spec)
    result = subprocess.run([sys.executable, "-m", "actor", "--robot", "fake", "--policy", str(path),
                             "--episodes", "2", "--time-scale", "25", "--metrics-port", "0", "--no-console"],
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "v7: 5/5 evaluation successes" in result.stderr and "2 episodes" in result.stderr


def test_a_saved_policy_for_another_robot_is_refused_before_anything_moves(tmp_path):
    # The spec hash ignores the robot's name; a different control rate is a different robot to a policy.
    other = FakeRobot().spec.__class__.from_json(FakeRobot().spec.to_json().replace('"fake"', '"other_robot"'))
    other = dataclasses.replace(other, control_hz=other.control_hz * 2)
    saved_policy(tmp_path / "other.npz", other)
    result = subprocess.run([sys.executable, "-m", "actor", "--robot", "fake", "--policy", str(tmp_path / "other.npz"),
                             "--episodes", "1", "--metrics-port", "0", "--no-console"],
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 2 and f"trained for robot spec other_robot {other.spec_hash}" in result.stderr
    assert "control rate: expected" in result.stderr and "Traceback" not in result.stderr


def test_a_saved_policy_names_its_spec_and_the_name_alone_does_not_matter(tmp_path):
    spec = FakeRobot().spec
    renamed = dataclasses.replace(spec, name="fake_twin", metadata={"simulated": "true"})
    saved_policy(tmp_path / "best.npz", renamed)
    assert saved_spec(tmp_path / "best.npz") == renamed and renamed.spec_hash == spec.spec_hash

