"""`franka`: the Franka FR3 (or Panda) with the Franka Hand through franky (`pip install franky-control`).

Action: the twin's (robots/sim/franka.py, FRANKA_LIMITS): tool-tip Cartesian velocity (vx, vy, vz) in
m/s in the robot base frame, plus the finger opening rate in m/s. The path of an action:
  1. `ActionSafety` clips it into the bounds; NaN/Inf -> stop (never a motion);
  2. `hold_inside_workspace` zeroes the velocity components that would leave the workspace box;
  3. a franky `CartesianVelocityMotion` with that twist (orientation held) is started asynchronously,
     taking over the running one seamlessly; franky's trajectory generator limits acceleration and jerk,
     scaled by `relative_dynamics_factor`, and the motion ends at rest after `command_hold_s`, so a
     silent policy also stops the arm without us;
  4. the opening rate is integrated into a finger target width and sent to the hand asynchronously
     whenever it moved by more than `gripper_step_m` and the hand is idle.
A `CommandWatchdog` starts a `CartesianVelocityStopMotion` if no fresh action arrives within
`watchdog_ms`. No safe-stop supervisor (robots/deadman.py): franky's 1 kHz loop runs inside this process, so
when it dies the robot loses its only client and stops by itself. franky-sim models that as the client's TCP
connection closing (the kernel closes it on kill -9): the simulated arm leaves the velocity motion and holds
its joints, verified in tests/robots/test_safe_stop.py. The real FCI is documented to do more (it stops after
20 missed 1 kHz command packets, `communication_constraints_violation`, so also when the actor hangs with
its socket open); franky-sim does not model that, so that part is assumed. A second client could not take
over anyway: the FCI (and franky-sim) serve one controlling client at a time.
reset() runs franky's automatic error recovery (a reflex from the last episode)
and then a joint motion to `home_joints`.

Observation {"state": float32[7]}: tool position (m, base frame), tool linear velocity (m/s), finger
opening (m). No task state: the cube and goal of the twin's state need perception (cameras).
With `-o camera=SOURCE`: "image" (default) = the twin's grayscale image spec; `-o observation=deploy` = that
image plus {"proprio": float32[7]}, the same seven quantities normalised as `franka_sim -o observation=deploy`
observes them (robots/deployable.py: position scaled over the workspace box, velocity / max speed, opening /
its maximum), so a policy trained on the twin in that mode runs here.
"""

from __future__ import annotations

import logging
import socket
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from common.specs import BoundedSpec, RobotSpec
from common.types import Observation
from robots.arm_limits import FRANKA_LIMITS, hold_inside_workspace
from robots.base import ROBOTS, RobotError
from robots.deployable import DEPLOY, deploy_observation, franka_proprio
from robots.driver_kit import (OperatorTask, RealRobot, camera_observation, observation_specs, socket_error,
                               unreachable)
from robots.lifecycle import Lifecycle, LinkState
from robots.safety import ActionSafety
from robots.watchdog import CommandWatchdog

log = logging.getLogger(__name__)

STATE_FIELDS = ("x", "y", "z", "vx", "vy", "vz", "gripper_width")
FCI_PORT = 1337  # libfranka's command port on the robot
FCI_CHECK = ("the arm is on with its joints unlocked and FCI activated in Desk, and -o address= is the robot's "
             "address (default 172.16.0.2) on a network this machine is on")
GRIPPER_SETTLE_S = 10.0
_NOT_FREED: list = []  # franky objects whose shutdown failed; freeing them could crash the process

# A tool-down configuration over the middle of the workspace (FR3 joint angles, rad).
HOME_JOINTS = (0.0, -0.2, 0.0, -2.4, 0.0, 2.2, 0.785)


