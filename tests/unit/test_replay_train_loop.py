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
