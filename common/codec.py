"""Encode messages as a msgpack header frame plus one raw frame per array; decode without trusting the peer.

Frame 0: msgpack map {"kind": str, "v": PROTOCOL_VERSION, "f": {scalar fields}, "a": [[name, dtype, shape], ...]}.
Frames 1..n: the arrays' bytes, C-contiguous, sent and received without copying.

Decoding checks, in order: frame count and sizes against the limits, msgpack with small container
limits and no extension types, a known kind, the protocol version, each scalar field's type, every
array's dtype against an allow-list, its shape against the limits and its byte length against the frame.
Any failure raises DecodeError with a short machine-readable `reason` (used as a metric label).
There is no pickle anywhere.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from typing import Any, Sequence

import msgpack
import numpy as np

from common.protocol import ARRAY_FIELDS, KIND_OF, MESSAGE_TYPES, PROTOCOL_VERSION, READABLE_BATCH_VERSIONS
from common.specs import ALLOWED_DTYPES

_DTYPES = {name: np.dtype(name) for name in ALLOWED_DTYPES}  # looked up per array: keep it a dict hit
_DTYPE_NAMES = {dtype: name for name, dtype in _DTYPES.items()}  # dtype.name costs ~4 us per call in numpy 2
_SCALAR_TYPES: dict[str, tuple[type, ...]] = {"str": (str,), "int": (int,), "float": (int, float), "bool": (bool,)}


@dataclass(frozen=True)
class Limits:
    """Upper bounds a decoder enforces before allocating or interpreting anything."""

    max_header_bytes: int = 64 * 1024
    max_arrays: int = 256
    max_array_bytes: int = 512 * 1024 * 1024
    max_message_bytes: int = 1024 * 1024 * 1024
    max_ndim: int = 8
    max_string_chars: int = 32 * 1024


DEFAULT_LIMITS = Limits()


class DecodeError(ValueError):
    """A message was rejected; `reason` is a short label such as 'malformed_header' or 'bad_dtype'."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


def encode(message: Any) -> list:
    """Frames for `message`: a header (bytes) and each array as a zero-copy buffer."""
    kind = KIND_OF.get(type(message))
    if kind is None:
        raise TypeError(f"not a protocol message: {type(message).__name__}")
    scalars: dict[str, Any] = {}
    descriptors: list[list] = []
    buffers: list = []
    for name in _fields(type(message)):
        value = getattr(message, name)
        if name in ARRAY_FIELDS:
            for key, array in value.items():
                array = np.ascontiguousarray(array)
                descriptors.append([key, _DTYPE_NAMES.get(array.dtype) or array.dtype.name, list(array.shape)])
                buffers.append(memoryview(array).cast("B") if array.size else b"")
        else:
            scalars[name] = value
    header = msgpack.packb({"kind": kind, "v": PROTOCOL_VERSION, "f": scalars, "a": descriptors}, use_bin_type=True)
    return [header, *buffers]


def decode(frames: Sequence, limits: Limits = DEFAULT_LIMITS) -> Any:
    """Rebuild a message from frames (bytes or zmq.Frame). Arrays are read-only views of the frames."""
    if not frames:
        raise DecodeError("empty")
    buffers = [_buffer_of(frame) for frame in frames]
    if sum(len(b) for b in buffers) > limits.max_message_bytes:
        raise DecodeError("too_large", "message exceeds the size limit")
    header = _unpack_header(buffers[0], limits)
    cls = MESSAGE_TYPES[header["kind"]]
    fields = _fields(cls)
    kwargs = _check_scalars(header["f"], fields, limits)
    array_field = _array_field(cls)
    arrays = _decode_arrays(header["a"], buffers[1:], limits)
    if arrays and array_field is None:
        raise DecodeError("bad_fields", f"{header['kind']} carries no arrays")
    if array_field is not None:
        kwargs[array_field] = arrays
    return cls(**kwargs)


@functools.cache
def _fields(cls: type) -> dict[str, dataclasses.Field]:
    """A message class's fields by name (dataclasses.fields() on every message costs more than the rest)."""
    return {f.name: f for f in dataclasses.fields(cls)}


@functools.cache
def _array_field(cls: type) -> str | None:
    """The message class's one field of named arrays, if it has one."""
    return next((name for name in ARRAY_FIELDS if name in _fields(cls)), None)


def _buffer_of(frame: Any) -> memoryview:
    buffer = getattr(frame, "buffer", frame)  # zmq.Frame exposes .buffer; bytes/memoryview pass through
    try:
        return memoryview(buffer).cast("B")
    except TypeError as exc:
        raise DecodeError("malformed_frame", str(exc)) from None


