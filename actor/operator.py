"""What the operator's keys mean to the control loop: labels, reset, pause, e-stop and teleoperation.

`Operator` is the thread-safe state the console thread writes and the control loop reads. Anything
that must stop the robot (a label, reset, pause, e-stop) stops it *on the key thread, at once*, under
the same lock the loop holds while it sends an action, so no action can slip out after the key: the
loop re-checks `motion_gate()` right before every `send_action`. E-stop wins over everything: while
it is on, nothing but `release` changes the state.

Teleop produces a normalised action in [-1, 1]. Terminals send no key-up events, only auto-repeat,
so a pressed direction stays active for `hold_s` after its last repeat and then falls back to zero:
letting go of the key stops the robot. A continuous teleop device (a VR controller, a SpaceMouse, or the
twins' scripted corrector, `actor/corrector.py`) sets a whole action with `set_device_action`; it
drives under the same rule, and while it is fresh it wins over the keys.
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np

from actor.console import Keymap
from common.specs import RobotSpec

log = logging.getLogger("actor")

STOPPING_COMMANDS = ("success", "failure", "reset")
SPEED_STEPS = (0.1, 0.2, 0.3, 0.5, 0.7, 1.0)


@dataclass
class OperatorConfig:
    """The operator console's settings."""

    console: bool = True  # read keys when stdin is a terminal (never when it is not)
    keymap: dict[str, str] = field(default_factory=dict)  # command -> comma-separated keys, e.g. {"success": "y"}
    hold_s: float = 0.5  # a teleop key drives for this long after its last (auto-)repeat
    speed: float = 0.5  # initial teleop speed, a fraction of the action bounds
    record_demo: str = ""  # write teleoperated episodes to this demo .npz (no learner needed)
    keep_failures: bool = False  # with record_demo: keep episodes not labelled success too

    def __post_init__(self) -> None:
        if self.hold_s <= 0 or not 0 < self.speed <= 1:
            raise ValueError("hold_s > 0 and 0 < speed <= 1 are required")
        Keymap.with_overrides(self.keymap)  # fail at startup on an unknown command


def teleop_axes(spec: RobotSpec) -> dict[str, int]:
    """Which action dimension each teleop axis drives.

    `spec.metadata["teleop_axes"]` ("x:0,y:1,yaw:2,gripper:6") wins; otherwise by action size:
    2 = differential base (v, w): left/right and q/e both turn; 3 = (vx, vy, wz) base or (x, y, z) arm;
    4+ = (x, y, z, ..., gripper last).
    """
    text = spec.metadata.get("teleop_axes", "")
    if text:
        return {name: int(dim) for name, dim in (part.split(":") for part in text.split(","))}
    size = int(np.prod(spec.action.shape))
    if size == 1:
        return {"x": 0}
    if size == 2:
        return {"x": 0, "y": 1, "yaw": 1}
    axes = {"x": 0, "y": 1, "yaw": 2}
    if size >= 4:
        axes["gripper"] = size - 1
    return axes


_DIRECTIONS = {"forward": ("x", 1.0), "backward": ("x", -1.0), "left": ("y", 1.0), "right": ("y", -1.0),
               "yaw_left": ("yaw", 1.0), "yaw_right": ("yaw", -1.0)}  # fmt: skip


