"""Actor <-> learner over real ZeroMQ sockets on loopback: exactly-once delivery, restarts, weights, refusals."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import zmq

from actor.sender import Sender, SenderConfig
from actor.weights import WeightClient
from common.codec import decode, encode
from common.protocol import (
    PROTOCOL_VERSION,
    Ack,
    EpisodeSummary,
    Heartbeat,
    Hello,
    TransitionBatch,
    Weights,
    WeightsRequest,
    Welcome,
)
from common.transport import transitions_endpoint
from common.types import Transition, pack_transitions
from learner.algorithms import ALGORITHMS, config_from_overrides, config_to_dict
from learner.server import LearnerServer
from robots.fake import FakeRobot
from tests.conftest import metric, wait_until
from tests.wire_layouts import step_records

pytestmark = pytest.mark.timeout(60)
SPEC = FakeRobot().spec


class Store:
    """What the learner put into replay, per actor, in arrival order."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.columns: dict[str, list[dict]] = {}

    def __call__(self, actor_id: str, columns: dict) -> None:
        with self.lock:
            self.columns.setdefault(actor_id, []).append({k: np.array(v) for k, v in columns.items()})

    def markers(self, actor_id: str) -> list[int]:
        with self.lock:
            return [int(x) for c in self.columns.get(actor_id, []) for x in c["observation/state"][:, 0]]


def transitions(start: int, count: int) -> list[Transition]:
    """Transitions whose observation carries a unique marker in its first element."""
    out = []
    for i in range(start, start + count):
        obs = np.array([i, 0, 0, 0], np.float32)
        out.append(Transition({"state": obs}, np.zeros(2, np.float32), 0.0, False, False, {"state": obs + 0.5}, step=i))
    return out


def hello(actor_id: str = "a1", spec=SPEC) -> Hello:
    return Hello(actor_id, spec.name, spec.spec_hash, spec.to_json())


@pytest.fixture
def server(port):
    store = Store()
    srv = LearnerServer("127.0.0.1", port, SPEC, store).start()
    srv.store_log = store
    yield srv
    srv.close()


def send_all(port: int, actor_id: str, items: list[Transition], batch_size: int = 16) -> Sender:
    sender = Sender("127.0.0.1", port, hello(actor_id), SenderConfig(batch_size=batch_size)).start()
    for item in items:
        assert sender.submit(item)
    assert sender.close(flush_timeout_s=20.0), f"{sender.outstanding()} transitions never acked"
    return sender


def test_every_transition_arrives_exactly_once_with_its_content(server, port):
    items = transitions(0, 500)
    send_all(port, "a1", items)
    assert server.store_log.markers("a1") == list(range(500))
    first = server.store_log.columns["a1"][0]
    assert np.allclose(first["next_observation/state"][0], items[0].next_observation["state"])


def test_a_restarted_actor_resumes_its_sequence_without_loss_or_duplicates(server, port):
    send_all(port, "a1", transitions(0, 200))
    acked_before = server.sequences.acked("a1")
    send_all(port, "a1", transitions(200, 150))  # a new process with the same actor id
    assert server.store_log.markers("a1") == list(range(350))
    assert server.sequences.acked("a1") > acked_before


def test_two_actors_at_once_each_arrive_exactly_once(server, port):
    threads = [threading.Thread(target=send_all, args=(port, name, transitions(0, 300))) for name in ("left", "right")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert server.store_log.markers("left") == list(range(300))
    assert server.store_log.markers("right") == list(range(300))


def raw_dealer(port: int) -> zmq.Socket:
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, 5000)
    sock.connect(transitions_endpoint("127.0.0.1", port))
    return sock


def test_a_resent_batch_is_acked_but_stored_once(server, port):
    sock = raw_dealer(port)
    sock.send_multipart(encode(hello("dup")))
    assert decode(sock.recv_multipart()).accepted
    before = metric("tandem_learner_duplicate_batches_total", actor_id="dup", robot=SPEC.name)
    batch = encode(TransitionBatch(1, pack_transitions(transitions(0, 4))))
    for _ in range(3):
        sock.send_multipart(batch)
        assert decode(sock.recv_multipart()) == Ack(1)
    assert server.store_log.markers("dup") == [0, 1, 2, 3]
    assert metric("tandem_learner_duplicate_batches_total", actor_id="dup", robot=SPEC.name) == before + 2
    sock.close()