def _unpack_header(buffer: memoryview, limits: Limits) -> dict:
    if len(buffer) > limits.max_header_bytes:
        raise DecodeError("header_too_large", f"{len(buffer)} bytes")
    try:
        header = msgpack.unpackb(
            buffer,
            raw=False,
            strict_map_key=True,
            max_str_len=limits.max_string_chars,
            max_bin_len=0,
            max_array_len=limits.max_arrays,
            max_map_len=64,
            max_ext_len=0,
            ext_hook=_refuse_ext,
        )
    except DecodeError:
        raise
    except Exception as exc:  # msgpack raises several unrelated types for bad input
        raise DecodeError("malformed_header", type(exc).__name__) from None
    if not isinstance(header, dict) or set(header) != {"kind", "v", "f", "a"}:
        raise DecodeError("malformed_header", "header keys")
    if header["kind"] not in MESSAGE_TYPES:
        raise DecodeError("unknown_kind", repr(header["kind"])[:64])
    # A Hello of another version is still decoded so the learner can refuse it by name; batches an older version
    # spooled are read (READABLE_BATCH_VERSIONS).
    readable = READABLE_BATCH_VERSIONS if header["kind"] == "transitions" else (PROTOCOL_VERSION,)
    if header["v"] not in readable and header["kind"] != "hello":
        raise DecodeError("version", f"peer speaks {header['v']!r}, we speak {PROTOCOL_VERSION}")
    if not isinstance(header["f"], dict) or not isinstance(header["a"], list):
        raise DecodeError("malformed_header", "fields/arrays")
    return header


def _refuse_ext(code: int, data: bytes) -> None:
    raise DecodeError("malformed_header", "msgpack extension types are not allowed")


def _check_scalars(values: dict, fields: dict, limits: Limits) -> dict:
    expected = _scalar_names(tuple(fields))
    if values.keys() != expected:
        raise DecodeError("bad_fields", f"got {sorted(values)[:16]}, want {sorted(expected)}")
    for name, value in values.items():
        allowed = _SCALAR_TYPES[fields[name].type]
        if isinstance(value, bool) and bool not in allowed:
            raise DecodeError("bad_fields", f"{name} must not be a bool")
        if not isinstance(value, allowed):
            raise DecodeError("bad_fields", f"{name} has type {type(value).__name__}")
        if isinstance(value, float) and not np.isfinite(value):
            raise DecodeError("bad_fields", f"{name} is not finite")
    return dict(values)


@functools.cache
def _scalar_names(names: tuple[str, ...]) -> frozenset[str]:
    return frozenset(name for name in names if name not in ARRAY_FIELDS)


def _decode_arrays(descriptors: list, buffers: list, limits: Limits) -> dict[str, np.ndarray]:
    if len(descriptors) != len(buffers):
        raise DecodeError("frame_count", f"{len(descriptors)} descriptors, {len(buffers)} frames")
    arrays: dict[str, np.ndarray] = {}
    for descriptor, buffer in zip(descriptors, buffers):
        name, dtype, shape = _check_descriptor(descriptor, limits)
        if name in arrays:
            raise DecodeError("bad_shape", f"array {name!r} twice")
        expected = math.prod(shape) * dtype.itemsize
        if expected > limits.max_array_bytes:
            raise DecodeError("too_large", f"array {name!r}")
        if len(buffer) != expected:
            raise DecodeError("size_mismatch", f"{name}: {len(buffer)} bytes, descriptor says {expected}")
        arrays[name] = np.frombuffer(buffer, dtype=dtype).reshape(shape)
    return arrays


def _check_descriptor(descriptor: Any, limits: Limits) -> tuple[str, np.dtype, tuple[int, ...]]:
    if not (isinstance(descriptor, list) and len(descriptor) == 3):
        raise DecodeError("malformed_header", "array descriptor")
    name, dtype, shape = descriptor
    if not isinstance(name, str) or not name or len(name) > 256:
        raise DecodeError("malformed_header", "array name")
    if dtype not in ALLOWED_DTYPES:
        raise DecodeError("bad_dtype", repr(dtype)[:32])
    if (
        not isinstance(shape, list)
        or len(shape) > limits.max_ndim
        or not all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 2**31 for d in shape)
    ):
        raise DecodeError("bad_shape", f"{name}: {shape!r}"[:80])
    return name, _DTYPES[dtype], tuple(shape)