class Operator:
    """Thread-safe operator state; `handle_key` runs on the console thread, the rest on the loop's."""

    def __init__(self, spec: RobotSpec, stop_robot: Callable[[], None], config: OperatorConfig | None = None,
                 keymap: Keymap | None = None) -> None:  # fmt: skip
        self.config = config or OperatorConfig()
        self.keymap = keymap or Keymap.with_overrides(self.config.keymap)
        self._stop_robot = stop_robot
        self._axes = teleop_axes(spec)
        self._action_size = int(np.prod(spec.action.shape))
        self._lock = threading.RLock()
        self.demo_mode = bool(self.config.record_demo)
        self.intervening = self.demo_mode
        self.paused = False
        self.estopped = False
        self.speed = self.config.speed
        self._pending_end: str | None = None
        self._start_requested = False
        self._pressed: dict[str, tuple[float, float]] = {}  # axis -> (direction, last press time)
        self._gripper = 0.0  # 0 leaves the gripper as it is until the first `g`; then close (-1) / open (+1)
        self._device: tuple[np.ndarray, float] | None = None  # (normalised action, time set) of a teleop device
        self.stop_latencies_s: list[float] = []  # key read -> robot.stop() returned, per stopping key
        self.help_requested = threading.Event()

    # ---- console thread ----------------------------------------------------------------------
    def handle_key(self, key: str, pressed_at: float | None = None) -> str | None:
        """Apply one key; returns the command it triggered (None if unbound)."""
        pressed_at = time.monotonic() if pressed_at is None else pressed_at
        with self._lock:
            command = self.keymap.command(key, self.intervening)
            if command is None:
                return None
            if self.estopped and command not in ("release", "help"):
                self._stop_now(pressed_at, "e-stop is on (press release to clear)")
                return command
            getattr(self, "_on_" + command, lambda _t: self._teleop(command, _t))(pressed_at)
            return command

    def _on_start(self, _pressed_at: float) -> None:
        self._start_requested = True
        log.info("start: acting before the learner's first weights")

    def _on_success(self, pressed_at: float) -> None:
        self._end("success", pressed_at)

    def _on_failure(self, pressed_at: float) -> None:
        self._end("failure", pressed_at)

    def _on_reset(self, pressed_at: float) -> None:
        self._end("reset", pressed_at)

    def _on_estop(self, pressed_at: float) -> None:
        self.estopped, self._pressed = True, {}
        self._pending_end = "estop"
        self._stop_now(pressed_at, "EMERGENCY STOP")

    def _on_release(self, _pressed_at: float) -> None:
        if self.estopped:
            self.estopped = False
            log.warning("e-stop released: the next episode starts with a task reset")

    def _on_pause(self, pressed_at: float) -> None:
        self.paused = not self.paused
        if self.paused:
            self._stop_now(pressed_at, "paused: robot holding")
        else:
            log.info("resumed")

    def _on_intervene(self, _pressed_at: float) -> None:
        if self.demo_mode:
            log.info("recording a demonstration: intervention stays on")
            return
        self.intervening, self._pressed, self._device = not self.intervening, {}, None
        log.info("intervention %s", "ON: teleop keys drive the robot" if self.intervening else "off: policy drives")

    def _on_help(self, _pressed_at: float) -> None:
        self.help_requested.set()

    def _end(self, label: str, pressed_at: float) -> None:
        self._pending_end = label
        self._stop_now(pressed_at, label)

    def _stop_now(self, pressed_at: float, why: str) -> None:
        self._stop_robot()
        latency = time.monotonic() - pressed_at
        self.stop_latencies_s.append(latency)
        log.info("%s: robot stopped %.2f ms after the key", why, 1000 * latency)

    def _teleop(self, command: str, pressed_at: float) -> None:
        if command == "faster" or command == "slower":
            index = int(np.searchsorted(SPEED_STEPS, self.speed - 1e-9)) + (1 if command == "faster" else -1)
            self.speed = SPEED_STEPS[min(max(index, 0), len(SPEED_STEPS) - 1)]
            log.info("teleop speed %.0f%%", 100 * self.speed)
        elif command == "gripper":
            if "gripper" not in self._axes:
                log.info("this robot has no gripper")
                return
            self._gripper = -1.0 if self._gripper >= 0 else 1.0
            log.info("teleop gripper %s", "close" if self._gripper < 0 else "open")
        else:
            axis, direction = _DIRECTIONS[command]
            self._pressed[axis] = (direction, pressed_at)

    def set_device_action(self, action: np.ndarray, at: float | None = None) -> None:
        """A continuous teleop device's action in [-1, 1] (clipped); drives while intervening, for `hold_s`."""
        action = np.asarray(action, dtype=np.float32).reshape(-1)
        if action.shape != (self._action_size,) or not np.all(np.isfinite(action)):
            raise ValueError(f"a device action is {self._action_size} finite numbers, got {action!r}")
        with self._lock:
            self._device = (np.clip(action, -1.0, 1.0), time.monotonic() if at is None else at)

    # ---- control loop --------------------------------------------------------------------------
    @contextmanager
    def motion_gate(self) -> Iterator[bool]:
        """Hold while sending an action; yields False when the robot must not move (pause, e-stop, end)."""
        with self._lock:
            yield not (self.paused or self.estopped or self._pending_end)

    def begin_episode(self) -> None:
        """A new episode starts: forget labels pressed in between (an e-stop is never forgotten)."""
        with self._lock:
            if self._pending_end != "estop":
                self._pending_end = None

    def take_end(self) -> str | None:
        """The pending episode end ("success", "failure", "reset", "estop"), cleared once taken."""
        with self._lock:
            end, self._pending_end = self._pending_end, None
            return end

    def start_requested(self) -> bool:
        """True once the operator pressed the start key (a real robot waiting for its first weights may act)."""
        with self._lock:
            return self._start_requested

    def holding(self) -> bool:
        """True while the robot must hold still (paused or e-stopped)."""
        return self.paused or self.estopped

    def teleop_action(self, now: float | None = None) -> np.ndarray:
        """The operator's current action, normalised to [-1, 1] (zero when no key is held)."""
        now = time.monotonic() if now is None else now
        action = np.zeros(self._action_size, dtype=np.float32)
        with self._lock:
            if self._device is not None and now - self._device[1] <= self.config.hold_s:
                return self._device[0].copy()
            for axis, (direction, pressed_at) in self._pressed.items():
                if axis in self._axes and now - pressed_at <= self.config.hold_s:
                    action[self._axes[axis]] = direction * self.speed
            if "gripper" in self._axes:
                action[self._axes["gripper"]] = self._gripper
        return action

    def mode(self) -> str:
        """One word for the status line."""
        if self.estopped:
            return "E-STOP"
        if self.paused:
            return "PAUSED"
        return "INTERVENING" if self.intervening else "policy"
