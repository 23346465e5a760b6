"""kill -9 of the real `learner`, then `learner --resume`: it draws the same transitions, sequences and returns."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import numpy as np
import pytest

from actor.sender import Sender, SenderConfig
from common.protocol import Hello
from tests.conftest import wait_until
from tests.faults.processes import LearnerProcess, learner_command
from tests.unit.replay_world import SPEC, action_markers, actor_stream, to_transitions

pytestmark = pytest.mark.timeout(180)

ACTORS = ("arm-1", "arm-2", "base")


def replay_learner_command(port: int, run_dir: Path, resume: bool) -> list[str]:
    """The real `learner` CLI (never training), through the probe that makes it write samples on SIGUSR1."""
    return [*PROBE, *learner_command(port, run_dir, resume)[3:]]


PROBE = [sys.executable, "-m", "tests.faults.replay_probe"]


def feed(port: int) -> None:
    """Three actors' episodes, sent concurrently in small batches by real senders, until all are acked."""
    rng = np.random.default_rng(3)
    senders = []
    for index, actor in enumerate(ACTORS):
        hello = Hello(actor, SPEC.name, SPEC.spec_hash, SPEC.to_json())
        sender = Sender("127.0.0.1", port, hello, SenderConfig(batch_size=7, flush_interval_s=0.02)).start()
        rows = actor_stream(rng, actor, episodes=6, max_length=25)
        senders.append((sender, to_transitions(rows, first_marker=10_000 * index)))
    for step in range(max(len(transitions) for _, transitions in senders)):  # interleaved, as live actors are
        for sender, transitions in senders:
            if step < len(transitions):
                assert sender.submit(transitions[step])
    for sender, _ in senders:
        assert sender.close(flush_timeout_s=30.0), f"{sender.outstanding()} never acked"


def samples_of(learner: LearnerProcess, run_dir: Path) -> dict[str, np.ndarray]:
    path = run_dir / f"samples-{learner.process.pid}.npz"
    learner.process.send_signal(signal.SIGUSR1)
    wait_until(lambda: path.exists() or "sampling failed" in learner.text(), 30, what="the learner's samples")
    assert path.exists(), learner.text()[-3000:]
    with np.load(path) as data:
        return dict(data)


def test_the_same_batches_are_drawn_after_kill_9_and_resume(tmp_path, port):
    run_dir = tmp_path / "run"
    learner = LearnerProcess(port, run_dir, command=replay_learner_command)
    learner.wait_listening(timeout_s=90)
    feed(port)
    before = samples_of(learner, run_dir)
    learner.kill()
    learner = LearnerProcess(port, run_dir, resume=True, command=replay_learner_command)
    learner.wait_listening(timeout_s=90)
    after = samples_of(learner, run_dir)
    assert learner.terminate() == 0, learner.text()[-2000:]
    assert before.keys() == after.keys()
    different = [key for key in before if not np.array_equal(before[key], after[key])]
    assert not different, f"resumed replay drew other batches: {different}"
    # What was compared is not trivial: sequences of several actors, cut by episode ends, with returns.
    markers = action_markers(before["sequences/action"])
    assert markers.shape == (64, 5) and len({int(m) // 10_000 for m in markers[:, 0]}) >= 2
    valid = before["sequences/valid"]
    assert 0 < valid.sum() < valid.size and before["full_sequences/valid"].all()
    assert np.isfinite(before["returns/mc_return"]).all() and before["returns/mc_return"].std() > 0
