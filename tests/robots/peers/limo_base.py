"""A fake AgileX LIMO base on a pseudo-terminal, with its own encoding of the vendor's serial protocol.

The frame layout here is written from AgileX's own LIMO driver, not from robots/limo_protocol.py, so a
mistake in the driver's framing is caught here instead of cancelling out:
  * agilexrobotics/limo_ros2, limo_base/src/limo_driver.cpp: `sendFrame` (0x55, length 0x0E, id high
    byte, id low byte, 8 data bytes, a count byte, checksum = sum of the 8 data bytes & 0xFF; 14 bytes)
    and `processRxData` (the byte-by-byte receiver whose states this peer's `VendorFrameReader` follows:
    header, length, id high, id low, data x8, count, checksum); `parseFrame` and `setMotionCommand`
    (fields big-endian: motion int16 / 1000, system state d0 vehicle state, d1 control mode, d2..3
    battery x 0.1 V, d4..5 error code, d6 motion mode; odometry two int32; IMU int16 / 100);
  * agilexrobotics/limo_ros, limo_base/include/limo_base/limo_protocol_parser.h: the message ids (0x111
    motion command, 0x211 system state, 0x221 motion state, 0x311 odometry, 0x321..0x323 IMU, 0x421
    control-mode config) and the frame structs (`struct16_t` = high byte first; ImuEulerFrame yaw, pitch,
    roll, reserved, count).
The base fills the count byte with a rolling frame counter, as the vendor's frames have one; the host's
frames carry 0 there (`sendFrame` leaves it zero).

The driver opens `port` (a symlink to the pty's slave side, so a restarted base keeps the same path) with
pyserial exactly as it opens /dev/ttyTHS1 on a robot. The base:
  * reads every frame the host writes and records 0x111 motion commands with their arrival time, 0x421
    control-mode enables, and bad frames;
  * publishes 0x221 motion state (echoing the last command), 0x211 system state (control mode 1 once
    enabled), 0x311 odometry (integrated) and 0x323 IMU euler at `rate_hz`, in alternating order;
  * can go silent (`silent = True`), inject raw bytes, and be closed and restarted on the same path.
"""

from __future__ import annotations

import os
import select
import threading
import time
import tty

SOF, LENGTH = 0x55, 0x0E  # start of frame; the frame's length in bytes (14)
MOTION_COMMAND, CONTROL_MODE_CONFIG = 0x111, 0x421  # host -> base
SYSTEM_STATE, MOTION_STATE, ODOMETRY, IMU_EULER = 0x211, 0x221, 0x311, 0x323  # base -> host
SERIAL_CONTROL = 0x01  # CONTROL_MODE_CONFIG d0: commands come over the serial link


def vendor_frame(frame_id: int, data: bytes, count: int = 0) -> bytes:
    """One frame as AgileX's sendFrame lays it out (count: the frame counter byte, 0 from a host)."""
    assert len(data) == 8
    return bytes([SOF, LENGTH, frame_id >> 8, frame_id & 0xFF, *data, count & 0xFF, sum(data) & 0xFF])


def int16_be(value: float, scale: float) -> bytes:
    """A physical value as the vendor's big-endian int16 (value x scale, to the nearest integer)."""
    raw = round(value * scale)
    return bytes([(raw >> 8) & 0xFF, raw & 0xFF])


def read_int16_be(high: int, low: int) -> int:
    raw = (high << 8) | low
    return raw - 0x10000 if raw & 0x8000 else raw


class VendorFrameReader:
    """processRxData's receiver: one byte at a time through header, length, id, 8 data bytes, count and
    checksum; a frame whose checksum fails is dropped (and counted) and the search starts again."""

    def __init__(self) -> None:
        self.bad_frames = 0
        self._state, self._id, self._data, self._count = "header", 0, bytearray(), 0

    def feed(self, chunk: bytes) -> list[tuple[int, bytes]]:
        frames = []
        for byte in chunk:
            if self._state == "header":
                self._state = "length" if byte == SOF else "header"
            elif self._state == "length":
                self._state = "id_high" if byte == LENGTH else "header"
            elif self._state == "id_high":
                self._id, self._state = byte << 8, "id_low"
            elif self._state == "id_low":
                self._id, self._data, self._state = self._id | byte, bytearray(), "data"
            elif self._state == "data":
                self._data.append(byte)
                if len(self._data) == 8:
                    self._state = "count"
            elif self._state == "count":
                self._count, self._state = byte, "check"
            else:  # "check"
                if byte == sum(self._data) & 0xFF:
                    frames.append((self._id, bytes(self._data)))
                else:
                    self.bad_frames += 1
                self._state = "header"
        return frames


