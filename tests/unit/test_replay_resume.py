"""A replay restored from the durable journal (even a pruned one) draws the same batches as the live one."""

from __future__ import annotations

import tempfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from replay_world import SPEC, actor_stream, interleave, to_transitions

from common.types import pack_transitions, unpack_transitions
from learner.replay import NothingToSample, ReplayBuffer, SamplingSpec
from learner.replay.durable import SegmentJournal, restore

pytestmark = pytest.mark.timeout(300)

GAMMA = 0.9
SPECS = [
    SamplingSpec(24, demo_ratio=0.0),
    SamplingSpec(24, demo_ratio=0.0, gamma=GAMMA, returns_to_go=True),
    SamplingSpec(24, horizon=4, demo_ratio=0.0, gamma=GAMMA),
    SamplingSpec(24, horizon=4, demo_ratio=0.0, gamma=GAMMA, full_sequences=True),
    SamplingSpec(24, horizon=3, demo_ratio=0.0, gamma=GAMMA, returns_to_go=True),
]


def samples(buffer: ReplayBuffer, seed: int) -> list[dict[str, np.ndarray]]:
    """Every SPECS batch as flat arrays (None where nothing may be drawn yet)."""
    out = []
    for sampling in SPECS:
        try:
            batch = buffer.sample(sampling, np.random.default_rng(seed))
        except NothingToSample:
            out.append(None)
            continue
        out.append({"action": batch.action, "reward": batch.reward, "terminated": batch.terminated,
                    **{f"obs/{k}": v for k, v in batch.observation.items()},
                    **{f"next/{k}": v for k, v in batch.next_observation.items()}, **batch.extras})  # fmt: skip
    return out


def assert_same(live: list, restored: list) -> None:
    for a, b in zip(live, restored, strict=True):
        assert (a is None) == (b is None)
        if a is not None:
            assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a), "a different batch"


def live_then_resumed(seed: int, actors: int, capacity: int, episodes: int, max_length: int, max_batch: int,
                      resume_at: float) -> bool:  # fmt: skip
    """Feed a live replay (and its journal), restore a second from the journal, compare their batches; feed
    both the rest and compare again. Returns whether the journal had pruned rows away."""
    # Sparse rewards, as the learner stores them: the all-equal rule for truncated episodes then judges an
    # episode whose start was pruned from the journal the same way as the live replay did.
    rng = np.random.default_rng(seed)
    streams = {f"actor-{i}": actor_stream(rng, f"actor-{i}", episodes, max_length, sparse=True) for i in range(actors)}
    batches = interleave(rng, streams, max_batch)
    split = max(1, int(len(batches) * resume_at))
    live, restored = ReplayBuffer(SPEC, capacity, gamma=GAMMA), ReplayBuffer(SPEC, capacity, gamma=GAMMA)
    seqs: dict[str, int] = {}
    marker = 0
    with tempfile.TemporaryDirectory() as directory:
        journal = SegmentJournal(directory, keep_transitions=capacity, segment_bytes=1500, fsync=False)
        for actor, rows in batches[:split]:  # as the server does: journal first, then replay
            seqs[actor] = seqs.get(actor, 0) + 1
            arrays = pack_transitions(to_transitions(rows, marker))
            journal.append(actor, seqs[actor], arrays)
            live.add_online(unpack_transitions(arrays, SPEC), actor)
            marker += len(rows)
        journal.close()
        report = restore(directory, SPEC, lambda actor, columns: restored.add_online(columns, actor))
    assert restored.online_size == live.online_size
    assert_same(samples(live, seed), samples(restored, seed))
    for actor, rows in batches[split:]:  # the resumed learner goes on receiving
        for buffer in (live, restored):
            buffer.add_online(unpack_transitions(pack_transitions(to_transitions(rows, marker)), SPEC), actor)
        marker += len(rows)
    assert_same(samples(live, seed + 1), samples(restored, seed + 1))
    return report.transitions < sum(len(rows) for _, rows in batches[:split])


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), actors=st.integers(1, 3), capacity=st.integers(8, 120),
       episodes=st.integers(1, 8), max_length=st.integers(1, 20), max_batch=st.integers(1, 10),
       resume_at=st.floats(0.2, 1.0))  # fmt: skip
def test_a_restored_replay_draws_the_same_batches_and_keeps_doing_so(seed, actors, capacity, episodes, max_length,
                                                                   max_batch, resume_at):  # fmt: skip
    live_then_resumed(seed, actors, capacity, episodes, max_length, max_batch, resume_at)


@pytest.mark.parametrize("seed", range(5))
def test_a_replay_restored_from_a_pruned_journal_holds_the_same_rows_by_age(seed):
    """The ring wrapped and the journal dropped its oldest segments: the rows sit at other slots, same batches."""
    assert live_then_resumed(seed, actors=3, capacity=40, episodes=8, max_length=15, max_batch=6, resume_at=0.8)
