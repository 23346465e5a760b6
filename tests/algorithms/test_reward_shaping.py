"""One training reward for every algorithm: the learner shapes rewards once, where it stores data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from algorithm_fixtures import random_batch, state_spec

from common.episodes import load_episodes
from common.types import NEXT_OBS_PREFIX, OBS_PREFIX, Transition, pack_transitions
from learner.algorithms import ALGORITHMS, make_algorithm
from learner.app import Learner, LearnerConfig
from learner.replay.durable import SegmentJournal, restore
from learner.replay.spec import SamplingSpec
from learner.reward_shaping import (
    FAILURE_GAMMA,
    FAILURE_VALUE,
    REWARDS,
    STEP_BIAS,
    apply_reward,
    mean_episode_length,
    shaped_reward,
)

pytestmark = pytest.mark.timeout(120)

DEMO = Path(__file__).resolve().parents[2] / "robots" / "sim" / "demos" / "limo_ball_to_goal.npz"


def test_shaped_reward_pays_nothing_on_success_minus_one_per_step_and_absorbs_a_failure():
    reward = np.array([1.0, 0.0, 0.0], np.float32)  # success, failed termination, ordinary step
    terminated = np.array([True, True, False])
    assert shaped_reward(reward, terminated).tolist() == [0.0, FAILURE_VALUE, -1.0]
    assert FAILURE_VALUE == pytest.approx(STEP_BIAS / (1.0 - FAILURE_GAMMA)) and FAILURE_GAMMA == 0.99


def test_failing_is_never_a_shortcut_for_any_discount_up_to_the_comparisons():
    for gamma in (0.9, 0.95, 0.99):
        paying_forever = -1.0 / (1.0 - gamma)
        assert FAILURE_VALUE <= paying_forever + 1e-9


def test_apply_reward_leaves_the_input_alone_and_refuses_unknown_kinds():
    columns = {"reward": np.array([0.0, 1.0], np.float32), "terminated": np.array([False, True])}
    shaped = apply_reward("shaped", columns)
    assert shaped["reward"].tolist() == [-1.0, 0.0] and columns["reward"].tolist() == [0.0, 1.0]
    assert apply_reward("task", columns)["reward"].tolist() == [0.0, 1.0]
    with pytest.raises(ValueError, match="shaped, task"):
        apply_reward("dense", columns)


def stored_rewards(learner: Learner, demo_ratio: float) -> dict[int, float]:
    """step -> reward of the rows replay holds (demo rows with demo_ratio 1, online rows with 0)."""
    batch = learner.replay.sample(SamplingSpec(512, demo_ratio=demo_ratio), np.random.default_rng(0))
    return dict(zip(batch.extras["step"].tolist(), batch.reward.tolist()))


def failed_episode(columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The demo's rows replayed as an online episode that ends in a failed termination (reward 0)."""
    failed = {name: value.copy() for name, value in columns.items()}
    failed["reward"][:] = 0.0
    failed["episode"][:] = 7
    return failed


@pytest.mark.parametrize("reward", REWARDS)
def test_every_algorithm_trains_on_the_same_rewards_shaped_once(tmp_path, reward):
    """Demos (build) and online batches (store) reach replay with the same rewards whatever the algorithm."""
    spec, demo = load_episodes(DEMO)
    assert demo["terminated"][-1] and demo["reward"][-1] == 1.0
    seen = {}
    for name in ALGORITHMS.names():
        config = LearnerConfig(algo=name, overrides={"hidden_dims": "16,16"}, demo=str(DEMO), replay_capacity=1000,
                               run_dir=str(tmp_path / name), device="cpu", metrics_port=0, reward=reward)  # fmt: skip
        learner = Learner(config)
        learner.build(spec)
        learner.store("actor-1", failed_episode(demo))
        seen[name] = (stored_rewards(learner, 1.0), stored_rewards(learner, 0.0))
    first = next(iter(seen.values()))
    assert all(value == first for value in seen.values()), "algorithms saw different rewards"
    demo_rewards, online_rewards = first
    last = int(demo["step"][-1])
    if reward in ("shaped", "aloe"):  # once: a second shaping would give -1 on success and -2 per step
        failure = FAILURE_VALUE if reward == "shaped" else -float(len(demo["reward"]))  # aloe: one demo episode
        assert demo_rewards[last] == 0.0 and online_rewards[last] == failure
        assert {demo_rewards[s] for s in demo_rewards if s != last} == {-1.0}
    else:
        assert demo_rewards[last] == 1.0 and online_rewards[last] == 0.0
        assert {demo_rewards[s] for s in demo_rewards if s != last} == {0.0}