def motion_command_values(data: bytes) -> tuple[float, float, float, float]:
    """0x111: linear velocity, angular velocity, lateral velocity, steering angle (int16 / 1000 each)."""
    return tuple(read_int16_be(data[i], data[i + 1]) / 1000.0 for i in (0, 2, 4, 6))  # type: ignore[return-value]


class FakeLimoBase:
    """The base side of the LIMO serial link (see module docstring)."""

    def __init__(self, port: str, rate_hz: float = 50.0) -> None:
        self.port = port
        self.rate_hz = rate_hz
        self.silent = False
        self.commands: list[tuple[float, tuple[float, float, float, float]]] = []  # (monotonic time, values)
        self.enables = 0
        self.bad_frames = 0
        self.yaw_deg = 12.5
        self._reader = VendorFrameReader()
        self._cond = threading.Condition()
        self._master: int | None = None
        self._closing = threading.Event()
        self._threads: list[threading.Thread] = []

    # ---- lifecycle ----

    def start(self) -> FakeLimoBase:
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo, no line discipline: a UART, not a terminal
        slave_path = os.ttyname(slave)
        os.close(slave)  # the driver opens it by path; the master reads EIO until then, handled below
        os.set_blocking(master, False)  # a full pty buffer (nobody reading) must not block the publisher
        tmp = self.port + ".new"
        if os.path.lexists(tmp):
            os.unlink(tmp)
        os.symlink(slave_path, tmp)
        os.replace(tmp, self.port)
        self._master = master
        self._closing = threading.Event()
        self._reader = VendorFrameReader()
        self._threads = [threading.Thread(target=self._read_loop, daemon=True, name="fake-limo-read"),
                         threading.Thread(target=self._publish_loop, daemon=True, name="fake-limo-publish")]
        for thread in self._threads:
            thread.start()
        return self

    def close(self) -> None:
        """The base powers off: its side of the link closes (the host's reads then fail)."""
        self._closing.set()
        for thread in self._threads:
            thread.join(timeout=2.0)
        if self._master is not None:
            os.close(self._master)
            self._master = None

    def restart(self) -> None:
        self.close()
        self.start()

    # ---- what the tests look at ----

    def wait_for(self, predicate, timeout: float) -> bool:
        """Wait until predicate(self) holds (re-checked on every received frame); False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self), timeout=timeout)

    def command_count(self) -> int:
        with self._cond:
            return len(self.commands)

    def last_command(self) -> tuple[float, tuple[float, float, float, float]]:
        with self._cond:
            return self.commands[-1]

    def inject(self, raw: bytes) -> None:
        os.write(self._master, raw)

    # ---- threads ----

    def _read_loop(self) -> None:
        master, closing = self._master, self._closing
        while not closing.is_set():
            ready, _, _ = select.select([master], [], [], 0.05)
            if not ready:
                continue
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: no process has the slave open (yet, or any more)
                closing.wait(0.01)
                continue
            frames = self._reader.feed(chunk)
            now = time.monotonic()
            with self._cond:
                self.bad_frames = self._reader.bad_frames
                for frame_id, data in frames:
                    if frame_id == MOTION_COMMAND:
                        self.commands.append((now, motion_command_values(data)))
                    elif frame_id == CONTROL_MODE_CONFIG and data[0] == SERIAL_CONTROL:
                        self.enables += 1
                self._cond.notify_all()

    def _publish_loop(self) -> None:
        master, closing = self._master, self._closing
        period, tick, odometry_mm = 1.0 / self.rate_hz, 0, [0, 0]
        while not closing.wait(period):
            if self.silent:
                continue
            with self._cond:
                v, w = self.commands[-1][1][:2] if self.commands else (0.0, 0.0)
                enabled = self.enables > 0
            odometry_mm = [odometry_mm[0] + int(v * 1000 * period), odometry_mm[1] + int(v * 1000 * period)]
            battery_dv, error_code, motion_mode = 124, 0, 0  # 12.4 V, no error, four-wheel differential
            frames = [
                vendor_frame(MOTION_STATE, int16_be(v, 1000) + int16_be(w, 1000) + bytes(4), tick),
                vendor_frame(SYSTEM_STATE, bytes([0, 1 if enabled else 0, battery_dv >> 8, battery_dv & 0xFF,
                                                  error_code >> 8, error_code & 0xFF, motion_mode, 0]), tick),
                vendor_frame(ODOMETRY, b"".join(int(x).to_bytes(4, "big", signed=True) for x in odometry_mm), tick),
                vendor_frame(IMU_EULER, int16_be(self.yaw_deg, 100) + bytes(4) + bytes(2), tick),
            ]
            tick += 1
            if tick % 2:  # alternate the order, as a real base does not promise one
                frames.reverse()
            try:
                os.write(master, b"".join(frames))
            except OSError:
                pass  # nobody has the port open; a real UART would just drop the bytes too
