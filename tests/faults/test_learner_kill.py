"""kill -9 (then `learner --resume`) and SIGSTOP of the real `learner` under a live actor: nothing lost, nothing
duplicated."""

from __future__ import annotations

import csv
import signal

import pytest

from actor.sender import Sender, SenderConfig
from common.protocol import EpisodeSummary
from tests.conftest import wait_until
from tests.faults.processes import Feeder, LearnerProcess, journal_markers
from tests.integration.test_transport import hello

pytestmark = pytest.mark.timeout(90)


def test_kill_9_and_resume_under_a_live_actor_loses_and_duplicates_nothing(tmp_path, port):
    """Each kill also strands acks: the actor stops reading them first, so the killed learner has stored batches
    the actor still holds and resends. Only the sequence numbers `learner --resume` restores from its durable
    replay keep those from being stored twice."""
    run_dir = tmp_path / "run"
    learner = LearnerProcess(port, run_dir)
    learner.wait_listening()
    sender = Sender("127.0.0.1", port, hello("live"), SenderConfig(batch_size=8, flush_interval_s=0.05)).start()
    feeder = Feeder(sender).start()
    for _ in range(2):
        acked = sender.acked_transitions
        wait_until(lambda: sender.acked_transitions >= acked + 100, 20, what="acks before the kill")
        sender._receive_all = lambda: None  # deaf: acks stay unread in the socket that reconnecting discards
        stranded = sender.acked_transitions + 40
        wait_until(lambda: len(journal_markers(run_dir, "live")) >= stranded, 20, what="stored, ack never heard")
        learner.kill()  # at a random point of its receive/persist/ack cycle
        learner = LearnerProcess(port, run_dir, resume=True)
        wait_until(lambda: not sender.connected.is_set(), 20, what="the actor to give the dead learner up")
        del sender._receive_all  # hears again, on the new socket
        learner.wait_listening()
    acked = sender.acked_transitions
    wait_until(lambda: sender.acked_transitions >= acked + 100, 20, what="acks after the last restart")
    total = feeder.stop()
    assert sender.close(flush_timeout_s=20.0), f"{sender.outstanding()} never acked"
    assert learner.terminate() == 0, learner.text()[-2000:]
    stored = journal_markers(run_dir, "live")
    lost, duplicated = len(set(range(total)) - set(stored)), len(stored) - len(set(stored))
    assert stored == list(range(total)), f"lost {lost}, duplicated {duplicated}"


def test_a_stopped_learner_stalls_nothing_and_loses_nothing(tmp_path, port):
    run_dir = tmp_path / "run"
    learner = LearnerProcess(port, run_dir)
    learner.wait_listening()
    sender = Sender("127.0.0.1", port, hello("stall"), SenderConfig(batch_size=8, flush_interval_s=0.05)).start()
    feeder = Feeder(sender).start()
    wait_until(lambda: sender.acked_transitions >= 50, 20, what="first acks")
    learner.process.send_signal(signal.SIGSTOP)
    submitted = feeder.next
    wait_until(lambda: not sender.connected.is_set(), 10, what="the actor to notice the silence")
    wait_until(lambda: feeder.next >= submitted + 500, 10, what="the control loop to keep going")
    learner.process.send_signal(signal.SIGCONT)
    wait_until(lambda: sender.connected.is_set(), 15, what="reconnection")
    total = feeder.stop()
    assert feeder.refused == 0
    assert sender.close(flush_timeout_s=20.0), f"{sender.outstanding()} never acked"
    assert learner.terminate() == 0
    assert journal_markers(run_dir, "stall") == list(range(total))


def test_the_learning_curve_survives_kill_9_and_resume_continues_it(tmp_path, port):
    """episodes.csv is appended as episodes arrive: a kill -9 keeps every row, and `learner --resume` reads
    them back and goes on writing after them, its wall time continuing from the last one. Episodes that end
    while the learner is down reach the resumed one, and those the actor resends (nothing proved they
    arrived: no batch followed them) are written once."""
    run_dir = tmp_path / "run"
    learner = LearnerProcess(port, run_dir)
    learner.wait_listening()
    sender = Sender("127.0.0.1", port, hello("curve"), SenderConfig(batch_size=4, flush_interval_s=0.05)).start()

    def finish(numbers: range) -> None:
        for n in numbers:
            end = "success" if n % 2 == 0 else "wrong_side"
            sender.submit(EpisodeSummary(n, 10 + n, 0.0, n % 2 == 0, False, "task", -1, n, end_reason=end))

    def rows_written(count: int) -> None:
        wait_until(lambda: len(curve_rows(run_dir)) >= count, 20, what=f"{count} episodes written")

    wait_until(sender.connected.is_set, 30, what="the actor connected")
    finish(range(0, 3))
    rows_written(3)
    learner.kill()
    assert [r["episode"] for r in curve_rows(run_dir)] == ["0", "1", "2"], "the rows written before the kill"
    finish(range(3, 5))  # the learner is down, whether or not the sender has noticed yet
    learner = LearnerProcess(port, run_dir, resume=True)
    learner.wait_listening()
    rows_written(5)
    assert sender.close(flush_timeout_s=10.0)
    assert learner.terminate() == 0, learner.text()[-2000:]
    rows = curve_rows(run_dir)
    assert [(r["episode"], r["steps"], r["interventions"], r["end"]) for r in rows] == [
        (str(n), str(10 + n), str(n), "success" if n % 2 == 0 else "wrong_side") for n in range(5)]  # fmt: skip
    walls = [float(r["wall_s"]) for r in rows]
    assert walls == sorted(walls), "wall time goes on from the last episode"


def curve_rows(run_dir) -> list[dict]:
    path = run_dir / "episodes.csv"
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))
