"""`--resume` in-process: replay contents, step count, algorithm and optimizer state all come back."""

from __future__ import annotations

import json

import pytest
import torch

from common.transport import SequenceTracker
from common.types import pack_transitions, unpack_transitions
from learner.app import Learner, LearnerConfig, config_as_dict
from learner.replay.durable import SegmentJournal
from learner.train_loop import TrainConfig
from tests.faults.test_durable_replay import replay_hash
from tests.integration.test_transport import SPEC, transitions

pytestmark = pytest.mark.timeout(60)


class _Server:
    """Stands in for the network side: this test is about state, not sockets."""

    sequences = SequenceTracker()

    def publish(self, _weights) -> None:
        pass


def flat(state, prefix=""):
    if isinstance(state, dict):
        for key, value in state.items():
            yield from flat(value, f"{prefix}/{key}")
    elif isinstance(state, (list, tuple)):
        for i, value in enumerate(state):
            yield from flat(value, f"{prefix}/{i}")
    else:
        yield prefix, state


def same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    return a == b


def test_resume_restores_replay_step_and_algorithm(tmp_path):
    small = {"hidden_dims": "32,32", "batch_size": "16"}
    config = LearnerConfig(algo="sac", overrides=small, run_dir=str(tmp_path), device="cpu", metrics_port=0,
                           replay_capacity=500,
                           train=TrainConfig(learning_starts=16, checkpoint_every=0))  # fmt: skip
    (tmp_path / "config.json").write_text(json.dumps(config_as_dict(config)))
    first = Learner(config)
    first.build(SPEC)
    first.server = _Server()
    journal = SegmentJournal(tmp_path / "replay", config.replay_capacity, fsync=False)
    for seq in range(1, 9):
        arrays = pack_transitions(transitions(seq * 16, 16))
        journal.append("a1", seq, arrays)
        first.store("a1", unpack_transitions(arrays, SPEC))
    journal.close()
    for _ in range(3):
        assert first.loop.step()
    first.checkpoint()

    second = Learner(LearnerConfig(algo="sigent_sac", run_dir=str(tmp_path), device="cpu", resume=True))
    assert second.config.algo == "sac"  # the run's algorithm, not the command line's default
    second.build(SPEC)
    sequences = second._resume()
    assert sequences.acked("a1") == 8
    assert second.loop.updates == 3 and second.loop.received == first.loop.received == 128
    assert replay_hash(second.replay) == replay_hash(first.replay)
    saved, restored = dict(flat(first.loop.algorithm.state_dict())), dict(flat(second.loop.algorithm.state_dict()))
    assert saved.keys() == restored.keys() and all(same(saved[k], restored[k]) for k in saved)
    assert any("optim" in key for key in saved), "the optimizer state is part of what resumes"
    assert second.loop._rng.bit_generator.state == first.loop._rng.bit_generator.state


def test_operator_corrections_return_to_the_demo_buffer_on_resume(tmp_path):
    """An intervention row is journaled like any other; restoring it must also restore its demo copy."""
    config = LearnerConfig(algo="sac", run_dir=str(tmp_path), device="cpu", metrics_port=0, replay_capacity=500)
    (tmp_path / "config.json").write_text(json.dumps(config_as_dict(config)))
    first = Learner(config)
    first.build(SPEC)
    journal = SegmentJournal(tmp_path / "replay", config.replay_capacity, fsync=False)
    corrected = transitions(0, 6)
    for t in corrected[::2]:
        t.intervention = True
    arrays = pack_transitions(corrected)
    journal.append("a1", 1, arrays)
    first.store("a1", unpack_transitions(arrays, SPEC))
    journal.close()
    assert first.replay.demo_size == 3

    second = Learner(LearnerConfig(algo="sac", run_dir=str(tmp_path), device="cpu", resume=True))
    second.build(SPEC)
    second._resume()
    assert second.replay.online_size == 6 and second.replay.demo_size == 3
    demo = second.replay._demo.rows
    assert sorted(demo.arrays["observation/state"][: demo.size, 0]) == [0, 2, 4], "exactly the corrected steps"


def test_a_save_killed_midway_is_never_loaded_and_is_cleaned_up(tmp_path):
    from learner.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint

    save_checkpoint(tmp_path, 5, {"x": torch.ones(2)}, {"algo": "sac"})
    torn = tmp_path / "checkpoints" / ".tmp-ckpt-0000000010"  # what a kill -9 during save leaves
    torn.mkdir()
    (torn / "state.pt").write_bytes(b"half a pickle")
    path = latest_checkpoint(tmp_path)
    assert path.name == "ckpt-0000000005" and not torn.exists()
    state, config = load_checkpoint(path)
    assert torch.equal(state["x"], torch.ones(2)) and config == {"algo": "sac"}


def test_a_kill_while_replacing_a_checkpoint_of_the_same_update_count_keeps_the_old_one(tmp_path):
    """Saving update 10 again (periodic, then on exit) moves the first save aside before the second lands: a kill
    between the two renames leaves it there, and the next load puts it back instead of falling back a checkpoint."""
    from learner.checkpoint import REPLACED, latest_checkpoint, load_checkpoint, save_checkpoint

    save_checkpoint(tmp_path, 5, {"x": torch.zeros(2)}, {"algo": "sac"})
    first = save_checkpoint(tmp_path, 10, {"x": torch.ones(2)}, {"algo": "sac"})
    first.rename(first.with_name(REPLACED + first.name))  # the state a kill after the first rename leaves
    torn = first.with_name(".tmp-" + first.name)
    torn.mkdir()
    (torn / "state.pt").write_bytes(b"half a pickle")
    path = latest_checkpoint(tmp_path)
    assert path == first and not torn.exists() and not list(path.parent.glob(REPLACED + "*"))
    assert torch.equal(load_checkpoint(path)[0]["x"], torch.ones(2))
    again = save_checkpoint(tmp_path, 10, {"x": torch.full((2,), 2.0)}, {"algo": "sac"})  # a save that completes
    assert again == first and torch.equal(load_checkpoint(latest_checkpoint(tmp_path))[0]["x"], torch.full((2,), 2.0))
    assert not list(path.parent.glob(REPLACED + "*"))