def as_transitions(columns: dict[str, np.ndarray]) -> list[Transition]:
    """Per-row Transitions of stored columns, as an actor would send them."""
    keys = [name.removeprefix(OBS_PREFIX) for name in columns if name.startswith(OBS_PREFIX)]
    return [
        Transition({k: columns[OBS_PREFIX + k][i] for k in keys}, columns["action"][i], float(columns["reward"][i]),
                   bool(columns["terminated"][i]), bool(columns["truncated"][i]),
                   {k: columns[NEXT_OBS_PREFIX + k][i] for k in keys}, int(columns["episode"][i]),
                   int(columns["step"][i]))
        for i in range(len(columns["reward"]))
    ]  # fmt: skip


def test_a_resumed_learner_shapes_the_durable_journal_once(tmp_path):
    """The journal keeps what actors sent; restoring it through `store` gives the rewards a live run stored."""
    spec, demo = load_episodes(DEMO)
    journal = SegmentJournal(tmp_path / "journal", 1000, fsync=False)
    journal.append("actor-1", 1, pack_transitions(as_transitions(failed_episode(demo))))
    journal.close()
    live, resumed = (Learner(LearnerConfig(algo="sac", overrides={"hidden_dims": "16,16"}, replay_capacity=1000,
                                           run_dir=str(tmp_path / name), device="cpu", metrics_port=0))
                     for name in ("live", "resumed"))  # fmt: skip
    for learner in (live, resumed):
        learner.build(spec)
    live.store("actor-1", failed_episode(demo))
    restore(tmp_path / "journal", spec, resumed.store)
    assert stored_rewards(resumed, 0.0) == stored_rewards(live, 0.0)
    assert set(stored_rewards(resumed, 0.0).values()) == {-1.0, FAILURE_VALUE}


@pytest.mark.parametrize("name", ALGORITHMS.names())
def test_no_algorithm_reshapes_the_stored_reward(name):
    """On terminal rows every critic target is the batch's reward itself: nothing is added inside an update."""
    algorithm = make_algorithm(name, state_spec(), {"batch_size": 40, "hidden_dims": "16,16"})
    batch = random_batch(state_spec(), 40, seed=3, horizon=algorithm.sampling.horizon)
    batch.reward[:], batch.terminated[:] = 0.5, 1.0
    if "n_step_return" in batch.extras:  # h-step sequences: replay's sum of the stored rewards, nothing after
        batch.extras["n_step_return"][:], batch.extras["bootstrap"][:] = 0.5, 0.0
    metrics = algorithm.update(batch)
    if not algorithm.uses_stored_reward:  # inverse RL (CSIL): its own reward, whatever replay stored
        other = make_algorithm(name, state_spec(), {"batch_size": 40, "hidden_dims": "16,16"})
        batch.reward[:] = -7.0
        assert other.update(batch)["target_q_mean"] == metrics["target_q_mean"]
        return
    assert metrics["target_q_mean"] == pytest.approx(0.5)


def test_the_aloe_reward_costs_a_failure_the_mean_episode_length_and_needs_it():
    columns = {"reward": np.array([0.0, 0.0, 1.0, 0.0], np.float32), "terminated": np.array([False, True, True, False]),
               "episode": np.array([0, 0, 1, 2])}  # fmt: skip
    assert mean_episode_length(columns) == pytest.approx(4 / 3)
    assert apply_reward("aloe", columns, 40.0)["reward"].tolist() == [-1.0, -40.0, 0.0, -1.0]
    for cost in (None, 0.0):
        with pytest.raises(ValueError, match="C_fail"):
            apply_reward("aloe", columns, cost)
    with pytest.raises(ValueError, match="demonstrations"):
        mean_episode_length({"episode": np.zeros(0, np.int64)})
    with pytest.raises(ValueError, match="--demo"):
        Learner(LearnerConfig(algo="aloe", reward="aloe", metrics_port=0))
