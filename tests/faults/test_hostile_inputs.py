"""Hostile peers against a real learner server: N tried, 0 accepted, every rejection counted, server alive."""

from __future__ import annotations

import os
import pickle

import msgpack
import numpy as np
import pytest

from common.codec import encode
from common.protocol import PROTOCOL_VERSION, Ack, TransitionBatch, Weights, Welcome
from common.types import pack_transitions
from learner.server import LearnerServer
from tests.conftest import metric, wait_until
from tests.integration.test_transport import SPEC, Store, hello, raw_dealer, send_all, transitions

pytestmark = pytest.mark.timeout(60)
N = 200  # attempts per class


@pytest.fixture
def server(port):
    store = Store()
    srv = LearnerServer("127.0.0.1", port, SPEC, store).start()
    srv.store_log = store
    yield srv
    srv.close()


def rejections() -> dict[str, float]:
    from prometheus_client import REGISTRY

    found = {}
    for family in REGISTRY.collect():
        for sample in family.samples:
            if sample.name == "tandem_learner_rejected_messages_total":
                found[sample.labels["reason"]] = sample.value
    return found


def counted_since(before: dict[str, float]) -> dict[str, float]:
    now = rejections()
    return {reason: now[reason] - before.get(reason, 0.0) for reason in now if now[reason] != before.get(reason, 0.0)}


def test_every_class_of_hostile_input_is_refused_and_counted(server, port):
    rng = np.random.default_rng(0)
    before = rejections()
    duplicates_before = metric("tandem_learner_duplicate_batches_total", actor_id="legit", robot=SPEC.name)
    attacker = raw_dealer(port)
    expected: dict[str, int] = {}

    def attack(reason: str, frames_list: list[list[bytes]]) -> None:
        for frames in frames_list:
            attacker.send_multipart(frames)
        expected[reason] = expected.get(reason, 0) + len(frames_list)

    batch = encode(TransitionBatch(1, pack_transitions(transitions(0, 4))))
    batch = [bytes(f) for f in batch]
    attack("unknown_actor", [batch] * N)  # data from an actor that never said Hello
    attack("malformed_header", [[pickle.dumps(os.system)] for _ in range(N)])  # pickle payloads
    attack("header_too_large", [[b"\x00" * 70_000]] * 10)  # oversized header frame
    attack("size_mismatch", [[batch[0], *(f[: len(f) // 2] for f in batch[1:])]] * N)  # truncated arrays
    attack("unknown_kind", [[msgpack.packb({"kind": "exec", "v": PROTOCOL_VERSION, "f": {}, "a": []})]] * N)
    attack("bad_dtype", [[msgpack.packb({"kind": "transitions", "v": PROTOCOL_VERSION, "f": {"seq": 1},
                                         "a": [["x", "object", [1]]]}), b"\x00" * 8]] * N)  # fmt: skip
    random_frames = [[rng.bytes(int(rng.integers(0, 300))) for _ in range(int(rng.integers(1, 4)))] for _ in range(N)]
    for frames in random_frames:
        attacker.send_multipart(frames)
    total_expected = sum(expected.values()) + N
    wait_until(lambda: sum(counted_since(before).values()) >= total_expected, 20, what="every attempt to be counted")
    counted = counted_since(before)
    for reason, count in expected.items():
        assert counted.get(reason, 0) >= count, (reason, counted)
    assert sum(counted.values()) == total_expected, counted

    # A legitimate session, then wrong kinds, gaps, a bad spec, and replays of old sequence numbers.
    legit = raw_dealer(port)
    legit.send_multipart(encode(hello("legit")))
    assert legit.recv_multipart()  # Welcome
    for seq in (1, 2, 3):
        legit.send_multipart(encode(TransitionBatch(seq, pack_transitions(transitions(seq * 10, 4)))))
        assert isinstance(_decode(legit.recv_multipart()), Ack)
    stored = len(server.store_log.markers("legit"))
    before = rejections()
    for _ in range(N):
        legit.send_multipart(encode(TransitionBatch(int(rng.integers(1, 4)), pack_transitions(transitions(999, 4)))))
    for message in (Ack(1), Welcome(True), Weights(1, "sac", "{}", "x")) * 20:
        legit.send_multipart(encode(message))
    wrong_shape = pack_transitions(transitions(0, 4))
    wrong_shape["rows/state"] = np.zeros((wrong_shape["rows/state"].shape[0], 7), np.float32)
    legit.send_multipart(encode(TransitionBatch(4, wrong_shape)))
    legit.send_multipart(encode(TransitionBatch(50, pack_transitions(transitions(0, 4)))))  # a gap
    wait_until(lambda: counted_since(before).get("unexpected_kind", 0) >= 60
               and metric("tandem_learner_duplicate_batches_total", actor_id="legit", robot=SPEC.name)
               >= duplicates_before + N and counted_since(before).get("sequence_gap", 0) >= 1, 20,
               what="replays, wrong kinds and the gap to be counted")  # fmt: skip
    assert counted_since(before).get("invalid_batch") == 1
    assert len(server.store_log.markers("legit")) == stored == 12  # N replays + 62 wrong messages: 0 accepted
    assert server._thread.is_alive()
    send_all(port, "after", transitions(0, 20))
    assert server.store_log.markers("after") == list(range(20))
    attacker.close()
    legit.close()


def _decode(frames):
    from common.codec import decode

    return decode(frames)


def test_a_message_above_the_socket_cap_drops_the_connection_not_the_server(port):
    store = Store()
    server = LearnerServer("127.0.0.1", port, SPEC, store, max_message_bytes=64 * 1024).start()
    try:
        flood = raw_dealer(port)
        flood.send_multipart(encode(hello("big")))
        assert flood.recv_multipart()  # Welcome: a legitimate session...
        huge = pack_transitions(transitions(0, 4))
        huge["rows/state"] = np.zeros((5, 4), np.float32)
        frames = encode(TransitionBatch(1, huge))
        flood.send_multipart([*frames[:-1], b"\x00" * (1 << 20)])  # ...sends 1 MiB: libzmq drops the connection
        send_all(port, "ok", transitions(0, 8))
        assert store.markers("ok") == list(range(8)) and store.markers("big") == []
        assert server._thread.is_alive()
        flood.close()
    finally:
        server.close()
