"""`rm65`: the RealMan RM65-B arm through a thin client of RealMan's JSON-over-TCP protocol (no SDK).

The arm's controller listens on TCP (default 192.168.1.18:8080) for JSON objects, one per line ending in
"\\r\\n"; replies carry a "state" key naming what they answer. The commands this driver uses:

  {"command":"get_current_arm_state"}
      -> {"state":"current_arm_state","arm_state":{"joint":[6 x 0.001 deg],"pose":[x,y,z in 0.001 mm,
          rx,ry,rz in 0.001 rad],"err":...}}
  {"command":"movep_canfd","pose":[x,y,z (0.001 mm), rx,ry,rz (0.001 rad)],"follow":false}
      pose pass-through ("透传"): the controller follows a streamed Cartesian target; no reply.
  {"command":"set_arm_slow_stop"}  -> {"state":"set_arm_slow_stop","arm_slow_stop":true}   (stop on the path)
  {"command":"set_arm_stop"}       -> {"state":"set_arm_stop","arm_stop":true}              (emergency stop)

Established (environment.md §3.4): JSON lines with \\r\\n over TCP on 8080; replies keyed by "state";
get_current_arm_state returning joint and pose; the movej field layout and its x1000 integer units.
Assumptions, to check against RealMan's JSON protocol document on the first hardware run: the exact
reply names of the two stop commands, the pose units of movep_canfd (taken as those of get_current_arm_state)
and its "follow" flag. The client tolerates unknown lines (counted in `unexpected_lines`).

Action: tool-tip Cartesian velocity (vx, vy, vz) in m/s, the same BoundedSpec as `rm65_sim` (limits from
robots/arm_limits.py). Each step: ActionSafety (clip; NaN/Inf -> stop), the workspace hold
(`hold_inside_workspace`), then target = previous target + v / control_hz, kept inside the workspace box
(never further out than the arm already is) and at most two steps from the measured pose, streamed with
movep_canfd. Orientation is held at the
pose read at enable(). A `CommandWatchdog` sends set_arm_slow_stop when actions go stale. Whether the
controller stops a movep_canfd stream by itself when it goes quiet is not documented, so the safe stop outside
the actor (robots/deadman.py, `-o deadman=true`, the default) keeps a second TCP connection to the controller
in a supervising process, which sends set_arm_slow_stop when this process dies.

Observations: "image" (a camera is given; same spec as rm65_sim's image mode) or "proprio":
{"state": float32[6]} = tool position scaled to [-1, 1] in the workspace, and the last commanded velocity
/ max speed. rm65_sim's "state" mode holds privileged cube positions, which the real arm cannot observe.
"deploy" (with a camera): {"image": ..., "proprio": float32[6]}, the image and those six values, exactly
`rm65_sim -o observation=deploy` (robots/deployable.py), so a policy trained on the twin in it runs here.
"""

from __future__ import annotations

import json
import logging
import socket
import struct
import threading

import numpy as np

from common.specs import BoundedSpec, RobotSpec
from common.types import Observation
from robots.arm_limits import RM65_LIMITS, hold_inside_workspace
from robots.base import ROBOTS, Camera, RobotError
from robots.deployable import DEPLOY, deploy_observation, rm65_proprio
from robots.driver_kit import (OperatorTask, RealRobot, camera_observation, observation_specs, socket_error,
                               unreachable)
from robots.lifecycle import Lifecycle, LinkState
from robots.safety import ActionSafety
from robots.watchdog import DEFAULT_DEADLINE_S, CommandWatchdog

log = logging.getLogger(__name__)

DEFAULT_HOST, DEFAULT_PORT = "192.168.1.18", 8080
POSITION_UNIT = 1e-6  # metres per protocol position unit (0.001 mm)
ANGLE_UNIT = 1e-3  # radians per protocol angle unit
PROPRIO_DIM = 6
ADDRESS_CHECK = (f"the arm controller is powered on, this machine is on its network, and -o host= / -o port= name it "
                 f"(default {DEFAULT_HOST}:{DEFAULT_PORT})")
