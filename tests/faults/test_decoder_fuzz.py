"""Fuzzing the wire decoder: any bytes give a valid message or a DecodeError with a reason, nothing else."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.codec import DecodeError, Limits, decode, encode
from common.protocol import MESSAGE_TYPES, PROTOCOL_VERSION, TransitionBatch
from common.specs import ALLOWED_DTYPES

pytestmark = pytest.mark.timeout(120)
SMALL = Limits(max_header_bytes=4096, max_arrays=16, max_array_bytes=1 << 16, max_message_bytes=1 << 20)
FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.floats(), st.text(max_size=20),
                    st.binary(max_size=20))  # fmt: skip
shapes = st.lists(st.integers(-3, 2**40), max_size=10)
descriptors = st.lists(
    st.one_of(st.tuples(st.text(max_size=8), st.sampled_from([*ALLOWED_DTYPES, "object", "V8", "<U4", ""]), shapes)
              .map(list), scalars), max_size=5,
)  # fmt: skip
headers = st.fixed_dictionaries({
    "kind": st.one_of(st.sampled_from(sorted(MESSAGE_TYPES)), st.text(max_size=8), scalars),
    "v": st.one_of(st.just(PROTOCOL_VERSION), scalars),
    "f": st.one_of(st.dictionaries(st.sampled_from(["seq", "accepted", "version", "actor_id", "x"]), scalars,
                                   max_size=6), scalars),
    "a": st.one_of(descriptors, scalars),
})  # fmt: skip


def check(frames) -> None:
    try:
        message = decode(frames, SMALL)
    except DecodeError as exc:
        assert exc.reason and " " not in exc.reason
        return
    assert type(message) in MESSAGE_TYPES.values()


@FUZZ
@given(st.lists(st.binary(max_size=300), max_size=5))
def test_random_frames(frames):
    check(frames)


@FUZZ
@given(headers, st.lists(st.binary(max_size=64), max_size=5))
def test_structured_headers(header, payloads):
    check([msgpack.packb(header, use_bin_type=True), *payloads])


@FUZZ
@given(st.integers(0, 10_000), st.integers(0, 255), st.integers(0, 3))
def test_mutated_valid_messages(position, value, truncate):
    frames = [bytes(f) for f in encode(TransitionBatch(7, {"obs_index": np.arange(4, dtype=np.int32)}))]
    header = bytearray(frames[0])
    header[position % len(header)] = value
    check([bytes(header), *(f[: len(f) - truncate] for f in frames[1:])])


@FUZZ
@given(st.binary(min_size=64, max_size=64 * 6), st.integers(1, 6))
def test_any_step_record_bytes_unpack_into_checked_columns_or_a_spec_error(raw, count):
    """A peer controls every byte of the step records: whatever they say, unpacking gives columns whose actions and
    rewards are finite, actions in [-1, 1] and row indexes in range, or a SpecError; nothing else."""
    from common.specs import SpecError
    from common.types import STEPS, pack_transitions, step_dtype, unpack_transitions
    from robots.fake import FakeRobot
    from tests.integration.test_transport import transitions

    spec = FakeRobot().spec
    arrays = dict(pack_transitions(transitions(0, 3)))
    size = step_dtype(spec.action.shape).itemsize
    count = min(count, len(raw) // size)
    arrays[STEPS] = np.frombuffer(raw[: count * size], np.uint8).reshape(count, size)
    try:
        columns = unpack_transitions(arrays, spec)
    except SpecError:
        return
    rows = len(arrays["rows/state"])
    assert np.isfinite(columns["action"]).all() and np.abs(columns["action"]).max() <= 1 + 1e-6
    assert np.isfinite(columns["reward"]).all() and len(columns["observation/state"]) == count
    steps = arrays[STEPS].reshape(-1).view(step_dtype(spec.action.shape))
    assert steps["obs_index"].min() >= 0 and steps["next_obs_index"].max() < rows
