"""A fake AgileX LIMO base on a pseudo-terminal, speaking the serial protocol of robots/limo_protocol.py.

The driver opens `port` (a symlink to the pty's slave side, so a restarted base keeps the same path) with
pyserial exactly as it opens /dev/ttyTHS1 on a robot. The base:
  * decodes every frame the host writes (checksums verified independently of the driver's decoder) and
    records 0x111 motion commands with their arrival time, 0x421 control-mode enables, and bad frames;
  * publishes 0x221 motion state (echoing the last command), 0x211 system state (control mode 1 once
    enabled), 0x311 odometry (integrated) and 0x323 IMU euler at `rate_hz`, in alternating order;
  * can go silent (`silent = True`), inject raw bytes, and be closed and restarted on the same path.
"""

from __future__ import annotations

import os
import select
import struct
import threading
import time
import tty

from robots import limo_protocol as lp


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
        self._decoder = lp.FrameDecoder()
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
        self._decoder = lp.FrameDecoder()
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
            frames = self._decoder.feed(chunk)
            now = time.monotonic()
            with self._cond:
                self.bad_frames = self._decoder.bad_frames
                for frame_id, data in frames:
                    if frame_id == lp.ID_MOTION_COMMAND:
                        self.commands.append((now, lp.decode_motion_command(data)))
                    elif frame_id == lp.ID_CONTROL_MODE and data[0] == 0x01:
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
            frames = [
                lp.encode_frame(
                    lp.ID_MOTION_STATE, struct.pack(">4h", lp.to_int16_milli(v), lp.to_int16_milli(w), 0, 0)
                ),
                lp.encode_frame(lp.ID_SYSTEM_STATE, struct.pack(">BBHHBB", 0, 1 if enabled else 0, 124, 0, 0, 0)),
                lp.encode_frame(lp.ID_ODOMETRY, struct.pack(">2i", *odometry_mm)),
                lp.encode_frame(lp.ID_IMU_EULER, struct.pack(">3h1x1x", int(self.yaw_deg * 100), 0, 0)),
            ]
            tick += 1
            if tick % 2:  # alternate the order, as a real base does not promise one
                frames.reverse()
            try:
                os.write(master, b"".join(frames))
            except OSError:
                pass  # nobody has the port open; a real UART would just drop the bytes too
