"""`limo`: the AgileX LIMO base over its serial link, with our own framing (robots/limo_protocol.py).

pylimo is not used: its reader busy-loops a core and drops frames (environment.md §3.3). Here a reader
thread blocks in pyserial's read with a timeout (no spinning), decodes every frame, verifies checksums,
counts bad frames, and reopens the port if the link drops (the base rebooted, the cable was re-seated).

Action: (v, w) in m/s and rad/s, the same BoundedSpec as `limo_sim` (robots/sim/limo.py), clipped by
ActionSafety (NaN/Inf -> stop) before it is encoded; a `CommandWatchdog` sends the stop (v = w = 0) when no
action arrives within `watchdog_ms`. The firmware's own command timeout is unknown, so we assume none; hence
the safe stop outside the actor (robots/deadman.py, `-o deadman=true`, the default): a supervising process
opens the same serial port itself and writes the stop frame when this process dies.

Observations (spec valid before connect, chosen by options):
  observation="image" (default when a camera is given): {"image": uint8[S, S, 1]} grayscale, exactly the
      spec of `limo_sim -o observation=image`; needs `camera` (a Camera, or a source string for make_camera);
  observation="proprio" (default without a camera): {"state": float32[4]} = measured v / 0.5, w / 1.5,
      sin(yaw), cos(yaw) from the base's own state frames. This differs from limo_sim's "state" mode, whose
      10 values are privileged scene positions (ball, goal, obstacle) that the real robot cannot observe;
  observation="deploy": {"image": ..., "proprio": float32[4]}, the camera image and those four values,
      exactly `limo_sim -o observation=deploy` (robots/deployable.py): a policy trained on the twin in that
      mode runs here (`actor --robot limo --policy best_policy.npz -o observation=deploy -o camera=0`).
Every observation also requires fresh base state frames (younger than `state_timeout_ms`): a silent base
raises RobotError instead of returning stale data.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import struct
import threading
import time

import numpy as np

from common.specs import BoundedSpec, RobotSpec
from common.types import Observation
from robots import limo_protocol as lp
from robots.base import ROBOTS, Camera, RobotError
from robots.deployable import DEPLOY, deploy_observation, limo_proprio
from robots.driver_kit import OperatorTask, RealRobot, camera_observation, observation_specs, unreachable
from robots.lifecycle import Lifecycle, LinkState
from robots.safety import ActionSafety
from robots.sim.limo import LIMO_CONTROL_HZ, MAX_V, MAX_W
from robots.watchdog import DEFAULT_DEADLINE_S, CommandWatchdog

log = logging.getLogger(__name__)

DEFAULT_PORT = "/dev/ttyTHS1"  # the Jetson UART wired to the base
PORT_CHECK = f"-o port= names the UART wired to the base ({DEFAULT_PORT} on the LIMO's Jetson) and this user may " \
             "open it (e.g. group dialout)"
PROPRIO_DIM = 4


def make_limo_driver_spec(observation: str, image_size: int = 64) -> RobotSpec:
    if observation not in ("image", "proprio", DEPLOY):
        raise ValueError(f"limo observation must be 'image', 'proprio' or 'deploy', got {observation!r}")
    return RobotSpec(
        name="limo",
        observation=observation_specs("limo", observation, image_size, PROPRIO_DIM),
        action=BoundedSpec("action", (2,), "float32", low=(-MAX_V, -MAX_W), high=(MAX_V, MAX_W)),
        control_hz=LIMO_CONTROL_HZ,
        metadata={"simulated": "false", "observation": observation, "action_units": "m/s,rad/s"},
    )


class _BaseState:
    """The newest decoded state frames with their arrival times (written by the reader thread)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received = threading.Condition(self.lock)
        self.motion = (0.0, 0.0)  # v, w
        self.yaw_rad = 0.0
        self.control_mode = 0
        self.battery_v = 0.0
        self.error_code = 0
        self.odometry_m = (0.0, 0.0)
        self.last_state_time = 0.0  # monotonic time of the newest 0x221/0x211 frame; 0: none yet

    def update(self, frame_id: int, data: bytes) -> None:
        with self.lock:
            if frame_id == lp.ID_MOTION_STATE:
                v, w, _, _ = struct.unpack(">4h", data)
                self.motion = (v / 1000.0, w / 1000.0)
            elif frame_id == lp.ID_SYSTEM_STATE:
                _, self.control_mode, battery, self.error_code, _, _ = struct.unpack(">BBHHBB", data)
                self.battery_v = battery * 0.1
            elif frame_id == lp.ID_ODOMETRY:
                left, right = struct.unpack(">2i", data)
                self.odometry_m = (left / 1000.0, right / 1000.0)
                return
            elif frame_id == lp.ID_IMU_EULER:
                self.yaw_rad = math.radians(struct.unpack(">h", data[:2])[0] / 100.0)
                return
            else:
                return
            self.last_state_time = time.monotonic()
            self.received.notify_all()