def test_acks_are_cumulative_one_per_actor_per_round_for_its_highest_batch(server, port):
    """200 one-transition batches sent in a burst arrive faster than the learner handles them, so it handles
    several per round; it then acks each round's highest seq only (the actor releases everything up to it)."""
    sock = raw_dealer(port)
    sock.send_multipart(encode(hello("burst")))
    assert decode(sock.recv_multipart()).accepted
    for seq in range(1, 201):
        sock.send_multipart(encode(TransitionBatch(seq, pack_transitions(transitions(seq, 1)))))
    acked = []
    while not acked or acked[-1] < 200:
        message = decode(sock.recv_multipart())
        if isinstance(message, Ack):
            acked.append(message.seq)
    assert acked == sorted(set(acked)), "acks only move forward"
    assert len(acked) < 200, "one ack per batch: the learner did not coalesce its acks"
    assert server.store_log.markers("burst") == list(range(1, 201))
    sock.close()


def test_a_learner_slower_than_its_queue_still_acks_within_a_fraction_of_a_second(port):
    """A receive round ends after RECEIVE_ROUND_S as well as after 1000 messages, so a learner whose replay is
    slow (5 ms a batch here, a loaded box in the field) acks the first batches of a 1000-batch burst long
    before the last is stored: bounded by count alone, the first ack came after all 1000 (5 s, past an
    actor's 3 s liveness window)."""

    def slow_store(actor_id: str, columns: dict) -> None:
        time.sleep(0.005)  # the cost of storing one batch on a loaded learner, not a wait for anything

    server = LearnerServer("127.0.0.1", port, SPEC, slow_store).start()
    sock = raw_dealer(port)
    sock.setsockopt(zmq.RCVTIMEO, 20_000)  # so the old behaviour fails on its ack, not on the wait
    try:
        sock.send_multipart(encode(hello("slow")))
        assert decode(sock.recv_multipart()).accepted
        for seq in range(1, 1001):
            sock.send_multipart(encode(TransitionBatch(seq, pack_transitions(transitions(seq, 1)))))
        while not isinstance(first := decode(sock.recv_multipart()), Ack):
            pass
        assert first.seq < 500, f"the first ack came after {first.seq} batches were stored"
    finally:
        sock.close()
        server.close()


def test_a_backlog_of_small_batches_is_stored_in_runs_and_a_bad_one_among_them_alone_is_refused(port):
    """Small batches queued behind a blocked store are validated and stored together (`BatchRun`); one with an
    action outside [-1, 1] in the middle of a run is refused and acked, and its neighbours are stored once,
    in order."""
    store = Store()
    all_sent, first_store = threading.Event(), threading.Event()

    def blocked_first_store(actor_id: str, columns: dict) -> None:
        if not first_store.is_set():  # the first write into replay waits until every batch is on its way
            first_store.set()
            all_sent.wait(timeout=20)
        store(actor_id, columns)

    server = LearnerServer("127.0.0.1", port, SPEC, blocked_first_store).start()
    sock = raw_dealer(port)
    try:
        sock.send_multipart(encode(hello("runs")))
        assert decode(sock.recv_multipart()).accepted
        rejected_before = metric("tandem_learner_rejected_messages_total", reason="invalid_batch") or 0.0
        for seq in range(1, 101):
            arrays = pack_transitions(transitions(seq, 1))
            if seq == 60:
                step_records(arrays, SPEC.action.shape)["action"] = 5.0
            sock.send_multipart(encode(TransitionBatch(seq, arrays)))
        all_sent.set()
        while not isinstance(ack := decode(sock.recv_multipart()), Ack) or ack.seq < 100:
            pass
        assert store.markers("runs") == [seq for seq in range(1, 101) if seq != 60]
        assert len(store.columns["runs"]) < 50, "stored one batch at a time: the queued batches were not run together"
        assert metric("tandem_learner_rejected_messages_total", reason="invalid_batch") == rejected_before + 1
        assert metric("tandem_learner_transitions_received_total", actor_id="runs", robot=SPEC.name) == 99
    finally:
        sock.close()
        server.close()


