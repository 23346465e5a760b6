"""The local run's stop rule confirms a version at the target on a fresh block before it stops the run."""

from __future__ import annotations

import time

import numpy as np
import pytest
from replay_world import SPEC, Row, to_columns

from common.protocol import EpisodeSummary
from learner.algorithms import make_algorithm
from learner.app import Learner, LearnerConfig, LocalRunConfig
from learner.best_policy import BestPolicy, load_weights
from learner.replay import ReplayBuffer
from learner.stop_rule import StopRule
from learner.train_loop import TrainConfig, TrainLoop
from tests.conftest import RecordingServer

pytestmark = pytest.mark.timeout(60)


def training(tmp_path) -> tuple[TrainLoop, BestPolicy, list]:
    """A SAC loop publishing after every update to `published` and to the best-policy record, as the learner does."""
    best, published = BestPolicy(tmp_path / "best.npz"), []

    def on_publish(weights) -> None:
        published.append(weights)
        best.remember(weights)

    algorithm = make_algorithm("sac", SPEC, {"batch_size": "8", "hidden_dims": "16,16"}, seed=0)
    replay = ReplayBuffer(SPEC, 100, gamma=0.99)
    loop = TrainLoop(algorithm, "sac", {}, replay, on_publish, TrainConfig(learning_starts=4, publish_every=1))
    replay.add_online(to_columns([Row("a", 0, step, 0.0, step == 49, False, False) for step in range(50)], 0), "a")
    loop.note_received(50)
    return loop, best, published


def evaluate(best: BestPolicy, version: int, successes: int, failures: int = 0) -> None:
    for index, success in enumerate([True] * successes + [False] * failures):
        best.observe(EpisodeSummary(index, 10, 0.0, success, True, "task", version))


def confirming_v1(tmp_path) -> tuple[TrainLoop, BestPolicy, list, StopRule]:
    """Training where v1 has scored 20/20 and the rule has republished it as v2 to confirm it."""
    loop, best, published = training(tmp_path)
    rule = StopRule(best, target=1.0, window=20)
    loop.step()
    evaluate(best, 1, 20)
    assert rule.check(loop) is None and rule.confirming == (1, 2)
    return loop, best, published, rule


def test_a_version_at_the_target_stops_the_run_only_after_a_fresh_block_of_it_reaches_it_too(tmp_path):
    loop, best, published = training(tmp_path)
    rule = StopRule(best, target=1.0, window=20)
    assert loop.step() and published[-1].version == 1
    evaluate(best, 1, 20)
    assert rule.check(loop) is None, "one lucky block does not stop the run"
    confirmation = published[-1]
    assert confirmation.version == 2 and confirmation.tensors.keys() == published[0].tensors.keys()
    assert all(np.array_equal(confirmation.tensors[k], published[0].tensors[k]) for k in confirmation.tensors)
    assert loop.step() and loop.step() and published[-1] is confirmation, "nothing newer while v2 is evaluated"
    evaluate(best, 2, 19)
    assert rule.check(loop) is None, "the fresh block is not complete"
    evaluate(best, 2, 1)
    stopped = rule.check(loop)
    assert (stopped.version, stopped.successes, stopped.episodes) == (2, 20, 20)
    assert loop.step() and published[-1].version == 3, "publication goes on"


def test_only_the_first_fresh_block_decides_though_the_evaluator_may_start_another_on_the_held_version(tmp_path):
    loop, best, _, rule = confirming_v1(tmp_path)
    evaluate(best, 2, 20, failures=1)  # the next block's first episode arrived before the once-a-second check
    assert rule.check(loop).version == 2


def test_a_version_that_does_not_hold_up_never_stops_the_run_and_training_publishes_again(tmp_path):
    loop, best, published, rule = confirming_v1(tmp_path)
    evaluate(best, 2, 16, failures=4)  # a stopped-on 20/20 scored so on its final evaluation
    assert rule.check(loop) is None and not loop.hold_publication
    assert rule.check(loop) is None and published[-1].version == 2, "v1's lucky block is not confirmed again"
    assert loop.step() and published[-1].version == 3
    evaluate(best, 3, 20)
    assert rule.check(loop) is None and published[-1].version == 4, "a later version is confirmed in its turn"


def test_without_confirmation_the_first_version_at_the_target_stops_the_run(tmp_path):
    loop, best, published = training(tmp_path)
    loop.step()
    evaluate(best, 1, 20)
    assert StopRule(best, target=1.0, window=20, confirm=False).check(loop).version == 1
    assert len(published) == 1 and not loop.hold_publication


@pytest.mark.parametrize("algo, confirms", [("sac", True), ("q2rl", False)])
def test_the_learner_confirms_only_once_online_training_runs(tmp_path, algo, confirms):
    """Q2RL starts with a BC stage and a rollouts stage: a version republished there would never count as the
    stage's rollouts (they must act with the stage's own version), so the rule waits for the online stage."""
    config = LearnerConfig(algo=algo, overrides={"hidden_dims": "16,16"}, run_dir=str(tmp_path), device="cpu",
                           metrics_port=0, local=LocalRunConfig(stop_at_success=1.0))  # fmt: skip
    learner = Learner(config)
    learner.server = RecordingServer()
    learner.build(learner.server.spec)
    learner.loop.publish()
    for index in range(20):
        learner.on_episode("eval", EpisodeSummary(index, 10, 0.0, True, True, "task", 1))
    learner._check_stop(time.monotonic(), [])
    assert not learner.stop.is_set()
    assert len(learner.server.published) == (2 if confirms else 1)



def test_the_confirmed_version_stays_the_runs_policy_whatever_evaluation_arrives_after_the_stop(tmp_path):
    """A run stopped on v1 confirmed as v2; then another version's block of 20/20 (it began before the hold)
    and one failure of the confirmation version's next block arrived. The lower-bound ranking alone would now
    pick that unconfirmed version (20/20 beats 20/21): the confirmed one must stay the run's policy."""
    loop, best, published, rule = confirming_v1(tmp_path)
    evaluate(best, 2, 20)
    stopped = rule.check(loop)
    best.settle(stopped)
    evaluate(best, 2, 0, failures=1)
    assert loop.step() and published[-1].version == 3
    evaluate(best, 3, 20)
    assert best.best.version == 2 and best.best_weights.version == 2
    assert load_weights(tmp_path / "best.npz")[1].version == 2, "the file a user deploys is the confirmed policy"


def test_without_a_confirmed_version_settling_keeps_the_best_so_far_against_the_final_evaluation(tmp_path):
    loop, best, published = training(tmp_path)
    loop.step()
    evaluate(best, 1, 15, failures=5)
    best.settle()
    assert loop.step()
    evaluate(best, 2, 20)  # e.g. the final evaluation's episodes, tallied under the version that republished it
    assert best.best.version == 1


def test_a_run_that_evaluated_nothing_before_it_stopped_keeps_the_final_evaluations_version(tmp_path):
    loop, best, published = training(tmp_path)
    loop.step()
    best.settle()  # no evaluator: nothing to settle on
    evaluate(best, 1, 1)  # the final evaluation's one episode
    assert best.best.version == 1 and (tmp_path / "best.npz").exists()