@functools.cache
def _serial_without_input_flush() -> type:
    """pyserial's Serial whose open() leaves the tty's input queue alone (pyserial 3.5's open ends with
    `_reset_input_buffer()`, a TCIFLUSH; the stop path must not take bytes from another process's reader)."""
    import serial

    class SerialWithoutInputFlush(serial.Serial):
        def _reset_input_buffer(self) -> None:
            pass

    return SerialWithoutInputFlush


@ROBOTS.register("limo")
class LimoRobot(RealRobot):
    """AgileX LIMO over serial (see module docstring). Options: port, baudrate, camera, observation, ..."""

    def __init__(self, *, port: str = DEFAULT_PORT, baudrate: int = lp.BAUDRATE, camera: Camera | str | None = None,
                 observation: str = "", image_size: int = 64, watchdog_ms: float = DEFAULT_DEADLINE_S * 1e3,
                 connect_timeout_s: float = 2.0, state_timeout_ms: float = 300.0, camera_max_age_ms: float = 200.0,
                 reconnect_interval_s: float = 0.2, max_steps: int = 200, deadman: bool = True) -> None:
        observation, self.camera = camera_observation("limo", observation, camera, image_size)
        self._spec = make_limo_driver_spec(observation, image_size)
        self.port, self.baudrate = str(port), int(baudrate)
        self.connect_timeout_s = float(connect_timeout_s)
        self.state_timeout_s = float(state_timeout_ms) / 1e3
        self.camera_max_age_ms = float(camera_max_age_ms)
        self.reconnect_interval_s = float(reconnect_interval_s)
        self.safety = ActionSafety(self._spec.action)
        self.task = OperatorTask(max_steps)  # success/failure come from the operator's keys
        self.watchdog = CommandWatchdog(self._send_stop, float(watchdog_ms) / 1e3, name="limo")
        self.decoder = lp.FrameDecoder()
        self.state = _BaseState()
        self.reconnects = 0
        self._lifecycle = Lifecycle("limo")
        self._write_lock = threading.RLock()  # serial writes only (re-entrant: stop() may run in a signal handler)
        self._serial = None
        self._reader: threading.Thread | None = None
        self._closing = threading.Event()
        self.use_deadman = bool(deadman)

    def connect(self) -> None:
        with self._lifecycle.lock:
            if self._lifecycle.state is not LinkState.DISCONNECTED:
                return
            self._serial = self._open_port()
            self._closing.clear()
            self._reader = threading.Thread(target=self._read_loop, daemon=True, name="limo-serial-reader")
            self._reader.start()
            try:
                self._write(lp.encode_control_mode_enable())
                self._wait_for_state(self.connect_timeout_s)
                if self.camera is not None:
                    self.camera.connect()
                self._start_deadman()
            except BaseException:
                self._close_link()
                raise
            self._lifecycle.connect()

    def _on_enable(self) -> None:
        self._write(lp.encode_control_mode_enable())
        self.watchdog.start()

    def stop(self) -> None:
        """Command v = w = 0 now. Never takes the control-step lock, so a stalled control step cannot delay it.

        Never raises (it runs in signal handlers and cleanup paths): if the link is down, the failure is
        logged and the watchdog re-armed, so it retries every deadline until the reopened link carries it.
        """
        self._stop_or_retry(self._send_stop)

    def _send_stop(self) -> None:
        """The stop frame; raises RobotError if it could not be written (the watchdog's stop function)."""
        if self._serial is None and self._lifecycle.state is LinkState.DISCONNECTED:
            return  # never connected, or disconnected: nothing is listening and nothing was commanded
        self._watched(lambda: self._write(lp.encode_motion_command(0.0, 0.0)))

    def disconnect(self) -> None:
        with self._lifecycle.lock:
            try:
                self._close_watchdog_and_stop()
            finally:
                self._end_deadman()  # after our own stop: the supervisor leaves without sending anything
                self._close_link()
                self._lifecycle.disconnect()

    # ---- the stop path of the safe-stop supervisor (robots/deadman.py) ----

    def deadman_options(self) -> dict:
        return {"port": self.port, "baudrate": self.baudrate}

    def open_stop_path(self) -> None:
        """Our own open of the serial port (a tty may be open in several processes; we never read it).

        Opened without pyserial's input flush: the tty's input queue is shared with the actor's reader, and
        a flush between its select and its read makes that read return nothing, which pyserial reports as a
        disconnected device (a spurious link loss in the actor, 12 in 1,000 opens measured on a pty)."""
        self._serial = self._open_port(flush_input=False)

    def send_safe_stop(self) -> None:
        """The stop frame, twice: if the dead actor left a frame half-written, the base's receiver swallows
        the first copy's bytes as that frame's tail (a bad checksum) and the second copy arrives whole."""
        frames = lp.encode_motion_command(0.0, 0.0) * 2
        try:
            self._write(frames)
        except RobotError:  # the base was power-cycled since we opened the port: one reopen is worth it
            self.close_stop_path()
            self._serial = self._open_port(flush_input=False)
            self._write(frames)
        self._serial.flush()  # tcdrain: out of our buffer before we report it sent

    def close_stop_path(self) -> None:
        port, self._serial = self._serial, None
        if port is not None:
            port.close()

    @property
    def bad_frames(self) -> int:
        return self.decoder.bad_frames

    # ---- internals ----

    def _observe(self) -> Observation:
        self._require_fresh_state()
        observation = self._spec.metadata["observation"]
        if observation == "image":
            return {"image": self.camera.read_latest(self.camera_max_age_ms)}
        with self.state.lock:
            (v, w), yaw = self.state.motion, self.state.yaw_rad
        proprio = limo_proprio(v, w, yaw, MAX_V, MAX_W)
        if observation == DEPLOY:
            return deploy_observation(self.camera.read_latest(self.camera_max_age_ms), proprio)
        return {"state": np.array(proprio, dtype=np.float32)}

    def _execute(self, action: np.ndarray) -> np.ndarray:
        self._require_fresh_state()
        self._write(lp.encode_motion_command(float(action[0]), float(action[1])))
        self.watchdog.feed()
        return action

    def _open_port(self, flush_input: bool = True):
        import serial  # pyserial, imported here so `import robots` needs no driver dependency

        port_class = serial.Serial if flush_input else _serial_without_input_flush()
        try:
            return port_class(self.port, self.baudrate, timeout=0.05, write_timeout=0.1)
        except (serial.SerialException, OSError) as exc:
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            raise unreachable("limo", f"cannot open serial port {self.port} ({reason})", PORT_CHECK) from None

    def _write(self, frame: bytes) -> None:
        with self._write_lock:
            port = self._serial
            if port is None:
                raise RobotError(f"limo: serial port {self.port} is not open")
            try:
                port.write(frame)
            except Exception as exc:  # noqa: BLE001 - pyserial raises SerialException, OSError or TypeError
                raise RobotError(f"limo: write to {self.port} failed: {exc}") from None

    def _wait_for_state(self, timeout_s: float) -> None:
        with self.state.received:
            if not self.state.received.wait_for(lambda: self.state.last_state_time > 0, timeout=timeout_s):
                raise unreachable("limo", f"no state frames from the base on serial port {self.port} at "
                                          f"{self.baudrate} baud within {timeout_s:g} s",
                                  f"the base is switched on and {PORT_CHECK}; -o baudrate= (the LIMO's is "
                                  f"{lp.BAUDRATE})")

    def _require_fresh_state(self) -> None:
        with self.state.lock:
            age = time.monotonic() - self.state.last_state_time
        if age > self.state_timeout_s:
            raise RobotError(f"limo: base silent for {age:.2f} s on {self.port} (limit {self.state_timeout_s:.2f} s)")

    def _read_loop(self) -> None:
        while not self._closing.is_set():
            port = self._serial
            try:
                if port is None:
                    raise OSError("port closed")
                # Blocks up to the port timeout (50 ms) for the first byte: no busy loop when idle.
                chunk = port.read(max(1, port.in_waiting))
            except Exception as exc:  # noqa: BLE001 - any read failure means the link dropped
                if self._closing.is_set():
                    return
                log.warning("limo: serial link lost (%s); reopening %s", exc, self.port)
                self._reopen()
                continue
            for frame_id, data in self.decoder.feed(chunk):
                self.state.update(frame_id, data)

    def _reopen(self) -> None:
        """Reopen the port until it works or we are closing; re-enable command mode on the new link."""
        with self._write_lock:
            old, self._serial = self._serial, None
        with self.state.received:
            self.state.received.notify_all()  # waiters on the link state (tests, check) see the loss at once
        if old is not None:
            try:
                old.close()
            except Exception as exc:  # noqa: BLE001 - closing a dead port may fail; we reopen regardless
                log.debug("limo: closing the lost port: %s", exc)
        while not self._closing.wait(self.reconnect_interval_s):
            try:
                port = self._open_port()
            except RobotError:
                continue
            with self._write_lock:
                self._serial = port
            self.reconnects += 1
            try:
                self._write(lp.encode_control_mode_enable())
            except RobotError:
                continue
            return

    def _close_link(self) -> None:
        self._closing.set()
        reader, self._reader = self._reader, None
        if reader is not None and reader is not threading.current_thread():
            reader.join(timeout=2.0)
        with self._write_lock:
            port, self._serial = self._serial, None
        if port is not None:
            port.close()
        if self.camera is not None:
            self.camera.disconnect()
        with self.state.lock:
            self.state.last_state_time = 0.0