def test_a_different_spec_is_refused_naming_both_hashes(server, port):
    other = FakeRobot(max_steps=20).spec
    other = type(other)(other.name, other.observation, other.action, other.control_hz * 2)
    sender = Sender("127.0.0.1", port, hello("wrong", other)).start()
    assert sender.refused.wait(timeout=10)
    assert other.spec_hash in sender.refused_reason and SPEC.spec_hash in sender.refused_reason
    sender.close(flush_timeout_s=0.5)


def test_another_protocol_version_is_refused_naming_both(server, port):
    sock = raw_dealer(port)
    sock.send_multipart(encode(Hello("old", SPEC.name, SPEC.spec_hash, SPEC.to_json(), protocol_version=99)))
    welcome = decode(sock.recv_multipart())
    assert isinstance(welcome, Welcome) and not welcome.accepted
    assert "actor 99" in welcome.reason and f"learner {PROTOCOL_VERSION}" in welcome.reason
    sock.close()


def test_hostile_messages_are_counted_and_the_server_lives_on(server, port):
    sock = raw_dealer(port)
    before = {r: metric("tandem_learner_rejected_messages_total", reason=r)
              for r in ("malformed_header", "unknown_kind", "unknown_actor", "size_mismatch")}  # fmt: skip
    sock.send_multipart([b"\x80\x03cposix\nsystem\n"])  # a pickle payload
    sock.send_multipart([b"\x81\xa4kind\xa6pickle"])  # valid msgpack, not our header
    sock.send_multipart(encode(Ack(3)))  # valid message, but no Hello first
    header, _payload = encode(TransitionBatch(1, {"x": np.zeros(16, np.uint8)}))
    sock.send_multipart([header, b"short"])  # truncated array frame
    wait_until(lambda: metric("tandem_learner_rejected_messages_total", reason="size_mismatch")
               > before["size_mismatch"], what="the truncated frame to be counted")  # fmt: skip
    assert metric("tandem_learner_rejected_messages_total", reason="malformed_header") >= before["malformed_header"] + 2
    assert metric("tandem_learner_rejected_messages_total", reason="unknown_actor") == before["unknown_actor"] + 1
    send_all(port, "after", transitions(0, 20))  # still serving
    assert server.store_log.markers("after") == list(range(20))
    sock.close()


def make_weights(version: int) -> Weights:
    config = config_from_overrides("sac", {})
    policy = ALGORITHMS.get("sac").make_policy(config, SPEC)
    tensors = {k: v.detach().numpy().copy() for k, v in policy.state_dict().items()}
    import json

    return Weights(version, "sac", json.dumps(config_to_dict(config)), SPEC.spec_hash, tensors)


def test_published_weights_reach_a_subscribed_actor(server, port):
    client = WeightClient("127.0.0.1", port, SPEC).start()
    sender = Sender("127.0.0.1", port, hello("w"), on_weights=client.offer).start()
    assert sender.connected.wait(timeout=10)
    for version in range(1, 50):  # PUB drops until the subscription lands; keep publishing until one arrives
        server.publish(make_weights(version))
        if client.take_newer(-1) is not None:
            break
        wait_until(lambda: server.latest_version == version, what="publication")
    policy = wait_until(lambda: client.take_newer(-1), what="weights at the actor")
    assert policy.version >= 1
    action = policy.act({"state": np.zeros(4, np.float32)}, deterministic=True)
    assert action.shape == (2,) and np.all(np.abs(action) <= 1)
    sender.close(flush_timeout_s=1)
    client.close()


