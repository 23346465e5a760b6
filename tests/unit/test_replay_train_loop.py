"""The training loop waits, instead of failing, while replay has rows but none the algorithm may draw yet."""

from __future__ import annotations

import pytest
from replay_world import SPEC, Row, to_columns

from learner.algorithms import make_algorithm
from learner.replay import ReplayBuffer
from learner.train_loop import TrainConfig, TrainLoop

pytestmark = pytest.mark.timeout(60)


def test_cal_ql_waits_for_its_first_finished_episode_then_trains():
    algorithm = make_algorithm("cal_ql", SPEC, {"batch_size": "8", "hidden_dims": "16,16"}, seed=0)
    assert algorithm.sampling.returns_to_go  # Cal-QL reads replay's returns-to-go
    replay = ReplayBuffer(SPEC, 100, gamma=algorithm.sampling.gamma)
    loop = TrainLoop(algorithm, "cal_ql", {}, replay, lambda _weights: None, TrainConfig(learning_starts=4))
    rows = [Row("a", 0, step, 0.0, step == 5, False, False) for step in range(6)]
    replay.add_online(to_columns(rows[:5], 0), "a")
    loop.note_received(5)
    assert loop.updates_allowed() > 0 and not loop.step()  # allowed by the count, but no episode has ended
    replay.add_online(to_columns(rows[5:], 5), "a")
    loop.note_received(1)
    assert loop.step() and loop.updates == 1


def test_every_publish_records_the_actors_metrics_of_an_algorithm_that_delays_its_actor():
    """CSIL++ steps its actor on every other update here; a publish after an update without an actor step
    still records the actor's latest loss (train_metrics.csv once had it missing in half its rows)."""
    small = {"batch_size": "8", "hidden_dims": "16,16", "critic_hidden_dims": "16,16", "stationary_width": "16"}
    algorithm = make_algorithm("csil_pp", SPEC, {**small, "policy_delay": "2"}, seed=0)
    replay = ReplayBuffer(SPEC, 100, gamma=algorithm.sampling.gamma)
    replay.add_demo(to_columns([Row("demo", 0, step, 0.0, step == 7, False, False) for step in range(8)], 0))
    loop = TrainLoop(algorithm, "csil_pp", {}, replay, lambda _weights: None,
                     TrainConfig(learning_starts=1, publish_every=2))  # fmt: skip
    replay.add_online(to_columns([Row("a", 0, step, 0.0, False, False, False) for step in range(8)], 100), "a")
    loop.note_received(8)
    while loop.step():
        pass
    assert [updates for updates, _, _ in loop.history] == [1, 2, 4, 6, 8]
    assert all("actor_loss" in values and "critic_loss" in values for _, _, values in loop.history)
