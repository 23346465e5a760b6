"""Codec: every message round-trips; every kind of bad input is rejected with its reason."""

from __future__ import annotations

import dataclasses

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.codec import DecodeError, Limits, decode, encode
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

EXAMPLES = [
    Hello("arm-1", "franka", "0123456789abcdef", '{"a": 1}', PROTOCOL_VERSION, 7),
    Welcome(False, "spec hash mismatch: 1 vs 2", 41, "abcd", 3, True),
    TransitionBatch(
        5,
        {
            "rows/image": np.arange(2 * 8 * 8, dtype=np.uint8).reshape(2, 8, 8, 1),
            "action": np.linspace(-1, 1, 6, dtype=np.float32).reshape(3, 2),
            "terminated": np.array([False, True, False]),
        },
    ),
    Ack(12),
    EpisodeSummary(3, 40, 1.0, False, False, "task", 9, 2, 0.25, "wrong_side"),
    Heartbeat(123.5),
    WeightsRequest(4),
    Weights(8, "sac", "{}", "abcd", {"w": np.ones((4, 3), np.float32), "b": np.zeros(3, np.float64)}),
]


def _equal(a: object, b: object) -> bool:
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, dict):
            if x.keys() != y.keys() or not all(
                np.array_equal(x[k], y[k]) and x[k].dtype == y[k].dtype for k in x
            ):
                return False
        elif x != y:
            return False
    return True


@pytest.mark.parametrize("message", EXAMPLES, ids=lambda m: type(m).__name__)
def test_every_message_round_trips(message):
    decoded = decode([bytes(frame) for frame in encode(message)])
    assert type(decoded) is type(message)
    assert _equal(decoded, message)


def test_each_array_travels_as_its_own_frame_without_copying():
    image = np.arange(64, dtype=np.uint8).reshape(8, 8, 1)
    frames = encode(TransitionBatch(1, {"rows/image": image}))
    assert len(frames) == 2
    assert np.shares_memory(np.frombuffer(frames[1], dtype=np.uint8), image)


@pytest.mark.parametrize("version", [4, 5])
def test_batches_of_earlier_versions_still_decode_and_other_messages_of_them_do_not(version):
    """A spool or durable journal written before an upgrade holds batches of its version; protocol 6 changed no
    batch (it added EpisodeSummary.end_reason), so 5's read as they are; an Ack of 5 is a peer to refuse."""
    def as_version(frames: list) -> list:
        header = msgpack.unpackb(frames[0])
        return [msgpack.packb({**header, "v": version}), *map(bytes, frames[1:])]

    batch = EXAMPLES[2]
    assert _equal(decode(as_version(encode(batch))), batch)
    with pytest.raises(DecodeError, match="version"):
        decode(as_version(encode(Ack(3))))


def _header(kind="ack", v=PROTOCOL_VERSION, fields=None, arrays=None) -> bytes:
    return msgpack.packb({"kind": kind, "v": v, "f": fields if fields is not None else {"seq": 1},
                          "a": arrays if arrays is not None else []})  # fmt: skip


BAD_INPUTS = {
    "empty": [],
    "malformed_header": [b"\xc1\xc1\xc1"],
    "unknown_kind": [_header(kind="pickle")],
    "version": [_header(v=PROTOCOL_VERSION + 1)],
    "bad_fields": [_header(fields={"seq": "one"})],
    "bad_dtype": [_header(kind="transitions", arrays=[["x", "object", [1]]]), b"\0" * 8],
    "bad_shape": [_header(kind="transitions", arrays=[["x", "uint8", [-1]]]), b""],
    "frame_count": [_header(kind="transitions", arrays=[["x", "uint8", [4]]])],
    "size_mismatch": [_header(kind="transitions", arrays=[["x", "uint8", [4]]]), b"\0" * 3],
    "header_too_large": [b"\0" * (64 * 1024 + 1)],
}


@pytest.mark.parametrize("reason", sorted(BAD_INPUTS))
def test_bad_input_is_rejected_with_its_reason(reason):
    with pytest.raises(DecodeError) as info:
        decode(BAD_INPUTS[reason])
    assert info.value.reason == reason


def test_missing_and_extra_fields_are_rejected():
    with pytest.raises(DecodeError, match="bad_fields"):
        decode([_header(fields={})])
    with pytest.raises(DecodeError, match="bad_fields"):
        decode([_header(fields={"seq": 1, "evil": 2})])


def test_bool_is_not_accepted_as_an_int_and_nan_floats_are_refused():
    with pytest.raises(DecodeError, match="bad_fields"):
        decode([_header(fields={"seq": True})])
    with pytest.raises(DecodeError, match="bad_fields"):
        decode([_header(kind="heartbeat", fields={"sent_at": float("nan")})])


def test_a_pickle_payload_is_never_unpickled():
    import pickle

    payload = pickle.dumps({"kind": "ack"})
    with pytest.raises(DecodeError):
        decode([payload])


def test_truncated_frames_are_rejected():
    frames = [bytes(f) for f in encode(EXAMPLES[2])]
    frames[1] = frames[1][:-1]
    with pytest.raises(DecodeError, match="size_mismatch"):
        decode(frames)


def test_limits_cap_array_and_message_size():
    frames = [bytes(f) for f in encode(TransitionBatch(1, {"x": np.zeros(1000, np.uint8)}))]
    with pytest.raises(DecodeError, match="too_large"):
        decode(frames, Limits(max_array_bytes=999))
    with pytest.raises(DecodeError, match="too_large"):
        decode(frames, Limits(max_message_bytes=500))


def test_arrays_on_a_message_without_array_field_are_rejected():
    with pytest.raises(DecodeError, match="bad_fields"):
        decode([_header(arrays=[["x", "uint8", [1]]]), b"\0"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=200), min_size=1, max_size=4))
def test_random_bytes_never_crash_the_decoder(frames):
    try:
        decode(frames)
    except DecodeError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 1), st.integers(0, 300), st.binary(min_size=1, max_size=8))
def test_mutated_valid_messages_decode_or_fail_cleanly(frame_index, position, garbage):
    frames = [bytearray(bytes(f)) for f in encode(EXAMPLES[2])]
    target = frames[frame_index]
    target[position % len(target): position % len(target) + len(garbage)] = garbage
    try:
        decode([bytes(f) for f in frames])
    except DecodeError:
        pass


def test_encoded_frames_cross_a_real_socket_pair_whole_and_in_order():
    """send_frames/recv_frames (the sender's and server's lean multipart calls) over a DEALER -> ROUTER pair."""
    import zmq

    from common.transport import recv_frames, send_frames

    context = zmq.Context()
    router, dealer = context.socket(zmq.ROUTER), context.socket(zmq.DEALER)
    try:
        router.bind("inproc://frames")
        dealer.connect("inproc://frames")
        with pytest.raises(zmq.Again):  # nothing queued: the caller's cue to stop reading
            recv_frames(router)
        for message in EXAMPLES:
            send_frames(dealer, encode(message))
        for message in EXAMPLES:
            assert router.poll(timeout=5000)
            identity, *frames = recv_frames(router)
            assert _equal(decode(frames), message)
            send_frames(router, [identity, *encode(message)])  # a ROUTER's reply leads with the identity
            assert dealer.poll(timeout=5000)
            assert _equal(decode(recv_frames(dealer)), message)
    finally:
        router.close(linger=0)
        dealer.close(linger=0)
        context.term()