def test_a_late_actor_gets_the_latest_weights_at_connect(server, port):
    server.publish(make_weights(7))
    wait_until(lambda: server.latest_version == 7, what="publication")
    client = WeightClient("127.0.0.1", port, SPEC).start()
    sender = Sender("127.0.0.1", port, hello("late"), on_weights=client.offer).start()
    policy = wait_until(lambda: client.take_newer(-1), what="the 'latest please' answer")
    assert policy.version == 7
    sender.close(flush_timeout_s=1)
    client.close()


def test_a_version_pub_never_delivered_is_asked_for_once_the_learner_names_it(server, port):
    """PUB drops what nobody is subscribed for (here no subscriber at all): the version the learner names on
    its acks and heartbeats is asked for. Without it, an actor that missed a rollouts stage's only
    publication acted with its old policy forever while the learner waited for episodes of the new one."""
    received: list[int] = []
    config = SenderConfig(batch_size=4, heartbeat_interval_s=0.2, weights_catch_up_s=0.5)
    have = lambda: max(received, default=-1)  # noqa: E731
    sender = Sender("127.0.0.1", port, hello("deaf"), config, on_weights=lambda w: received.append(w.version),
                    have_version=have).start()  # fmt: skip
    try:
        assert sender.connected.wait(timeout=10)
        server.publish(make_weights(3))
        wait_until(lambda: server.latest_version == 3, what="publication")
        for item in transitions(0, 8):
            sender.submit(item)
        wait_until(lambda: received == [3], timeout_s=15, what="v3 asked for and answered on the ROUTER")
    finally:
        sender.close(flush_timeout_s=1)


def test_weights_with_the_wrong_schema_are_refused_by_the_actor(server, port):
    bad = make_weights(3)
    name = next(iter(bad.tensors))
    bad.tensors[name] = np.zeros((1, 1), np.float32)
    client = WeightClient("127.0.0.1", port, SPEC).start()
    client.offer(bad)
    wait_until(lambda: client.rejected == 1, what="the refusal")
    assert client.take_newer(-1) is None
    client.close()


def test_an_actor_started_before_the_learner_delivers_everything_in_batches_of_its_size(port, monkeypatch):
    monkeypatch.setattr("learner.batch_run.RUN_BATCH_BYTES", 0)  # each batch stored alone, so the store sees its size
    sender = Sender("127.0.0.1", port, hello("early"), SenderConfig(batch_size=32, queue_size=1000)).start()
    for item in transitions(0, 300):
        assert sender.submit(item)
    assert not sender.connected.wait(timeout=0.3)  # nobody is listening yet
    store = Store()
    server = LearnerServer("127.0.0.1", port, SPEC, store).start()
    try:
        assert sender.close(flush_timeout_s=20.0), f"{sender.outstanding()} never acked"
        assert store.markers("early") == list(range(300))
        sizes = [len(c["reward"]) for c in store.columns["early"]]
        assert max(sizes) <= 32 and sum(sizes) == 300
    finally:
        server.close()


def test_a_full_queue_drops_and_counts_instead_of_blocking(port):
    sender = Sender("127.0.0.1", port, hello("flood"), SenderConfig(batch_size=8, queue_size=50)).start()
    before = metric("tandem_actor_transitions_dropped_total", actor_id="flood", robot=SPEC.name)
    accepted = sum(sender.submit(item) for item in transitions(0, 500))  # no learner: nothing drains
    dropped = metric("tandem_actor_transitions_dropped_total", actor_id="flood", robot=SPEC.name) - before
    assert accepted + dropped == 500
    assert accepted <= 50 + 8 + 8  # the queue plus at most one batch held by the sender thread
    sender.close(flush_timeout_s=0.2)


def test_latest_please_says_which_version_the_actor_already_has(port):
    learner = zmq.Context.instance().socket(zmq.ROUTER)
    learner.setsockopt(zmq.LINGER, 0)
    learner.setsockopt(zmq.RCVTIMEO, 5000)
    learner.bind(transitions_endpoint("127.0.0.1", port))
    sender = Sender("127.0.0.1", port, hello("versioned"), have_version=lambda: 7).start()
    try:
        identity, *frames = learner.recv_multipart()
        assert isinstance(decode(frames), Hello)
        learner.send_multipart([identity, *encode(Welcome(True, "", 0, SPEC.spec_hash, 7))])
        request = decode(learner.recv_multipart()[1:])
        assert request == WeightsRequest(have_version=7)  # so the learner need not resend v7
    finally:
        sender.close(flush_timeout_s=0.2)
        learner.close()


