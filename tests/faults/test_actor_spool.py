"""The actor's disk spool: batches survive a killed actor and are resent in order, exactly once."""

from __future__ import annotations

import random

import numpy as np
import pytest

from actor.sender import Sender, SenderConfig
from actor.recorder import Recorder
from actor.spool import PauseWhenFull, Spool
from actor.spool_log import TransitionLog, read_log
from tests.conftest import metric, wait_until
from tests.faults.processes import (
    LearnerProcess,
    audit_episodes,
    journal_columns,
    journal_markers,
    kill_actor_repeatedly,
    life_ranges,
)
from tests.integration.test_transport import SPEC, hello, transitions

pytestmark = pytest.mark.timeout(180)


def test_spool_files_round_trip_and_damage_is_skipped(tmp_path):
    spool = Spool(tmp_path)
    frames = [b"header", b"\x00" * 100]
    for seq in (1, 2, 3):
        spool.put(seq, frames, transitions=8)
    spool.ack(1)
    with pytest.raises(ValueError, match="in use"):
        Spool(tmp_path)  # a second actor process on the same spool is refused
    spool.close()
    (tmp_path / f"{3:012d}.batch").write_bytes(b"TSP1garbage")
    again = Spool(tmp_path)
    assert again.load() == [(2, 8)] and again.get(2) == frames and again.last_seq() == 3
    again.ack(2)
    again.close()
    last = Spool(tmp_path)
    assert last.last_seq() == 3 and last.load() == []
    last.close()


def test_every_recorded_step_is_in_the_spool_log_when_record_returns(tmp_path, port):
    """What `kill -9` can take: nothing recorded. Read independently after each `record()`: every step so far is
    logged (the held-back newest one too), an operator's label reaches the log, and a new process finds the
    unsealed steps with the episode the "kill" cut ending truncated at its last recorded step."""
    config = SenderConfig(batch_size=4, spool_dir=str(tmp_path), spool_fsync=False)
    sender = Sender("127.0.0.1", port, hello("log"), config).start()  # no learner: nothing is sealed
    recorder = Recorder(sender.submit, hold=sender.hold)
    observation = {"state": np.zeros(4, np.float32)}
    for episode_steps in (6, 3):
        recorder.start_episode(evaluation=False)
        for step in range(episode_steps):
            next_observation = {"state": np.full(4, step + 1, np.float32)}
            recorder.record(observation, np.zeros(2, np.float32), 0.0, False, False, next_observation, -1)
            logged = [(t.episode, t.step) for t in read_log(tmp_path).values()]
            assert logged[-(step + 1):] == [(recorder.current.episode, s) for s in range(step + 1)]
            observation = next_observation
        if episode_steps == 6:
            recorder.finish_episode(True, "operator", final=(1.0, True))  # the operator's label on the last step
            assert list(read_log(tmp_path).values())[-1].terminated
    sender.close(flush_timeout_s=0.2)  # the process ends here, mid-episode (a kill leaves the same files)
    tail = TransitionLog(tmp_path).recover(sealed_tid=0)
    assert [(t.step, t.reward, t.terminated, t.truncated) for _, t in tail] == [
        *[(s, 0.0, False, False) for s in range(5)], (5, 1.0, True, False),
        (0, 0.0, False, False), (1, 0.0, False, False), (2, 0.0, False, True)]  # fmt: skip
    assert tail[1][1].observation is tail[0][1].next_observation  # stored once, shared again (one row on the wire)
    assert np.array_equal(tail[-1][1].next_observation["state"], np.full(4, 3, np.float32))
    assert [t.truncated for t in read_log(tmp_path).values()][-1], "the cut is logged: a later recovery agrees"


def test_a_torn_record_and_what_batches_hold_are_not_recovered(tmp_path):
    """The log's tail after a sealed batch is what a restart seals; a record torn by the kill is skipped."""
    log = TransitionLog(tmp_path)
    log.recover(sealed_tid=0)
    tids = [log.release(t) for t in transitions(0, 10)]
    log.close()
    segment = sorted(tmp_path.glob("*.tlog"))[-1]
    segment.write_bytes(segment.read_bytes()[:-5])  # the write of tid 10 cut short
    tail = TransitionLog(tmp_path).recover(sealed_tid=tids[5])
    assert [int(t.observation["state"][0]) for _, t in tail] == [6, 7, 8]
    assert [t.truncated for _, t in tail] == [False, False, True]