@dataclass(frozen=True)
class FrankaConfig:
    """Connection and motion settings of the Franka driver (all can be given as --robot options)."""

    address: str = "172.16.0.2"  # the robot's FCI address (the franky-sim peer: 127.x.y.z)
    connect_timeout_s: float = 3.0  # connect() fails if the FCI port does not accept TCP within this (libfranka: 60 s)
    relative_dynamics_factor: float = 0.1  # scales franky's velocity/acceleration/jerk limits (0, 1]
    command_hold_s: float = 0.2  # each velocity target is held this long after it is reached, then ends at rest
    watchdog_ms: float = 200.0  # stop motion when no fresh action arrives within this many milliseconds
    use_gripper: bool = True  # connect to the Franka Hand
    gripper_step_m: float = 0.002  # send a new finger target only when it moved by more than this
    home_joints: tuple[float, ...] | None = HOME_JOINTS  # reset() moves here (None: stay where it ended)
    realtime: bool = False  # True on a PREEMPT_RT kernel (RealtimeConfig.Enforce); False ignores RT
    max_steps: int = 200  # episode length cap for the operator-labelled task
    camera: str | None = None  # camera source for robots.cameras.make_camera ("realsense", "0", a file); None: state
    image_size: int = 64  # with a camera: observation {"image": uint8[S, S, 1]}, the twin's image spec
    camera_max_age_ms: float = 200.0  # an older camera frame is an error, not an observation
    observation: str = ""  # "state", "image" or "deploy" (image + proprio); default: image with a camera, else state

    def __post_init__(self) -> None:
        if isinstance(self.home_joints, str):  # from the command line: "-o home_joints=none" or "0,-0.2,..."
            text = self.home_joints.strip().lower()
            joints = None if text in ("", "none") else tuple(float(v) for v in text.split(","))
            object.__setattr__(self, "home_joints", joints)
        if not 0.0 < self.relative_dynamics_factor <= 1.0:
            raise ValueError(f"relative_dynamics_factor must be in (0, 1], got {self.relative_dynamics_factor}")
        for name in ("connect_timeout_s", "command_hold_s", "watchdog_ms", "gripper_step_m"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.home_joints is not None and len(self.home_joints) != 7:
            raise ValueError(f"home_joints needs 7 joint angles, got {self.home_joints}")


def make_franka_driver_spec(observation: str = "state", image_size: int = 64) -> RobotSpec:
    limits = FRANKA_LIMITS
    return RobotSpec(
        name="franka",
        observation=observation_specs("franka", observation, image_size, len(STATE_FIELDS)),
        action=BoundedSpec("action", (limits.action_dim,), "float32", low=limits.action_low, high=limits.action_high),
        control_hz=limits.control_hz,
        metadata={"simulated": "false", "action_units": "m/s,m/s,m/s,m/s(gripper opening)",
                  "observation": observation, "state_fields": ",".join(STATE_FIELDS), "twin": "franka_sim"},
    )


@ROBOTS.register("franka")
class FrankaRobot(RealRobot):
    """Franka arm + hand via franky; see the module docstring for the action path and observation."""

    CONFIG = FrankaConfig  # its fields are the options

    def __init__(self, **options: Any) -> None:
        self.config = self.CONFIG(**options)
        self.limits = FRANKA_LIMITS
        cfg = self.config
        observation, self.camera = camera_observation("franka", cfg.observation, cfg.camera, cfg.image_size, "state")
        self._spec = make_franka_driver_spec(observation, cfg.image_size)
        self.safety = ActionSafety(self._spec.action)
        self.task = OperatorTask(self.config.max_steps)
        self._lifecycle = Lifecycle("franka")
        self._franky: Any = None  # the franky module, imported in connect()
        self._errors: tuple[type[BaseException], ...] = ()
        self._robot: Any = None
        self._gripper: Any = None
        self._gripper_future: Any = None
        self._gripper_target = 0.0
        self.watchdog: CommandWatchdog | None = None  # the current connection's (None before the first connect)
        self._motion_lock = threading.Lock()  # serialises franky move/stop calls (watchdog vs control thread)

    def connect(self) -> None:
        with self._lifecycle.lock:
            if self._lifecycle.state is not LinkState.DISCONNECTED:
                return
            try:
                import franky
            except ImportError as exc:
                raise RobotError(f"franka: franky is not installed (pip install '.[franka]'): {exc}") from exc
            self._franky = franky
            # franky's exceptions do not all derive from franky.Exception (InvalidMotionTypeException ...), and
            # a franky.Robot whose link was lost raises a bare RuntimeError("Net Exception").
            self._errors = tuple(value for value in vars(franky).values()
                                 if isinstance(value, type) and issubclass(value, Exception)) + (RuntimeError,)
            self._open_link()
            self._gripper_target = self._gripper_width() if self._gripper is not None else 0.0
            if self.camera is not None:
                self.camera.connect()
            self.watchdog = CommandWatchdog(self._stop_motion, self.config.watchdog_ms / 1e3, "franka").start()
            self._lifecycle.connect()

    def _open_link(self) -> None:
        """(Re)create franky's Robot and Gripper: the FCI connection (TCP, then UDP state at 1 kHz)."""
        cfg, franky = self.config, self._franky
        realtime = franky.RealtimeConfig.Enforce if cfg.realtime else franky.RealtimeConfig.Ignore
        with self._motion_lock:
            # Free a lost link's objects first: franky-sim (and the hand) serve one client at a time, so a new
            # Gripper would wait forever for the old connection to go. Nothing is in flight on a dead link.
            self._robot = self._gripper = self._gripper_future = None
            self._probe_fci()
            try:
                robot = franky.Robot(cfg.address, realtime_config=realtime)
                robot.relative_dynamics_factor = cfg.relative_dynamics_factor
                gripper = franky.Gripper(cfg.address) if cfg.use_gripper else None
            except self._errors as exc:  # NetworkException, IncompatibleVersionException, ...
                raise unreachable("franka", f"cannot connect to the arm's FCI at {cfg.address} ({exc})",
                                  FCI_CHECK) from exc
            self._robot, self._gripper = robot, gripper

    def _probe_fci(self) -> None:
        """Fail within connect_timeout_s when nothing answers on the FCI port: libfranka's own TCP connect
        waits 60 s for an address that does not answer (a robot that is off, a wrong address)."""
        address = (self.config.address, FCI_PORT)
        try:
            socket.create_connection(address, timeout=self.config.connect_timeout_s).close()
        except OSError as exc:
            reason = socket_error(exc, self.config.connect_timeout_s)
            raise unreachable("franka", f"cannot connect to the arm's FCI at {address[0]}:{address[1]} ({reason})",
                              FCI_CHECK) from None

    def _on_enable(self) -> None:
        self._recover()

    def reset(self) -> Observation:
        """Recover from any error of the last episode, stop, and move to home_joints (if set)."""
        with self._lifecycle.lock:
            self._lifecycle.require_connected("reset")
            self._recover()
            if self._lifecycle.state is LinkState.ENABLED and self.config.home_joints is not None:
                self._stop_motion()
                self._call(lambda: self._robot.join_motion(10.0), "waiting for the stop")
                motion = self._franky.JointMotion(list(self.config.home_joints))
                self._call(lambda: self._robot.move(motion), "moving home")
            return self._observe()

    def stop(self) -> None:
        """Start franky's Cartesian stop motion (decelerates within the dynamics limits). The hand finishes its
        current small move (a gripper stop would leave franky-sim's move unanswered). Raises if franky refused."""
        self._stop_confirmed(self._stop_motion)

    def disconnect(self) -> None:
        watchdog = self.watchdog
        if watchdog is not None:
            watchdog.close()
        with self._lifecycle.lock:
            if self._lifecycle.state is LinkState.DISCONNECTED:
                return
            robot, gripper = self._robot, self._gripper
            try:
                self._stop_motion()
                if not self._robot.join_motion(5.0):
                    raise RobotError("franka: the stop motion did not finish within 5 s")
                self._settle_gripper()
            except Exception as exc:  # noqa: BLE001 - a faulted arm is at rest; log it and still close
                log.warning("franka: stop on disconnect: %s", exc)
                # libfranka crashes the process if a Robot/Gripper with work in flight is freed: keep them.
                _NOT_FREED.append((robot, gripper, self._gripper_future))
            finally:
                self._robot = self._gripper = self._gripper_future = None
                if self.camera is not None:
                    self.camera.disconnect()
                self._lifecycle.disconnect()

    def _settle_gripper(self) -> None:
        """Wait for a finger move still in flight (at most the full 80 mm at 10 mm/s): libfranka crashes the
        process if a Gripper with a command in flight is freed. (Gripper.stop() would not help: franky-sim
        then never answers the move.)"""
        future = self._gripper_future
        if future is not None and not future.wait(GRIPPER_SETTLE_S):
            raise RobotError(f"franka: the hand's last move did not finish within {GRIPPER_SETTLE_S} s")

    # ---- internals ----

    def _execute(self, action: np.ndarray) -> np.ndarray:
        position = self._tool_state()[0]
        velocity = hold_inside_workspace(position, action[:3].astype(np.float64), self.limits)
        franky = self._franky
        motion = franky.CartesianVelocityMotion(
            franky.Twist(velocity, np.zeros(3)), duration=franky.Duration(int(self.config.command_hold_s * 1e3)))
        with self._motion_lock:
            self._call(lambda: self._robot.move(motion, asynchronous=True), "velocity motion")
        self.watchdog.feed()
        if self._gripper is not None:
            self._command_gripper(float(action[3]))
        return action

    def _stop_motion(self) -> None:
        with self._motion_lock:
            robot = self._robot
            if robot is None:
                return
            self._call(lambda: robot.move(self._franky.CartesianVelocityStopMotion(), asynchronous=True), "stop motion")

    def _recover(self) -> None:
        """franky's automatic error recovery; after a lost link, reconnect first."""
        try:
            has_errors = self._call(lambda: self._robot.has_errors, "reading the error state")
            if self._gripper is not None:
                self._gripper_width()  # the hand has its own connection, which may be the one lost
        except RobotError as exc:
            log.warning("franka: link lost (%s); reconnecting", exc)
            self._open_link()
            has_errors = self._call(lambda: self._robot.has_errors, "reading the error state")
        if has_errors:
            log.warning("franka: recovering from errors")
        if not self._call(self._robot.recover_from_errors, "error recovery"):
            raise RobotError("franka: automatic error recovery failed; check the robot (brakes, E-stop)")

    def _command_gripper(self, opening_rate: float) -> None:
        target = float(np.clip(self._gripper_target + opening_rate / self.limits.control_hz,
                               0.0, self.limits.gripper_max_width))
        self._gripper_target = target
        idle = self._gripper_future is None or self._gripper_future.wait(0)
        if idle and abs(target - self._gripper_width()) > self.config.gripper_step_m:
            # float32 actions round to a hair above the limit: clamp in float64 before the wire
            speed = min(max(abs(opening_rate), 0.01), self.limits.gripper_max_speed)
            self._gripper_future = self._call(lambda: self._gripper.move_async(target, speed), "gripper move")

    def _tool_state(self) -> tuple[np.ndarray, np.ndarray]:
        state = self._call(lambda: self._robot.current_cartesian_state, "reading state")
        position = np.asarray(state.pose.end_effector_pose.translation, dtype=np.float64)
        velocity = np.asarray(state.velocity.end_effector_twist.linear, dtype=np.float64)
        return position, velocity

    def _gripper_width(self) -> float:
        return float(self._call(lambda: self._gripper.width, "reading the hand"))

    def _observe(self) -> Observation:
        position, velocity = self._tool_state()  # also with a camera: the link must be alive
        observation = self._spec.metadata["observation"]
        if observation == "image":
            return {"image": self.camera.read_latest(self.config.camera_max_age_ms)}
        width = self._gripper_width() if self._gripper is not None else 0.0
        if observation == DEPLOY:
            proprio = franka_proprio(self.limits, position, velocity, width)
            return deploy_observation(self.camera.read_latest(self.config.camera_max_age_ms), proprio)
        return {"state": np.concatenate([position, velocity, [width]]).astype(np.float32)}

    def _call(self, call, what: str):
        """Run a franky call, turning its exceptions (reflexes, network loss) into RobotError."""
        try:
            return call()
        except self._errors as exc:
            raise RobotError(f"franka: {what} failed: {exc}") from exc