ANSWER_CHECK = (f"-o host= / -o port= name the arm controller's JSON port (default {DEFAULT_HOST}:{DEFAULT_PORT}) and "
                "the controller has finished booting")


def make_rm65_driver_spec(observation: str, image_size: int = 64) -> RobotSpec:
    limits = RM65_LIMITS
    if observation not in ("image", "proprio", DEPLOY):
        raise ValueError(f"rm65 observation must be 'image', 'proprio' or 'deploy', got {observation!r}")
    return RobotSpec(
        name="rm65",
        observation=observation_specs("rm65", observation, image_size, PROPRIO_DIM),
        action=BoundedSpec("action", (limits.action_dim,), "float32", low=limits.action_low, high=limits.action_high),
        control_hz=limits.control_hz,
        metadata={"simulated": "false", "observation": observation, "action_units": "m/s,m/s,m/s"},
    )


class JsonLineClient:
    """One TCP connection speaking JSON lines; a reader thread routes replies to waiters by their "state"."""

    def __init__(self, host: str, port: int, timeout_s: float) -> None:
        self.address = (host, int(port))
        self.timeout_s = float(timeout_s)
        self.unexpected_lines = 0
        self._sock: socket.socket | None = None
        self._send_lock = threading.RLock()  # re-entrant: stop() may run in a signal handler
        self._cond = threading.Condition()
        self._replies: dict[str, dict] = {}
        self._generation = 0  # bumped on every (re)connect, so a reply never crosses connections

    @property
    def connected(self) -> bool:
        return self._sock is not None

    def open(self) -> None:
        try:
            sock = socket.create_connection(self.address, timeout=self.timeout_s)
        except OSError as exc:
            reason = socket_error(exc, self.timeout_s)
            raise unreachable("rm65", f"cannot connect to the arm controller at {self.address[0]}:{self.address[1]} "
                                      f"({reason})", ADDRESS_CHECK) from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(None)  # the reader blocks in recv; a Python-level timeout would apply to it too
        seconds = int(self.timeout_s)  # a send-only timeout, so a stalled peer cannot block a stop forever
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO,
                        struct.pack("ll", seconds, int((self.timeout_s - seconds) * 1e6)))
        with self._cond:
            self._generation += 1
            self._sock, self._replies = sock, {}
            generation = self._generation
        threading.Thread(target=self._read_loop, args=(sock, generation), daemon=True, name="rm65-reader").start()

    def close(self) -> None:
        with self._cond:
            sock, self._sock = self._sock, None
            self._cond.notify_all()
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def send(self, message: dict) -> None:
        """Send one command without waiting for a reply."""
        data = (json.dumps(message, separators=(",", ":")) + "\r\n").encode()
        with self._send_lock:
            sock = self._sock
            if sock is None:
                raise RobotError(f"rm65: not connected to {self.address[0]}:{self.address[1]}")
            try:
                sock.sendall(data)
            except OSError as exc:
                self.close()
                raise RobotError(f"rm65: send failed ({exc}); link closed") from None

    def request(self, message: dict, reply_state: str) -> dict:
        """Send a command and wait (at most timeout_s) for the reply whose "state" is reply_state."""
        with self._cond:
            self._replies.pop(reply_state, None)
            generation = self._generation
        self.send(message)
        with self._cond:
            ok = self._cond.wait_for(lambda: reply_state in self._replies or self._generation != generation
                                     or self._sock is None, timeout=self.timeout_s)
            reply = self._replies.pop(reply_state, None) if self._generation == generation else None
        if reply is None:
            what = (f"the link closed before a reply to {message['command']}" if ok else
                    f"no reply to {message['command']} within {self.timeout_s:.2f} s")
            raise RobotError(f"rm65: {what} from {self.address[0]}:{self.address[1]}")
        return reply

    def _read_loop(self, sock: socket.socket, generation: int) -> None:
        buffer = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except OSError:
                chunk = b""
            if not chunk:
                break
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                self._route(line.strip(), generation)
            if len(buffer) > 1 << 20:  # a peer that never ends a line is not the arm
                break
        with self._cond:
            if self._generation == generation and self._sock is sock:
                self._sock = None
            self._cond.notify_all()

    def _route(self, line: bytes, generation: int) -> None:
        if not line:
            return
        try:
            message = json.loads(line)
            state = message["state"]
        except (ValueError, KeyError, TypeError):
            self.unexpected_lines += 1
            return
        with self._cond:
            if self._generation == generation:
                self._replies[str(state)] = message
                self._cond.notify_all()