def test_a_learner_restarted_without_its_state_gets_the_rest_without_a_gap(port):
    """The actor says where its numbering stands (Hello.first_unacked_seq), so a fresh learner takes over."""
    first_store = Store()
    first = LearnerServer("127.0.0.1", port, SPEC, first_store).start()
    sender = Sender("127.0.0.1", port, hello("cont"), SenderConfig(batch_size=10, heartbeat_interval_s=0.3)).start()
    for item in transitions(0, 50):
        sender.submit(item)
    wait_until(lambda: sender.acked_transitions == 50, what="the first 50 acked")
    first.close()
    second_store = Store()
    second = wait_until(lambda: bind_when_free(port, second_store), what="the port to be released")  # async close
    try:
        for item in transitions(50, 50):
            sender.submit(item)
        assert sender.close(flush_timeout_s=8.0), f"{sender.outstanding()} never acked"  # < the 10 s ack timeout
        assert first_store.markers("cont") + second_store.markers("cont") == list(range(100))
    finally:
        second.close()


def test_after_a_learner_restart_only_the_episodes_no_ack_confirmed_are_sent_again(port):
    """An episode summary is kept until a batch sent after it is acked; a restarted learner gets the ones
    still kept (and only those: an actor must not resend a whole run's episodes at each reconnect)."""
    first_episodes, second_episodes = [], []
    first = LearnerServer("127.0.0.1", port, SPEC, Store(), lambda _a, s: first_episodes.append(s.episode)).start()
    sender = Sender("127.0.0.1", port, hello("eps"), SenderConfig(batch_size=10, heartbeat_interval_s=0.3)).start()
    sender.submit(EpisodeSummary(1, 10, 0.0, True, False, "task", -1))
    for item in transitions(0, 10):
        sender.submit(item)
    wait_until(lambda: sender.acked_transitions == 10, what="the batch after episode 1 acked")
    sender.submit(EpisodeSummary(2, 10, 0.0, True, False, "task", -1))
    wait_until(lambda: first_episodes == [1, 2], what="both episodes at the first learner")
    first.close()
    second = wait_until(lambda: bind_when_free(port, Store(), lambda _a, s: second_episodes.append(s.episode)),
                        what="the port to be released")  # fmt: skip
    try:
        for item in transitions(10, 10):
            sender.submit(item)
        assert sender.close(flush_timeout_s=8.0), f"{sender.outstanding()} never acked"
        assert second_episodes == [2], "episode 1 was proven received; episode 2 was not"
    finally:
        second.close()


def test_a_producer_faster_than_batching_does_not_cut_the_sender_off_from_its_learner(server, port, tmp_path):
    """A control loop that keeps the queue from ever emptying (a twin at --time-scale 20 against a spool that
    fsyncs each batch) must not keep the sender thread batching forever: it still reads the learner's acks and
    sends, so acks flow while the flood goes on."""
    config = SenderConfig(batch_size=8, spool_dir=str(tmp_path / "spool"))
    sender = Sender("127.0.0.1", port, hello("flood"), config).start()
    flooding = threading.Event()
    flooding.set()
    item = transitions(0, 1)[0]

    def flood() -> None:
        while flooding.is_set():
            sender.submit(item)  # False (counted as dropped) once the queue is full: the queue never empties

    producer = threading.Thread(target=flood, daemon=True)
    producer.start()
    try:
        wait_until(lambda: sender.acked_transitions >= 800, timeout_s=15, what="acks while the producer floods")
        assert producer.is_alive() and flooding.is_set(), "the flood must still be going on"
    finally:
        flooding.clear()
        producer.join(timeout=5)
        sender.close(flush_timeout_s=0.5)


