"""The AgileX LIMO base's serial protocol: 14-byte frames, encoded and decoded without any SDK.

Frame: 0x55 0x0E idH idL d0..d7 <reserved=0> checksum, checksum = sum(d0..d7) & 0xFF, 460800 baud 8N1.
Multi-byte fields are big-endian. IDs and fields (as in AgileX's limo_base driver and pylimo 0.3.5):
  0x111 motion command (host -> base): v, w, lateral v, steering angle, each int16 x 1000 (m/s, rad/s, m/s, rad)
  0x421 control-mode enable (host -> base): d0 = 0x01 (commands over the serial link)
  0x221 motion state: v, w, lateral v, steering, each int16 / 1000
  0x211 system state: d0 vehicle state, d1 control mode, d2..3 battery voltage uint16 x 0.1 V,
        d4..5 error code uint16, d6 motion mode
  0x311 odometry: left, right wheel odometry, int32 in mm
  0x321 / 0x322 / 0x323 IMU accel (m/s^2), gyro (deg/s), euler yaw/pitch/roll (deg): int16 / 100
The IMU scales are the AgileX driver's; they are not needed by the policy (documented as assumptions).

`FrameDecoder` takes arbitrary chunks of bytes, resynchronises on the 0x55 0x0E header, verifies the
checksum and counts bad frames; pylimo's reader parsed one frame per 28-byte read and dropped the rest.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

HEADER = b"\x55\x0e"
FRAME_LEN = 14
BAUDRATE = 460800

ID_MOTION_COMMAND = 0x111
ID_CONTROL_MODE = 0x421
ID_SYSTEM_STATE = 0x211
ID_MOTION_STATE = 0x221
ID_ODOMETRY = 0x311
ID_IMU_ACCEL = 0x321
ID_IMU_GYRO = 0x322
ID_IMU_EULER = 0x323


def checksum(data: bytes) -> int:
    return sum(data) & 0xFF


def encode_frame(frame_id: int, data: bytes) -> bytes:
    """One 14-byte frame carrying 8 data bytes."""
    if len(data) != 8 or not 0 <= frame_id <= 0xFFFF:
        raise ValueError(f"bad frame: id {frame_id:#x}, {len(data)} data bytes")
    return HEADER + struct.pack(">H", frame_id) + bytes(data) + bytes([0, checksum(data)])


def to_int16_milli(value: float) -> int:
    """Physical value -> int16 thousandths, saturated (never wraps around to the opposite sign)."""
    return max(-32768, min(32767, round(value * 1000.0)))


def encode_motion_command(v: float, w: float, lateral: float = 0.0, steering: float = 0.0) -> bytes:
    return encode_frame(ID_MOTION_COMMAND, struct.pack(">4h", *(to_int16_milli(x) for x in (v, w, lateral, steering))))


def encode_control_mode_enable() -> bytes:
    return encode_frame(ID_CONTROL_MODE, bytes([0x01]) + bytes(7))


def decode_motion_command(data: bytes) -> tuple[float, float, float, float]:
    return tuple(x / 1000.0 for x in struct.unpack(">4h", data))  # type: ignore[return-value]


@dataclass
class FrameDecoder:
    """Incremental decoder: feed() bytes, get back (id, data) of every complete frame with a good checksum."""

    good: int = 0
    bad_checksum: int = 0
    skipped_bytes: int = 0  # bytes discarded while looking for a header

    def __post_init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, chunk: bytes) -> list[tuple[int, bytes]]:
        self._buffer += chunk
        frames = []
        while True:
            start = self._buffer.find(HEADER)
            if start < 0:
                # Keep a trailing 0x55: it may be the first half of the next header.
                keep = 1 if self._buffer[-1:] == HEADER[:1] else 0
                self.skipped_bytes += len(self._buffer) - keep
                del self._buffer[:len(self._buffer) - keep]
                return frames
            if start:
                self.skipped_bytes += start
                del self._buffer[:start]
            if len(self._buffer) < FRAME_LEN:
                return frames
            frame = bytes(self._buffer[:FRAME_LEN])
            data = frame[4:12]
            if frame[13] != checksum(data):
                # Drop only the header byte and resynchronise: a corrupt frame may hide a real one.
                self.bad_checksum += 1
                del self._buffer[:1]
                continue
            del self._buffer[:FRAME_LEN]
            self.good += 1
            frames.append((struct.unpack(">H", frame[2:4])[0], data))

    @property
    def bad_frames(self) -> int:
        return self.bad_checksum
