"""The driver kit: what every robot shares around its own hardware (or physics) code, in one place.

`GuardedRobot` is the lifecycle-and-safety shell of every robot, the fake one, the MuJoCo twins and the
real drivers alike: `get_observation` and `send_action` run under the lifecycle's lock (robots/lifecycle.py)
after its state checks, and every action passes `ActionSafety` (robots/safety.py) before the robot's own
code sees it. A subclass provides `_observe()` and `_execute(safe_action)`.

`RealRobot` adds what only the real drivers (go2, g1, franka, limo, rm65) need:
  * a NaN/Inf action (a broken policy) calls `stop()` instead of commanding anything;
  * the stop helpers around the driver's `CommandWatchdog`: `_watched` (a stop that leaves a command sent
    meanwhile watched), `_stop_confirmed` (stop() raises when the robot did not confirm) and
    `_stop_or_retry` (stop() never raises; the watchdog retries until the link carries the stop);
  * `OperatorTask`, the task of a robot that cannot see privileged scene state;
  * the camera option (`driver_camera`), the observation modes it allows (`camera_observation`: "image",
    "deploy" = image + the robot's proprioception of robots/deployable.py, or the camera-less state) and
    the specs they imply (`observation_specs`);
  * `unreachable`, the one-line error of a robot that does not answer: what was tried, what to check
    (`socket_error` says in a few words why a TCP connect failed);
  * the safe stop outside the actor (robots/deadman.py): a driver whose robot does not stop by itself
    when its actor dies sets `use_deadman` and provides its *stop path* (`deadman_options`,
    `open_stop_path`, `send_safe_stop`, `close_stop_path`); connect() starts the supervisor
    (`_start_deadman`), disconnect() ends it (`_end_deadman`). If the supervisor dies under a live actor,
    the robot is stopped and further actions raise RobotError until the driver is reconnected.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from common.specs import ArraySpec, ImageSpec, RobotSpec
from common.types import Observation
from robots.base import Camera, Robot, RobotError, Task
from robots.deployable import DEPLOY, deploy_observation_specs
from robots.lifecycle import Lifecycle, LinkState
from robots.safety import ActionSafety
from robots.watchdog import CommandWatchdog

if TYPE_CHECKING:  # imported where used: `python -m robots.deadman` must not find itself already imported
    from robots.deadman import Deadman

log = logging.getLogger(__name__)


class GuardedRobot(Robot):
    """A robot whose observations and actions pass its lifecycle checks (under its lock) and ActionSafety.

    A subclass sets `_spec`, `safety` and `_lifecycle` in its constructor and provides `_observe()` (called
    connected, under the lock) and `_execute(safe_action) -> executed` (called enabled, under the lock).
    """

    _spec: RobotSpec
    safety: ActionSafety
    _lifecycle: Lifecycle

    @property
    def spec(self) -> RobotSpec:
        return self._spec

    def get_observation(self) -> Observation:
        with self._lifecycle.lock:
            self._lifecycle.require_connected("get_observation")
            return self._observe()

    def send_action(self, action: np.ndarray) -> np.ndarray:
        with self._lifecycle.lock:
            self._lifecycle.require_enabled("send_action")
            safe, stopped = self.safety.apply(action)
            if stopped:  # NaN/Inf: the policy is broken; `safe` is the stop action
                return self._broken_action(safe)
            return self._execute(safe)

    def _broken_action(self, stop_action: np.ndarray) -> np.ndarray:
        """A simulator executes the stop action like any other (its time moves only in send_action)."""
        return self._execute(stop_action)

    def _observe(self) -> Observation:
        raise NotImplementedError

    def _execute(self, action: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class OperatorTask(Task):
    """The task of a real robot with no automatic success detection: reward 0, no termination by itself.

    A real robot cannot see the privileged scene state the simulated tasks use, so success and failure
    come from the operator's keys (actor/operator.py, `operator_label`) and episodes end at `max_steps`.
    reset() stops the robot (a real robot cannot be teleported) and returns its observation.
    """

    def __init__(self, max_steps: int = 200) -> None:
        if max_steps <= 0:
            raise ValueError(f"max_steps must be positive, got {max_steps}")
        self.max_steps = int(max_steps)

    def reset(self, robot: Robot) -> Observation:
        return robot.reset()

    def reward(self, observation: Observation) -> tuple[float, bool]:
        return 0.0, False


def driver_camera(source: Camera | str | int | None, image_size: int) -> Camera | None:
    """The camera a driver observes through (`-o camera=SOURCE`: "0", a /dev/video path, a file, "realsense"
    or "realsense:SERIAL"; or a Camera), or None for state observations (also for "" and "none")."""
    if source is None or isinstance(source, Camera):
        return source
    if str(source).lower() in ("", "none"):
        return None
    from robots.cameras import make_camera

    return make_camera(str(source), image_size, image_size)


def observation_specs(robot: str, observation: str, image_size: int, state_dim: int) -> dict:
    """The observation specs of a driver's mode: "image" the twins' grayscale image spec, "deploy" the
    image and the robot's proprioception (exactly its twin's deploy mode), else {"state": float32[state_dim]}."""
    if observation == DEPLOY:
        return deploy_observation_specs(robot, image_size)
    if observation == "image":
        return {"image": ImageSpec("image", (image_size, image_size, 1))}
    return {"state": ArraySpec("state", (state_dim,), "float32")}


CAMERA_MODES = ("image", DEPLOY)
IMAGE_SIZES = (64, 128)  # the twins' camera sizes: a camera policy trains on one of them


def camera_observation(robot: str, observation: str, camera: Camera | str | int | None, image_size: int,
                       without_camera: str = "proprio") -> tuple[str, Camera | None]:
    """(observation mode, camera) of a driver observing "image" (through a camera), "deploy" (the camera and
    its proprioception) or `without_camera` (its own state only): "image" by default when a camera is given.
    "image"/"deploy" without a camera, an unknown mode, or an image size the twins do not have is a
    ValueError; without a camera mode the camera is not used."""
    modes = (*CAMERA_MODES, without_camera)
    if image_size not in IMAGE_SIZES:
        raise ValueError(f"image_size must be one of {IMAGE_SIZES}, got {image_size}")
    camera = driver_camera(camera, image_size)
    observation = observation or ("image" if camera is not None else without_camera)
    if observation not in modes:
        raise ValueError(f"{robot} observation must be one of {modes}, got {observation!r}")
    if observation in CAMERA_MODES and camera is None:
        raise ValueError(f"{robot} observation={observation} needs a camera (-o camera=0, a /dev/video path, a "
                         "file or realsense)")
    return observation, camera if observation in CAMERA_MODES else None


def unreachable(robot: str, problem: str, check: str) -> RobotError:
    """The error of a robot that does not answer, as one line: `problem` names what was tried (interface,
    port, address) and what happened; `check` what the operator should look at (power, cable, options)."""
    return RobotError(f"{robot}: {problem}; check {check}")


def socket_error(exc: OSError, timeout_s: float) -> str:
    """A failed connect in a few words: "no answer within 3 s", "Connection refused", "No route to host"."""
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout_s:g} s"
    return exc.strerror or str(exc)


class RealRobot(GuardedRobot):
    """A real driver: a broken action stops the robot; stop helpers around the driver's `watchdog`; the
    safe-stop supervisor of robots/deadman.py for drivers that set `use_deadman`."""

    watchdog: CommandWatchdog | None = None
    use_deadman = False  # True: connect() starts a supervisor that stops the robot if this process dies
    deadman: Deadman | None = None  # the current connection's supervisor

    def send_action(self, action: np.ndarray) -> np.ndarray:
        deadman = self.deadman
        if deadman is not None and deadman.lost:
            # Driving on would silently drop the guarantee that a dead actor stops the robot: refuse, loudly.
            raise RobotError(f"{self._spec.name}: the safe-stop supervisor (pid {deadman.pid}) died; the robot was "
                             "stopped and is not driven without it (disconnect and connect again)")
        return super().send_action(action)

    # ---- the stop path a supervising process opens (robots/deadman.py) ----

    def deadman_options(self) -> dict:
        """The constructor options (JSON types) that build this driver in the supervisor for its stop path."""
        raise NotImplementedError

    def open_stop_path(self) -> None:
        """(In the supervisor) open the driver's own link for the stop, without connecting the driver."""
        raise NotImplementedError

    def send_safe_stop(self) -> None:
        """(In the supervisor) send the robot's stop through that link; raises if it could not."""
        raise NotImplementedError

    def close_stop_path(self) -> None:
        """(In the supervisor) close that link."""

    def _start_deadman(self) -> None:
        """Start this connection's supervisor (a driver's connect(), once its own link works)."""
        if not self.use_deadman:
            return
        from robots.deadman import Deadman

        self.deadman = Deadman(self._spec.name, self.deadman_options(), on_lost=self._deadman_lost).start()

    def _end_deadman(self) -> None:
        """Tell the supervisor the actor is shutting down cleanly (after the final stop), and reap it."""
        deadman, self.deadman = self.deadman, None
        if deadman is not None:
            deadman.close()

    def _deadman_lost(self) -> None:
        try:
            self.stop()
        except Exception as exc:  # noqa: BLE001 - the watchdog thread of robots/deadman.py must not die here
            log.error("%s: stop after losing the safe-stop supervisor failed: %s", self._spec.name, exc)

    def _broken_action(self, stop_action: np.ndarray) -> np.ndarray:
        """A real robot stops rather than guess what a broken policy meant."""
        self.stop()
        return stop_action

    def _watched(self, send_stop: Callable[[], None]) -> None:
        """Send a stop, then disarm the watchdog, unless an action was sent while the stop was in flight:
        that newer command is not covered by the stop and stays watched. A stop that raises disarms nothing."""
        feeds = self.watchdog.feeds
        send_stop()
        self.watchdog.disarm(feeds)

    def _stop_confirmed(self, stop_motion: Callable[[], None]) -> None:
        """stop() of a driver whose robot confirms a stop: raises RobotError if it did not (the watchdog then
        stays armed and retries). A no-op when not connected."""
        with self._lifecycle.lock:
            if self._lifecycle.state is not LinkState.DISCONNECTED:
                self._watched(stop_motion)

    def enable(self) -> None:
        with self._lifecycle.lock:
            self._lifecycle.require_connected("enable")
            self._on_enable()
            self._lifecycle.enable()

    def _on_enable(self) -> None:
        """Bring the robot into a state where it executes motion commands (robot-specific; called connected)."""

    def reset(self) -> Observation:
        """A real robot has no episode reset (it cannot be teleported): stop, and return the observation."""
        self.stop()
        return self.get_observation()

    def _stop_or_retry(self, send_stop: Callable[[], None]) -> None:
        """stop() of a driver that must never raise (signal handlers, cleanup paths): a stop that fails is
        logged and the watchdog re-armed, so it retries every deadline until the link carries it."""
        try:
            send_stop()
        except RobotError as exc:
            log.error("%s: stop failed (%s); the watchdog retries", self._spec.name, exc)
            self.watchdog.feed()

    def _close_watchdog_and_stop(self) -> None:
        """disconnect()'s stop for a driver whose (unstarted) watchdog lives from construction on: close the
        watchdog first, so a stop that fails does not leave it retrying on a closed link, then stop, then
        make a fresh unstarted watchdog for the next connection."""
        self.watchdog.close()
        if self._lifecycle.state is not LinkState.DISCONNECTED:
            self.stop()
        self.watchdog = self.watchdog.renewed()
