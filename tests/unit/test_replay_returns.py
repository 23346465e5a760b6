"""Returns-to-go kept by replay: equal to a brute-force sum per episode, drawn only once an episode ended."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from replay_world import SPEC, Row, build_world, to_columns

from learner.replay import NothingToSample, ReplayBuffer, SamplingSpec, returns_to_go

pytestmark = pytest.mark.timeout(300)

GAMMA = 0.9


def brute_force(rewards: list[float], terminated: bool, gamma: float) -> list[float]:
    if not terminated and gamma < 1 and len(set(rewards)) == 1:
        return [rewards[0] / (1 - gamma)] * len(rewards)
    return [sum(gamma**k * r for k, r in enumerate(rewards[t:])) for t in range(len(rewards))]


@settings(max_examples=200, deadline=None)
@given(rewards=st.lists(st.sampled_from([-1.0, 0.0, 1.0, 2.5]), min_size=1, max_size=40), terminated=st.booleans(),
       gamma=st.sampled_from([0.5, 0.9, 0.99, 1.0]))  # fmt: skip
def test_returns_to_go_equal_the_brute_force_sum(rewards, terminated, gamma):
    expected = brute_force(rewards, terminated, gamma)
    assert returns_to_go(np.array(rewards), terminated, gamma).tolist() == pytest.approx(expected, rel=1e-5, abs=1e-4)


def test_a_sparse_episode_that_never_succeeded_is_worth_never_finishing():
    assert returns_to_go(np.array([-1.0] * 3), False, 0.99).tolist() == pytest.approx([-100.0] * 3)
    assert returns_to_go(np.array([-1.0, -1.0, 0.0]), True, 0.9).tolist() == pytest.approx([-1.9, -1.0, 0.0])
    assert returns_to_go(np.array([-1.0, 2.0]), False, 0.5).tolist() == pytest.approx([0.0, 2.0])  # tail 0
    assert returns_to_go(np.array([-1.0] * 3), True, 0.5).tolist() == pytest.approx([-1.75, -1.5, -1.0])


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), actors=st.integers(1, 4), capacity=st.integers(4, 250),
       episodes=st.integers(1, 6), max_length=st.integers(1, 25), max_batch=st.integers(1, 12))  # fmt: skip
def test_sampled_returns_equal_the_brute_force_model_and_running_episodes_wait(seed, actors, capacity, episodes,
                                                                             max_length, max_batch):  # fmt: skip
    world = build_world(seed, actors, capacity, episodes, max_length, max_batch, GAMMA)
    sampling = SamplingSpec(48, gamma=GAMMA, returns_to_go=True, demo_ratio=0.5)
    finished = {name: sum(model.stored(m) and model.mc_return(m, GAMMA) is not None for m in range(len(model.rows)))
                for name, model in (("online", world.online), ("demo", world.demo))}  # fmt: skip
    # Every finished stored row is drawable (no episode waits forever), and no other row is.
    assert (world.buffer._online.returns.count, world.buffer._demo.returns.count) == (finished["online"],
                                                                                      finished["demo"])  # fmt: skip
    rng = np.random.default_rng(seed)
    if not any(finished.values()):
        with pytest.raises(NothingToSample, match="finished episodes"):
            world.buffer.sample(sampling, rng)
        return
    batch = world.buffer.sample(sampling, rng)
    for marker, value, is_demo in zip(batch.extras["policy_version"], batch.extras["mc_return"], batch.is_demo):
        model, row = world.model_of(int(marker))
        assert model.stored(row) and (model is world.demo) == bool(is_demo)
        expected = model.mc_return(row, GAMMA)
        assert expected is not None, "a row of a running episode was drawn"
        assert value == pytest.approx(expected, rel=1e-5, abs=1e-4)


def _rows(actor: str, episode: int, rewards: list[float], end: str) -> list[Row]:
    last = len(rewards) - 1
    return [Row(actor, episode, step, r, step == last and end == "terminated", step == last and end == "truncated",
                False) for step, r in enumerate(rewards)]  # fmt: skip


def test_an_episode_arriving_in_pieces_gets_the_returns_of_the_whole():
    buffer = ReplayBuffer(SPEC, 100, gamma=0.5)
    rows = _rows("a", 3, [1.0, 0.0, 2.0, 4.0], "terminated")
    sampling = SamplingSpec(16, gamma=0.5, returns_to_go=True, demo_ratio=0.0)
    for start, stop in ((0, 1), (1, 3)):
        buffer.add_online(to_columns(rows[start:stop], start), "a")
        with pytest.raises(NothingToSample, match="running episodes wait for their end"):
            buffer.sample(sampling, np.random.default_rng(0))
    buffer.add_online(to_columns(rows[3:], 3), "a")
    batch = buffer.sample(sampling, np.random.default_rng(0))
    expected = brute_force([1.0, 0.0, 2.0, 4.0], True, 0.5)
    for marker, value in zip(batch.extras["policy_version"], batch.extras["mc_return"]):
        assert value == pytest.approx(expected[marker])


def test_an_episode_abandoned_by_a_restarted_actor_is_valued_as_truncated():
    buffer = ReplayBuffer(SPEC, 100, gamma=0.99)
    buffer.add_online(to_columns(_rows("a", 4, [-1.0] * 3, "running"), 0), "a")
    buffer.add_online(to_columns(_rows("a", 9, [-1.0] * 2, "running"), 3), "a")  # a new episode, the old one unended
    batch = buffer.sample(SamplingSpec(8, gamma=0.99, returns_to_go=True), np.random.default_rng(0))
    assert set(batch.extras["policy_version"].tolist()) == {0, 1, 2}  # the new episode is still running
    assert batch.extras["mc_return"].tolist() == pytest.approx([-100.0] * 8)


def test_demo_rows_fill_the_batch_while_no_online_episode_has_ended():
    buffer = ReplayBuffer(SPEC, 100, gamma=0.9)
    buffer.add_demo(to_columns(_rows("demo", 0, [0.0, 1.0], "terminated"), 1000))
    buffer.add_online(to_columns(_rows("a", 0, [0.0] * 5, "running"), 0), "a")
    batch = buffer.sample(SamplingSpec(8, gamma=0.9, returns_to_go=True, demo_ratio=0.5), np.random.default_rng(0))
    assert batch.is_demo.tolist() == [1.0] * 8 and set(batch.extras["policy_version"].tolist()) <= {1000, 1001}
    plain = buffer.sample(SamplingSpec(8, demo_ratio=0.5), np.random.default_rng(0))
    assert plain.is_demo.sum() == 4 and "mc_return" not in plain.extras


def test_evicted_rows_lose_their_return_and_the_count_stays_true():
    buffer = ReplayBuffer(SPEC, 5, gamma=0.9)
    for episode in range(4):
        buffer.add_online(to_columns(_rows("a", episode, [float(episode)] * 3, "terminated"), 3 * episode), "a")
    online = buffer._online
    assert online.returns.count == int(online.returns.known.sum()) == 5
    batch = buffer.sample(SamplingSpec(32, gamma=0.9, returns_to_go=True), np.random.default_rng(1))
    assert set(batch.extras["policy_version"].tolist()) <= set(range(7, 12))
    assert batch.extras["mc_return"][batch.extras["policy_version"] == 9].tolist() == pytest.approx(
        [3.0 + 0.9 * 3 + 0.81 * 3] * int((batch.extras["policy_version"] == 9).sum()))


def test_a_spec_with_another_gamma_than_replay_is_refused_clearly():
    buffer = ReplayBuffer(SPEC, 10, gamma=0.99)
    buffer.add_online(to_columns(_rows("a", 0, [0.0], "terminated"), 0), "a")
    with pytest.raises(ValueError, match="gamma 0.99 .* asks for gamma 0.9"):
        buffer.sample(SamplingSpec(4, gamma=0.9, returns_to_go=True), np.random.default_rng(0))
    assert buffer.sample(SamplingSpec(4, gamma=0.9), np.random.default_rng(0)).size == 4  # no returns: any gamma


def test_a_batch_longer_than_the_ring_still_counts_its_dropped_head_in_the_returns():
    buffer = ReplayBuffer(SPEC, 2, gamma=0.9)
    buffer.add_online(to_columns(_rows("a", 0, [5.0, 1.0, 1.0, 1.0], "truncated"), 0), "a")  # rows 0, 1 dropped
    batch = buffer.sample(SamplingSpec(16, gamma=0.9, returns_to_go=True), np.random.default_rng(0))
    # Not an all-equal episode (its first reward was 5), so the tail after truncation is 0, not 1 / (1 - 0.9).
    expected = {2: 1.9, 3: 1.0}
    assert [expected[m] for m in batch.extras["policy_version"]] == pytest.approx(batch.extras["mc_return"].tolist())