def test_an_actor_started_with_a_spool_resends_and_continues_its_numbering(tmp_path, port):
    """No learner at first: batches go to the spool; a new actor process (same spool) delivers them."""
    spool_dir = tmp_path / "spool"
    earlier = Spool(spool_dir)
    earlier.ack(4)  # this actor's earlier life ended at batch 4 (all acked)
    earlier.close()
    # Only full batches (and the last at close): with the 0.25 s partial flush, a test thread descheduled
    # mid-submit on a loaded box sealed a partial batch and the numbering ended at 17 (seen in CI).
    config = SenderConfig(batch_size=8, flush_interval_s=60.0, spool_dir=str(spool_dir), spool_max_bytes=1 << 20)
    first = Sender("127.0.0.1", port, hello("sp"), config).start()
    for item in transitions(0, 80):
        assert first.submit(item)
    wait_until(lambda: len(list(spool_dir.glob("*.batch"))) == 10, what="10 batches spooled with no learner")
    first.close(flush_timeout_s=0.2)  # gives up: the batches stay on disk
    learner = LearnerProcess(port, tmp_path / "run")
    learner.wait_listening()
    second = Sender("127.0.0.1", port, hello("sp"), config).start()
    for item in transitions(80, 16):
        second.submit(item)
    assert second.close(flush_timeout_s=20.0), f"{second.outstanding()} never acked"
    assert learner.terminate() == 0
    assert journal_markers(tmp_path / "run", "sp") == list(range(96))
    assert (spool_dir / "acked").read_text() == "16"  # batches 5..16: numbering continued after the earlier life
    assert list(spool_dir.glob("*.tlog")), "the log still holds the acked transitions; it must not resend them"
    third = Sender("127.0.0.1", port, hello("sp"), config)
    assert third.outstanding() == 0  # `acked_tid` says every logged transition is sealed (and acked)
    third._batches.close()  # never started: its spool files are closed here


KILLS = 5  # benchmarks/actor_kills.py does 20


def test_kill_9_of_a_real_actor_at_random_moments_loses_and_duplicates_nothing(tmp_path, port):
    """`actor --spool` killed 5 times at random points of its loop (mid-step, mid-seal, mid-send), restarted on the
    same spool each time, against the real learner: every step each life recorded is in the durable replay once.

    "Recorded" is read from the actor itself: its /metrics step count, read just before the kill (counted after
    `record()` returns), is a lower bound on what that life recorded; every episode must hold steps 0..T-1 once
    with one end flag, at T-1 (an episode cut by a kill ends truncated at its last recorded step)."""
    learner = LearnerProcess(port, tmp_path / "run")
    learner.wait_listening()
    seed = random.randrange(2**32)  # other moments each run; the seed is in any failure's message
    lives = kill_actor_repeatedly(port, tmp_path, KILLS, random.Random(seed))
    assert learner.terminate() == 0, learner.text()[-2000:]
    columns = journal_columns(tmp_path / "run", "killed", ("episode", "step", "terminated", "truncated"))
    audit = audit_episodes(columns)
    stored = [int(np.sum((columns["episode"] >= a) & (columns["episode"] < b))) for a, b in life_ranges(lives)]
    short = [(life.recorded, count) for life, count in zip(lives, stored) if count < life.recorded]
    assert audit.clean and not short, f"seed {seed}: {audit}; lives with fewer stored than recorded: {short}"
    assert all(count > 0 for count in stored) and audit.episodes >= len(lives)


def test_a_full_spool_pauses_the_robot_until_there_is_room(tmp_path, port):
    config = SenderConfig(batch_size=4, queue_size=8, spool_dir=str(tmp_path), spool_max_bytes=3000)
    sender = Sender("127.0.0.1", port, hello("full"), config).start()
    sender._batches.seq_known = True  # as after an earlier session; numbering may start without a learner
    stops = []
    stopping = []
    submit = PauseWhenFull(sender.submit, sender.room, lambda: stops.append(1), lambda: bool(stopping))
    import threading

    def control_loop() -> None:
        for item in transitions(0, 500):
            if not submit(item):
                return

    thread = threading.Thread(target=control_loop, daemon=True)
    thread.start()
    wait_until(lambda: metric("tandem_actor_spool_bytes", actor_id="full", robot=SPEC.name) >= 3000 and stops,
               what="a full spool and a stopped robot")  # fmt: skip
    wait_until(lambda: not submit.room_now(), what="the control loop to be paused")
    assert thread.is_alive() and len(stops) == submit.pauses  # paused (robot stopped each time), not dropping
    stopping.append(True)
    thread.join(timeout=5)
    assert not thread.is_alive()
    sender.close(flush_timeout_s=0.2)