@ROBOTS.register("rm65")
class RM65Robot(RealRobot):
    """RealMan RM65-B over its JSON TCP protocol (see module docstring). Options: host, port, camera, ..."""

    def __init__(self, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, camera: Camera | str | None = None,
                 observation: str = "", image_size: int = 64, watchdog_ms: float = DEFAULT_DEADLINE_S * 1e3,
                 timeout_s: float = 0.5, camera_max_age_ms: float = 200.0, max_steps: int = 200,
                 deadman: bool = True) -> None:
        observation, self.camera = camera_observation("rm65", observation, camera, image_size)
        self.limits = RM65_LIMITS
        self._spec = make_rm65_driver_spec(observation, image_size)
        self.camera_max_age_ms = float(camera_max_age_ms)
        self.client = JsonLineClient(host, port, timeout_s)
        self.safety = ActionSafety(self._spec.action)
        self.task = OperatorTask(max_steps)  # success/failure come from the operator's keys
        self.watchdog = CommandWatchdog(self._slow_stop, float(watchdog_ms) / 1e3, name="rm65")
        self._lifecycle = Lifecycle("rm65")
        self._stop_lock = threading.RLock()
        self._target: np.ndarray | None = None  # commanded tool position (m), None until enable()
        self._orientation = np.zeros(3)  # held orientation (rad)
        self._velocity = np.zeros(3)  # last commanded velocity (m/s)
        self.use_deadman = bool(deadman)

    def connect(self) -> None:
        with self._lifecycle.lock:
            if self._lifecycle.state is not LinkState.DISCONNECTED:
                return
            self.client.open()
            try:
                try:
                    self.read_pose()  # proves the peer is an arm that answers, within timeout_s
                except RobotError as exc:
                    raise unreachable("rm65", str(exc).removeprefix("rm65: "), ANSWER_CHECK) from None
                if self.camera is not None:
                    self.camera.connect()
                self._start_deadman()
            except BaseException:
                self.client.close()
                raise
            self._lifecycle.connect()

    def _on_enable(self) -> None:
        self._target, self._orientation = self.read_pose()
        self.watchdog.start()

    def stop(self) -> None:
        """Slow stop on the current path (set_arm_slow_stop); a no-op before connect().

        Never raises (it runs in signal handlers and cleanup paths): an unacknowledged stop is logged and
        the watchdog re-armed, so it retries every deadline (reconnecting if needed) until the arm confirms.
        """
        self._stop_or_retry(self._slow_stop)

    def _slow_stop(self) -> None:
        """set_arm_slow_stop, raising RobotError unless the arm acknowledged it (the watchdog's stop function)."""
        with self._stop_lock:  # one stop request in flight: concurrent stops would steal each other's reply
            if not self.client.connected and self._lifecycle.state is LinkState.DISCONNECTED:
                return
            if not self.client.connected:
                self.client.open()  # the link dropped: a stop is worth one reconnect attempt
            feeds = self.watchdog.feeds
            self._request_slow_stop()
            if feeds == self.watchdog.feeds:  # no action was sent while the stop was in flight
                self._velocity = np.zeros(3)
                self._target = None  # the arm stops somewhere on its path: re-anchor at the next measured pose
            self.watchdog.disarm(feeds)

    def _request_slow_stop(self) -> None:
        reply = self.client.request({"command": "set_arm_slow_stop"}, "set_arm_slow_stop")
        if reply.get("arm_slow_stop") is not True:
            raise RobotError(f"rm65: slow stop refused: {reply}")

    def emergency_stop(self) -> None:
        """set_arm_stop: the arm stops at once and the trajectory cannot be resumed."""
        with self._stop_lock:
            feeds = self.watchdog.feeds
            reply = self.client.request({"command": "set_arm_stop"}, "set_arm_stop")
            if reply.get("arm_stop") is not True:
                raise RobotError(f"rm65: emergency stop refused: {reply}")
            self._target = None
            self.watchdog.disarm(feeds)

    def disconnect(self) -> None:
        with self._lifecycle.lock:
            try:
                self._close_watchdog_and_stop()
            finally:
                self._end_deadman()  # after our own stop: the supervisor leaves without sending anything
            self.client.close()
            if self.camera is not None:
                self.camera.disconnect()
            self._target = None
            self._lifecycle.disconnect()

    # ---- the stop path of the safe-stop supervisor (robots/deadman.py) ----

    def deadman_options(self) -> dict:
        host, port = self.client.address
        return {"host": host, "port": port, "timeout_s": self.client.timeout_s}

    def open_stop_path(self) -> None:
        """A TCP connection of our own. Assumed, to check on the first hardware run: the controller serves a
        second client beside the driver's (the test peer does); if not, this fails and so does connect()."""
        self.client.open()

    def send_safe_stop(self) -> None:
        """set_arm_slow_stop, confirmed; one reconnect if our idle connection was dropped meanwhile."""
        try:
            if not self.client.connected:
                self.client.open()
            self._request_slow_stop()
        except RobotError:
            self.client.close()
            self.client.open()
            self._request_slow_stop()

    def close_stop_path(self) -> None:
        self.client.close()

    def _observe(self) -> Observation:
        position, _ = self.read_pose()
        observation = self._spec.metadata["observation"]
        if observation == "image":
            return {"image": self.camera.read_latest(self.camera_max_age_ms)}
        proprio = rm65_proprio(self.limits, position, self._velocity)
        if observation == DEPLOY:
            return deploy_observation(self.camera.read_latest(self.camera_max_age_ms), proprio)
        return {"state": np.clip(proprio, -3.0, 3.0).astype(np.float32)}

    def _execute(self, action: np.ndarray) -> np.ndarray:
        position, _ = self.read_pose()
        velocity = hold_inside_workspace(position, action.astype(np.float64), self.limits)
        step = velocity / self.limits.control_hz
        reach = 2.0 * self.limits.max_speed / self.limits.control_hz  # never run far ahead of the arm
        anchor = position if self._target is None else self._target
        # Never further out of the box than the anchor already is (an arm found outside it may only come
        # back), then never more than `reach` from where the arm is: no far-away target, ever.
        low = np.minimum(self.limits.low_array, anchor)
        high = np.maximum(self.limits.high_array, anchor)
        target = np.clip(np.clip(anchor + step, low, high), position - reach, position + reach)
        self.client.send(self._pose_command(target))
        self._target, self._velocity = target, velocity
        self.watchdog.feed()
        return velocity.astype(self._spec.action.dtype)

    def read_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """(tool position in m, orientation in rad) from get_current_arm_state; reconnects once if needed."""
        if not self.client.connected:
            self.client.open()
        reply = self.client.request({"command": "get_current_arm_state"}, "current_arm_state")
        try:
            pose = np.asarray(reply["arm_state"]["pose"], dtype=np.float64)
            if pose.shape != (6,) or not np.all(np.isfinite(pose)):
                raise ValueError(pose)
        except (KeyError, TypeError, ValueError) as exc:
            raise RobotError(f"rm65: malformed arm state {reply!r}: {exc}") from None
        return pose[:3] * POSITION_UNIT, pose[3:] * ANGLE_UNIT

    def _pose_command(self, position: np.ndarray) -> dict:
        pose = [round(x / POSITION_UNIT) for x in position] + [round(a / ANGLE_UNIT) for a in self._orientation]
        return {"command": "movep_canfd", "pose": pose, "follow": False}