def test_a_long_outage_warns_about_dropped_summaries_once_per_thousand_not_per_episode(port, monkeypatch, caplog):
    """With no learner, summaries past the kept maximum drop the oldest: one warning line for the first drop and
    one per thousand after, each with the running count (not a line per episode for the rest of the outage)."""
    monkeypatch.setattr("actor.summaries.MAX_UNCONFIRMED_SUMMARIES", 5)
    sender = Sender("127.0.0.1", port, hello("outage"), SenderConfig(batch_size=10)).start()  # nobody listens
    try:
        with caplog.at_level("WARNING", logger="actor.summaries"):
            for episode in range(5 + 1001):  # 1001 drops: the 1st and the 1001st are warned
                while not sender.submit(EpisodeSummary(episode, 10, 0.0, True, False, "task", -1)):
                    sender.room.wait(1.0)
            wait_until(lambda: any("(1001 dropped so far)" in m for m in drop_warnings(caplog)),
                       what="the last summary's drop warned")  # fmt: skip
        assert len(drop_warnings(caplog)) == 2, drop_warnings(caplog)[:5]
    finally:
        sender.close(flush_timeout_s=0.1)


def drop_warnings(caplog) -> list[str]:
    return [m for r in caplog.records if "dropped so far" in (m := r.getMessage())]


def bind_when_free(port: int, store: Store, on_episode=lambda *_: None) -> LearnerServer | None:
    """A new server on `port`, or None while libzmq is still releasing the previous one's socket."""
    try:
        return LearnerServer("127.0.0.1", port, SPEC, store, on_episode).start()
    except zmq.ZMQError:
        return None


def fake_learner(port: int) -> zmq.Socket:
    """A bare ROUTER on the learner's port: the test plays the learner message by message."""
    router = zmq.Context.instance().socket(zmq.ROUTER)
    router.bind(transitions_endpoint("127.0.0.1", port))
    return router


def receive(router: zmq.Socket) -> tuple[bytes, object]:
    """The next message an actor sent to `fake_learner`, with its identity."""
    assert router.poll(20_000), "the actor went quiet"
    identity, *frames = router.recv_multipart(copy=False)
    return identity.bytes, decode(frames)


def patient_config(batch_size: int) -> SenderConfig:
    """For a `fake_learner` that never acks or beats: liveness and ack windows longer than any test, so a starved
    box (load 7-14 seen) cannot make the sender reconnect mid-test; a reconnect's new Hello would wait forever
    for a Welcome the test never sends (a 60 s timeout, once)."""
    return SenderConfig(batch_size=batch_size, heartbeat_interval_s=30.0, ack_timeout_s=120.0)


def welcome_first_hello(router: zmq.Socket) -> bytes:
    """Accept the actor's first message, which must be its Hello (nothing acked yet); its identity."""
    identity, first = receive(router)
    assert isinstance(first, Hello)
    router.send_multipart([identity, *encode(Welcome(True, "", 0, SPEC.spec_hash))])
    return identity


@pytest.mark.parametrize("batch_size, episode_ends", [(4, False), (32, True)])
def test_a_napping_sender_is_woken_by_a_full_batch_or_an_episodes_end(port, monkeypatch, batch_size, episode_ends):
    """With nothing to send the sender thread waits on its socket (NAP_MS, a minute here): a batch's worth of
    transitions, or an episode summary, wakes it at once instead of waiting there for the learner's next
    reply (which never comes here)."""
    monkeypatch.setattr("actor.sender.NAP_MS", 60_000)
    router = fake_learner(port)
    sender = Sender("127.0.0.1", port, hello("napper"), SenderConfig(batch_size=batch_size, heartbeat_interval_s=60))
    sender.start()
    try:
        welcome_first_hello(router)
        assert sender.connected.wait(timeout=10)
        wait_until(lambda: sender._wakeup.napping, what="the sender napping")  # on its socket, a minute to go
        for item in transitions(0, 4 if not episode_ends else 3):
            assert sender.submit(item)
        if episode_ends:
            assert sender.submit(EpisodeSummary(0, 3, 0.0, False, False, "task", -1))
        while not isinstance(message := receive(router)[1], TransitionBatch):
            assert isinstance(message, (WeightsRequest, Heartbeat)), message  # what else may come first
        assert len(message.arrays["steps"]) == (3 if episode_ends else 4)
    finally:
        sender.close(flush_timeout_s=0.1)
        router.close(linger=0)


