"""h-step sequences from replay: never past an episode's end, whatever the actors, losses and evictions.

Property tests check every sampled sequence against a brute-force model of the stored rows
(`replay_world.Model`); a few hand-built cases show the layout on numbers one can check by eye.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from replay_world import SPEC, Row, World, action_markers, build_world, to_columns

from learner.replay import NothingToSample, ReplayBuffer, SamplingSpec

pytestmark = pytest.mark.timeout(300)

GAMMA = 0.9
worlds = dict(
    seed=st.integers(0, 2**32 - 1),
    actors=st.integers(1, 4),
    capacity=st.integers(4, 250),
    episodes=st.integers(1, 6),
    max_length=st.integers(1, 25),
    max_batch=st.integers(1, 12),
)


def check_sequences(world: World, batch, sampling: SamplingSpec) -> None:
    """Every sequence in `batch` is exactly what the model says starts at its first row."""
    h = sampling.horizon
    markers = action_markers(batch.action)  # each step's row marker
    assert markers.shape == batch.reward.shape == batch.extras["valid"].shape == (sampling.batch_size, h)
    for b in range(sampling.batch_size):
        model, start = world.model_of(int(markers[b, 0]))
        assert model.stored(start) and (model is world.demo) == bool(batch.is_demo[b])
        expected = model.sequence(start, h)
        n, offset = len(expected), int(markers[b, 0]) - start
        rows = [model.rows[m] for m in expected]
        assert batch.extras["valid"][b].tolist() == [1.0] * n + [0.0] * (h - n)
        assert markers[b].tolist() == [m + offset for m in expected] + [expected[-1] + offset] * (h - n)
        # One actor's one episode, step by step, and nothing after its end.
        assert {(r.actor, r.episode) for r in rows} == {(rows[0].actor, rows[0].episode)}
        assert [r.step for r in rows] == list(range(rows[0].step, rows[0].step + n))
        assert not any(r.ends for r in rows[:-1])
        assert batch.extras["intervention"][b, :n].tolist() == [r.intervention for r in rows]
        assert batch.observation["state"][b, 0] == start + offset
        assert batch.next_observation["state"][b, 0] == expected[-1] + offset + 0.5
        discounted = sum(sampling.gamma**k * r.reward for k, r in enumerate(rows))
        assert batch.extras["n_step_return"][b] == pytest.approx(discounted, rel=1e-5, abs=1e-5)
        bootstrap = 0.0 if rows[-1].terminated else sampling.gamma**n
        assert batch.extras["bootstrap"][b] == pytest.approx(bootstrap, rel=1e-6)
        if sampling.full_sequences:
            assert n == h
        if sampling.returns_to_go:
            assert batch.extras["mc_return"][b] == pytest.approx(model.mc_return(start, GAMMA), rel=1e-5, abs=1e-4)


@settings(max_examples=60, deadline=None)
@given(**worlds, horizon=st.integers(2, 7), demo_ratio=st.sampled_from([0.0, 0.25, 0.5, 1.0]))
def test_sequences_match_the_brute_force_model(seed, actors, capacity, episodes, max_length, max_batch, horizon,
                                               demo_ratio):  # fmt: skip
    world = build_world(seed, actors, capacity, episodes, max_length, max_batch, GAMMA)
    rng = np.random.default_rng(seed)
    sampling = SamplingSpec(32, horizon=horizon, demo_ratio=demo_ratio, gamma=GAMMA)
    for _ in range(3):
        check_sequences(world, world.buffer.sample(sampling, rng), sampling)


@settings(max_examples=40, deadline=None)
@given(**worlds, horizon=st.integers(2, 6), returns_to_go=st.booleans())
def test_full_sequences_and_returns_to_go_draw_only_what_they_allow(seed, actors, capacity, episodes, max_length,
                                                                   max_batch, horizon, returns_to_go):  # fmt: skip
    world = build_world(seed, actors, capacity, episodes, max_length, max_batch, GAMMA)
    sampling = SamplingSpec(32, horizon=horizon, gamma=GAMMA, full_sequences=True, returns_to_go=returns_to_go)
    rng = np.random.default_rng(seed)
    allowed = [
        (model, m) for model in (world.online, world.demo) for m in range(len(model.rows))
        if model.stored(m) and len(model.sequence(m, horizon)) == horizon
        and (not returns_to_go or model.mc_return(m, GAMMA) is not None)
    ]  # fmt: skip
    if not allowed:
        with pytest.raises(NothingToSample, match="no replay row can start a batch"):
            world.buffer.sample(sampling, rng)
        return
    check_sequences(world, world.buffer.sample(sampling, rng), sampling)


def _episode(actor: str, episode: int, rewards: list[float], end: str = "terminated") -> list[Row]:
    last = len(rewards) - 1
    return [Row(actor, episode, step, r, step == last and end == "terminated", step == last and end == "truncated",
                False) for step, r in enumerate(rewards)]  # fmt: skip


def test_a_sequence_stops_at_a_termination_with_no_bootstrap():
    """The reference check of algorithms.md §6 with the steps after the end masked out (we do not sum them)."""
    buffer = ReplayBuffer(SPEC, 20)
    rows = _episode("a", 0, [1.0, 0.0, 2.0]) + _episode("a", 1, [0.0, 3.0])
    buffer.add_online(to_columns(rows, 0), "a")
    sampling = SamplingSpec(1, horizon=5, gamma=0.99)
    batch = next(b for b in (buffer.sample(sampling, np.random.default_rng(s)) for s in range(100))
                 if action_markers(b.action)[0, 0] == 0)  # fmt: skip
    assert batch.extras["valid"][0].tolist() == [1, 1, 1, 0, 0]
    assert batch.extras["n_step_return"][0] == pytest.approx(1 + 0.99**2 * 2)
    assert batch.extras["bootstrap"][0] == 0.0 and batch.next_observation["state"][0, 0] == 2.5
    assert batch.reward[0].tolist() == [1, 0, 2, 2, 2]  # padding repeats the last valid step


def test_two_actors_with_the_same_episode_ids_never_mix_and_a_sequence_grows_as_its_steps_arrive():
    buffer = ReplayBuffer(SPEC, 50)
    a, b = _episode("a", 7, [1.0] * 6, "truncated"), _episode("b", 7, [2.0] * 6, "truncated")
    buffer.add_online(to_columns(a[:2], 0), "a")
    buffer.add_online(to_columns(b[:3], 100), "b")
    sampling = SamplingSpec(64, horizon=4, gamma=0.5, demo_ratio=0.0)

    def longest_from_a() -> list[int]:
        batch = buffer.sample(sampling, np.random.default_rng(0))
        markers = action_markers(batch.action)
        first = markers[:, 0] == 0
        return markers[first][0, : int(batch.extras["valid"][first][0].sum())].tolist()

    assert longest_from_a() == [0, 1]  # step 2 has not arrived: the sequence stops, nothing from actor b
    buffer.add_online(to_columns(a[2:], 2), "a")
    assert longest_from_a() == [0, 1, 2, 3]


def test_an_evicted_successor_is_never_followed():
    buffer = ReplayBuffer(SPEC, 4)
    rows = _episode("a", 0, [0.0] * 10, "truncated")
    for i in range(10):
        buffer.add_online(to_columns(rows[i : i + 1], i), "a")
    batch = buffer.sample(SamplingSpec(64, horizon=6, demo_ratio=0.0), np.random.default_rng(0))
    assert set(action_markers(batch.action)[:, 0].tolist()) <= {6, 7, 8, 9}
    for markers, valid in zip(action_markers(batch.action), batch.extras["valid"]):
        assert markers[valid > 0].tolist() == list(range(markers[0], 10))


def test_a_sequence_batch_carries_what_updates_read_and_no_bookkeeping():
    """The layout of `SamplingSpec`: per-step action/reward/terminated/intervention, first observation,
    bootstrap state, the masks and returns; episode, step, policy_version, ... only in transition batches."""
    buffer = ReplayBuffer(SPEC, 20)
    buffer.add_online(to_columns(_episode("a", 0, [1.0, 0.0, 2.0]), 0), "a")
    for returns_to_go, more in ((False, set()), (True, {"mc_return"})):
        sampling = SamplingSpec(4, horizon=3, demo_ratio=0.0, returns_to_go=returns_to_go)
        batch = buffer.sample(sampling, np.random.default_rng(0))
        assert set(batch.extras) == {"intervention", "valid", "n_step_return", "bootstrap"} | more
        assert batch.action.shape == (4, 3, 2) and batch.reward.shape == batch.terminated.shape == (4, 3)
        assert batch.observation["state"].shape == batch.next_observation["state"].shape == (4, 2)
        assert batch.extras["intervention"].shape == (4, 3) and batch.is_demo.shape == (4,)
    transitions = buffer.sample(SamplingSpec(4, demo_ratio=0.0), np.random.default_rng(0))
    assert {"episode", "step", "policy_version", "truncated", "evaluation", "proposal"} <= set(transitions.extras)


def test_without_a_filter_transitions_are_drawn_exactly_as_before():
    """Horizon 1 keeps today's rows-per-generator draw (rows by age), so transition batches are unchanged."""
    buffer = ReplayBuffer(SPEC, 8, demo_capacity=8)
    buffer.add_online(to_columns(_episode("a", 0, [0.0] * 5, "running"), 0), "a")
    buffer.add_demo(to_columns(_episode("demo", 0, [0.0] * 3), 100))
    batch = buffer.sample(SamplingSpec(10, demo_ratio=0.3), np.random.default_rng(5))
    rng = np.random.default_rng(5)
    demo, online = rng.integers(0, 3, 3), rng.integers(0, 5, 7)
    assert batch.extras["policy_version"].tolist() == [100 + i for i in demo] + online.tolist()


def test_a_link_into_an_overwritten_slot_is_cut_not_followed():
    """Oldest-first eviction never leaves such a link; if one ever pointed at a reused slot, identity wins."""
    buffer = ReplayBuffer(SPEC, 6)
    buffer.add_online(to_columns(_episode("a", 0, [0.0] * 6, "truncated"), 0), "a")  # row ids 0..5
    buffer.add_online(to_columns(_episode("b", 0, [0.0] * 2, "truncated"), 6), "b")  # ids 6, 7 overwrite slots 0, 1
    online = buffer._online
    online.links.link(np.array([3]), np.array([0]), 6)  # row 3 "links" to row 0, whose slot now holds row 6 of b
    slots, valid = online.links.follow(online.rows, np.array([2, 4]), 4)  # step-major
    assert valid.T.tolist() == [[True, True, False, False], [True, True, False, False]]
    assert slots.T.tolist() == [[2, 3, 3, 3], [4, 5, 5, 5]]