def test_a_restarted_learners_rehellos_get_one_hello_not_one_each(port):
    """A restarted learner on the same port answers every batch of the lost session with Welcome(rehello).
    The actor must say Hello once: each extra Hello would be accepted and resend the whole window again."""
    router = fake_learner(port)
    sender = Sender("127.0.0.1", port, hello("storm"), patient_config(batch_size=8)).start()
    try:
        identity = welcome_first_hello(router)
        for item in transitions(0, 80):
            assert sender.submit(item)
        batches = []
        while len(batches) < 10:  # the lost session's batches: answered as a restarted learner answers them
            identity, message = receive(router)
            if isinstance(message, TransitionBatch):
                batches.append(message.seq)
                router.send_multipart([identity, *encode(Welcome(False, "no session", rehello=True))])
        hellos, resent = 0, []
        while len(resent) < 10 and hellos <= 1:  # after one Welcome, the window comes again; count the Hellos
            identity, message = receive(router)
            if isinstance(message, Hello):
                hellos += 1
                if hellos == 1:
                    router.send_multipart([identity, *encode(Welcome(True, "", 0, SPEC.spec_hash))])
            elif isinstance(message, TransitionBatch):
                resent.append(message.seq)
        assert hellos == 1, f"{hellos} Hellos for 10 rehellos"
        assert resent == list(range(1, 11)) == batches
    finally:
        sender.close(flush_timeout_s=0.1)
        router.close(linger=0)


def test_after_a_reconnect_kept_summaries_go_in_their_place_among_the_batches_not_all_before_them(port):
    """Each kept summary is sent again right after the last batch sealed before its episode ended. Sent all
    ahead of the batches, a long outage's summaries held back the first ack past the actor's liveness window
    on a loaded learner, and each reconnect sent them all again (a livelock seen after a learner restart)."""
    router = fake_learner(port)
    sender = Sender("127.0.0.1", port, hello("order"), patient_config(batch_size=8)).start()

    def stream(count: int) -> tuple[bytes, list[tuple[str, int]]]:
        """The next `count` batches and summaries, as ("b", seq) and ("s", episode)."""
        seen: list[tuple[str, int]] = []
        while len(seen) < count:
            identity, message = receive(router)
            if isinstance(message, TransitionBatch):
                seen.append(("b", message.seq))
            elif isinstance(message, EpisodeSummary):
                seen.append(("s", message.episode))
        return identity, seen

    try:
        identity = welcome_first_hello(router)
        for episode in range(30):  # each episode fills one batch, then its summary
            for item in transitions(8 * episode, 8):
                assert sender.submit(item)
            assert sender.submit(EpisodeSummary(episode, 8, 0.0, True, False, "task", -1))
        in_place = [kind for episode in range(30) for kind in (("b", episode + 1), ("s", episode))]
        identity, seen = stream(60)
        assert seen == in_place, "the first session's stream"
        router.send_multipart([identity, *encode(Welcome(False, "no session", rehello=True))])  # nothing acked
        while not isinstance((answer := receive(router))[1], Hello):
            pass
        router.send_multipart([answer[0], *encode(Welcome(True, "", 0, SPEC.spec_hash))])
        _, resent = stream(60)
        assert resent == in_place, f"resent as {resent[:8]}..."
    finally:
        sender.close(flush_timeout_s=0.1)
        router.close(linger=0)


def test_a_learner_acking_steadily_but_further_behind_than_the_ack_timeout_keeps_the_session(port):
    """A loaded learner acks every batch, only late: the oldest batch in flight waits longer than the ack
    timeout while acks keep coming. That is a slow learner, not a broken session: reconnecting would only send
    the whole window again (seen every 10 s with 8 twins at --time-scale 20 on 2 cores)."""
    router = fake_learner(port)
    sender = Sender("127.0.0.1", port, hello("lag"), SenderConfig(batch_size=1, ack_timeout_s=1.0)).start()
    try:
        identity = welcome_first_hello(router)
        for item in transitions(0, 20):
            assert sender.submit(item)
        sent = []
        while len(sent) < 20:
            if isinstance(message := receive(router)[1], TransitionBatch):
                sent.append(message.seq)
        for seq in sent:  # one ack per 0.25 s: the last batch waits 5 s, five times the ack timeout
            time.sleep(0.25)  # the pace of the slow learner this test plays, not a wait for the actor
            router.send_multipart([identity, *encode(Ack(seq))])
            while router.poll(0):
                assert not isinstance(receive(router)[1], Hello), f"reconnected after the ack of batch {seq - 1}"
        wait_until(lambda: sender.acked_transitions == 20, what="all 20 acked")
    finally:
        sender.close(flush_timeout_s=0.1)
        router.close(linger=0)


def test_two_live_actors_with_one_id_lose_nothing_silently_the_older_is_refused(server, port):
    """Two actors started with the same id (`actor --robot limo_sim` twice takes the robot's name) number
    their batches independently: the learner used to accept both by turns and drop one's batches as
    duplicates of the other's after acking them (100 of 400 transitions gone, both senders satisfied).
    Newest wins; the older one is refused with the reason, and everything either sender was acked for is
    in replay."""
    first = Sender("127.0.0.1", port, hello("twin"), SenderConfig(batch_size=16)).start()
    wait_until(first.connected.is_set, timeout_s=10, what="the first actor connected")
    second = Sender("127.0.0.1", port, hello("twin"), SenderConfig(batch_size=16)).start()
    wait_until(second.connected.is_set, timeout_s=10, what="the second actor connected")
    for item in transitions(0, 100):
        first.submit(item)
    wait_until(first.refused.is_set, timeout_s=10, what="the older actor refused")
    assert "taken over by a newer connection" in first.refused_reason and "--actor-id" in first.refused_reason
    for item in transitions(1000, 100):
        assert second.submit(item)
    assert second.close(flush_timeout_s=20.0), f"{second.outstanding()} transitions never acked"
    first.close(flush_timeout_s=0.5)
    stored = server.store_log.markers("twin")
    assert [m for m in stored if m >= 1000] == list(range(1000, 1100))
    assert [m for m in stored if m < 1000] == []  # the older actor's batches after the takeover are refused
    assert first.acked_transitions == 0
    assert metric("tandem_learner_rejected_messages_total", reason="superseded") >= 1


def test_a_link_cut_again_and_again_delivers_everything_once_and_never_refuses_the_actor(server, port, caplog):
    """Each cut makes ZeroMQ reconnect, and the learner sees a new connection that must Hello again and take
    the actor's id over from the old one: a takeover by the same actor, never a refusal."""
    from benchmarks.control_period import FlappingLink

    caplog.set_level("INFO", logger="learner.server")
    link = FlappingLink(port)
    sender = Sender("127.0.0.1", link.port, hello("flaps"), SenderConfig(batch_size=8)).start()
    try:
        for chunk in range(5):
            for item in transitions(100 * chunk, 100):
                assert sender.submit(item)
            wait_until(lambda: sender.acked_transitions >= 100 * chunk + 50, timeout_s=20,
                       what=f"acks after cut {chunk}")  # fmt: skip
            link.cut()
        assert sender.close(flush_timeout_s=30.0), f"{sender.outstanding()} transitions never acked"
    finally:
        link.close()
    assert not sender.refused.is_set(), sender.refused_reason
    assert server.store_log.markers("flaps") == list(range(500))
    sessions = [r for r in caplog.records if r.getMessage().startswith("actor flaps (fake) connected")]
    assert len(sessions) >= 3, "the cuts did not make the actor reconnect"
