"""`go2` and `g1`: Unitree's legged robots through `unitree_sdk2py` (high-level locomotion over CycloneDDS).

Action: body-frame base velocity (vx, vy, yaw_rate) in m/s, m/s, rad/s, the same spec and envelope as
the twins `go2_sim` / `g1_sim` (robots/legged_limits.py). Every action passes `ActionSafety` first: it
is clipped into the envelope, and a NaN/Inf action becomes StopMove, never a Move. A `CommandWatchdog`
sends StopMove when no fresh action arrives within `watchdog_ms`. The safe stop outside the actor
(robots/deadman.py, `-o deadman=true`, the default): a supervising process with its own DDS participant and
locomotion client sends the same stop when this process dies (the Go2 has no documented command timeout; the
G1's SetVelocity duration is one, but at `command_duration_s` = 0.5 s it is a second layer, not the first).

  Go2: `SportClient` (service "sport"): enable() = StandUp + BalanceStand, send_action = Move(vx, vy,
       vyaw), stop() = StopMove, disconnect() = StopMove then (option) StandDown: a Go2 lying down is at rest.
       State: `rt/sportmodestate` (unitree_go SportModeState_).
  G1:  `LocoClient` (service "sport" in unitree_sdk2py): send_action = SetVelocity(vx, vy, omega,
       duration) with a short duration, so the robot's own controller also stops if we go quiet;
       stop() = SetVelocity(0, 0, 0). The driver NEVER calls Damp / ZeroTorque / Sit: a humanoid in
       damping mode collapses. It stops in place and leaves the mode to the operator's remote.
       State: `rt/lowstate` (unitree_hg LowState_).

Observations (`-o observation=`): "state" (default without a camera) = the STATE_FIELDS of each robot;
"image" (default with `-o camera=SOURCE`, any robots.cameras source: an OpenCV device index or /dev/video
path, a file, "realsense[:SERIAL]"; not the robots' own head cameras) = the twin's grayscale image spec;
"deploy" (with a camera) = that image plus the proprioception of robots/deployable.py, exactly what
`go2_sim` / `g1_sim -o observation=deploy` observe, so a policy trained on the twin in that mode runs here.

The SDK (and CycloneDDS under it) is imported inside connect(), so `import robots` works without it.
Install: see README "On real hardware" (CycloneDDS 0.10.x, as on the robots, and unitree-sdk2py-dimos).
DDS is set up once per process (`ChannelFactoryInitialize(domain_id, network_interface)` is a process
singleton in the SDK); a second robot in the same process must use the same domain and interface.
"""

from __future__ import annotations

import importlib
import logging
import math
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from common.specs import RobotSpec
from common.types import Observation
from robots.base import ROBOTS, RobotError
from robots.deployable import DEPLOY, deploy_observation, g1_proprio, go2_proprio
from robots.driver_kit import OperatorTask, RealRobot, camera_observation, observation_specs, unreachable
from robots.legged_limits import G1_LIMITS, GO2_LIMITS, VelocityLimits
from robots.lifecycle import Lifecycle, LinkState
from robots.safety import ActionSafety
from robots.watchdog import CommandWatchdog

log = logging.getLogger(__name__)

STOP_ATTEMPTS = 3  # a stop RPC is repeated this many times before stop() raises
_DDS_LOCK = threading.Lock()
_DDS_SETTINGS: tuple[int, str] | None = None  # (domain_id, interface) this process's DDS was initialised with


@dataclass(frozen=True)
class UnitreeConfig:
    """Connection and safety settings of a Unitree driver (all can be given as --robot options)."""

    network_interface: str = "eth0"  # NIC wired to the robot (192.168.123.x); "lo" for the loopback peer
    domain_id: int = 0  # DDS domain; the robots use 0
    connect_timeout_s: float = 3.0  # connect() fails if no state sample or no RPC answer within this
    state_timeout_s: float = 0.5  # get_observation() fails if the newest state sample is older than this
    rpc_timeout_s: float = 0.5  # per RPC call (the SDK waits this long for a match and again for a reply)
    watchdog_ms: float = 200.0  # StopMove when no fresh action arrives within this many milliseconds
    command_duration_s: float = 0.5  # G1 only: the robot itself stops a SetVelocity after this long
    stand_down_on_disconnect: bool = True  # Go2 only: lie down after the final StopMove
    max_steps: int = 200  # episode length cap for the operator-labelled task
    camera: str | None = None  # camera source for robots.cameras.make_camera ("0", "realsense", a file); None: state
    image_size: int = 64  # with a camera: observation {"image": uint8[S, S, 1]}, the twin's image spec
    observation: str = ""  # "state", "image" or "deploy" (image + proprio); default: image with a camera, else state
    camera_max_age_ms: float = 200.0  # an older camera frame is an error, not an observation
    deadman: bool = True  # a supervising process stops the robot if the actor dies (robots/deadman.py)

    def __post_init__(self) -> None:
        if not 0 <= self.domain_id <= 232:
            raise ValueError(f"DDS domain_id must be in 0..232, got {self.domain_id}")
        for name in ("connect_timeout_s", "state_timeout_s", "rpc_timeout_s", "watchdog_ms",
                     "command_duration_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")


NIC_CHECK = "-o network_interface=NIC names this machine's NIC wired to the robot (`ip -br addr`: 192.168.123.x)"


def init_dds(domain_id: int, interface: str, robot: str = "unitree") -> None:
    """Initialise the SDK's DDS participant once per process; refuse a different domain or interface later."""
    global _DDS_SETTINGS
    from unitree_sdk2py.core.channel import ChannelFactoryInitialize

    with _DDS_LOCK:
        if _DDS_SETTINGS is None:
            names = [name for _, name in socket.if_nameindex()]
            if interface not in names:  # checked here: CycloneDDS would only print a warning and fail vaguely
                raise unreachable(robot, f"no network interface {interface!r} on this machine (it has "
                                         f"{', '.join(names)})", NIC_CHECK)
            try:
                ChannelFactoryInitialize(domain_id, interface)
            except Exception as exc:  # the SDK raises a bare Exception
                raise unreachable(robot, f"cannot start DDS on network interface {interface!r}, domain {domain_id} "
                                         f"({exc})", NIC_CHECK) from exc
            _DDS_SETTINGS = (domain_id, interface)
        elif _DDS_SETTINGS != (domain_id, interface):
            raise RobotError(f"this process's DDS is already on domain {_DDS_SETTINGS[0]}, interface "
                             f"{_DDS_SETTINGS[1]!r}; cannot also use domain {domain_id}, {interface!r}")


class StateSubscriber:
    """Keeps the newest sample of one DDS state topic and when it arrived (monotonic seconds)."""

    def __init__(self, topic: str, message_type: Any) -> None:
        from unitree_sdk2py.core.channel import ChannelSubscriber

        self.topic = topic
        self._cond = threading.Condition()
        self._sample: Any = None
        self._received_at = -math.inf
        self.count = 0
        self._subscriber = ChannelSubscriber(topic, message_type)
        self._subscriber.Init(self._on_sample, 0)

    def _on_sample(self, sample: Any) -> None:
        with self._cond:
            self._sample, self._received_at = sample, time.monotonic()
            self.count += 1
            self._cond.notify_all()

    def wait_first(self, timeout_s: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self._sample is not None, timeout_s)

    def latest(self, max_age_s: float) -> Any:
        """The newest sample; RobotError if there is none or it is older than max_age_s."""
        with self._cond:
            sample, age = self._sample, time.monotonic() - self._received_at
        if sample is None or age > max_age_s:
            raise RobotError(f"no {self.topic} sample for {age:.2f} s (limit {max_age_s} s): "
                             "robot silent, powered off, or DDS interface/domain wrong")
        return sample

    def close(self) -> None:
        self._subscriber.Close()


def _sdk_class(path: str) -> Any:
    """The SDK class named "module:Class" (imported only when a driver connects)."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def _check(code: int | None, what: str) -> None:
    if code != 0:
        hint = {3102: "no robot matched (link down?)", 3104: "no reply in time (robot silent?)"}.get(code, "")
        raise RobotError(f"{what} failed with SDK code {code} {hint}".rstrip())


class UnitreeLegged(RealRobot):
    """Shared driver logic: DDS state subscription, safety, watchdog, lifecycle. Subclasses supply the
    robot's limits, state topic and decoding, and its locomotion client calls."""

    NAME = ""
    LIMITS: VelocityLimits
    STATE_TOPIC = ""
    STATE_TYPE = ""  # "module:Class" of the state topic's message in unitree_sdk2py
    CLIENT = ""  # "module:Class" of the locomotion RPC client in unitree_sdk2py
    STATE_FIELDS: tuple[str, ...] = ()
    CONFIG = UnitreeConfig  # its fields are the options

    def __init__(self, **options: Any) -> None:
        self.config = self.CONFIG(**options)
        cfg = self.config
        observation, self.camera = camera_observation(self.NAME, cfg.observation, cfg.camera, cfg.image_size, "state")
        self._spec = RobotSpec(
            name=self.NAME,
            observation=observation_specs(self.NAME, observation, cfg.image_size, len(self.STATE_FIELDS)),
            action=self.LIMITS.bounded_action_spec(),
            control_hz=self.LIMITS.control_hz,
            metadata={"simulated": "false", "action_units": "m/s,m/s,rad/s", "observation": observation,
                      "state_fields": ",".join(self.STATE_FIELDS), "twin": f"{self.NAME}_sim"},
        )
        self.command = np.zeros(3)  # the velocity command in force: the last one sent, zero after a stop
        self.safety = ActionSafety(self._spec.action)
        self.task = OperatorTask(self.config.max_steps)
        self._lifecycle = Lifecycle(self.NAME)
        self._client: Any = None  # the SDK client, created at the first connect and reused
        self._state: StateSubscriber | None = None
        self.watchdog: CommandWatchdog | None = None  # the current connection's (None before the first connect)
        self.rpc_seconds: list[float] = []  # round trip of each replied motion RPC (for --check and tests)
        self.use_deadman = cfg.deadman

    # ---- subclass hooks ----

    def _decode_state(self, sample: Any) -> list[float]:
        raise NotImplementedError

    def _proprio(self, sample: Any) -> list[float]:
        """The deploy mode's proprioceptive values from a state sample (robots/deployable.py)."""
        raise NotImplementedError

    def _move(self, vx: float, vy: float, yaw_rate: float) -> None:
        raise NotImplementedError

    def _stop_motion(self) -> None:
        raise NotImplementedError

    def _on_disconnect(self) -> None:
        """Robot-specific rest after the final stop."""

    # ---- Robot interface ----

    def connect(self) -> None:
        with self._lifecycle.lock:
            if self._lifecycle.state is not LinkState.DISCONNECTED:
                return
            cfg = self.config
            try:
                init_dds(cfg.domain_id, cfg.network_interface, self.NAME)
            except ImportError as exc:
                raise RobotError(f"{self.NAME}: unitree_sdk2py is not installed (pip install '.[unitree]', "
                                 f"see README 'On real hardware'): {exc}") from exc
            self._state = StateSubscriber(self.STATE_TOPIC, self._state_message_type())
            try:
                where = f"on network interface {cfg.network_interface!r}, DDS domain {cfg.domain_id}"
                if not self._state.wait_first(cfg.connect_timeout_s):
                    raise unreachable(self.NAME, f"no {self.STATE_TOPIC} sample within {cfg.connect_timeout_s:g} s "
                                                 f"{where}", f"the robot is powered on and its Ethernet cable in, and "
                                                             f"{NIC_CHECK}")
                self._open_rpc(where)
            except BaseException:
                self._state.close()
                self._state = None
                raise
            try:
                if self.camera is not None:
                    self.camera.connect()
                self._start_deadman()
            except BaseException:
                if self.camera is not None:
                    self.camera.disconnect()
                self._state.close()
                self._state = None
                raise
            self.watchdog = CommandWatchdog(self._watchdog_stop, cfg.watchdog_ms / 1e3, self.NAME).start()
            self._lifecycle.connect()

    def reset(self) -> Observation:
        """A real robot cannot be teleported: stop in place and return the current observation."""
        with self._lifecycle.lock:
            self._lifecycle.require_connected("reset")
            if self._lifecycle.state is LinkState.ENABLED:
                self.stop()
            return self._observe()

    def stop(self) -> None:
        """StopMove now (raises RobotError if the robot did not confirm). No-op when not connected."""
        self._stop_confirmed(self._stop_motion)
        self.command = np.zeros(3)

    def disconnect(self) -> None:
        watchdog = self.watchdog
        if watchdog is not None:  # closed outside our lock: its thread may be waiting for that lock to stop
            watchdog.close()
        with self._lifecycle.lock:
            if self._lifecycle.state is LinkState.DISCONNECTED:
                return
            try:
                try:
                    self.stop()
                finally:
                    self._on_disconnect()
            finally:
                self._end_deadman()  # after our own stop: the supervisor leaves without sending anything
                self._state.close()
                self._state = None
                if self.camera is not None:
                    self.camera.disconnect()
                self._lifecycle.disconnect()

    # ---- the stop path of the safe-stop supervisor (robots/deadman.py) ----

    def deadman_options(self) -> dict:
        cfg = self.config
        return {"network_interface": cfg.network_interface, "domain_id": cfg.domain_id,
                "rpc_timeout_s": cfg.rpc_timeout_s, "connect_timeout_s": cfg.connect_timeout_s}

    def open_stop_path(self) -> None:
        """Our own DDS participant and locomotion client (a second client of the "sport" service; replies
        are matched to requests by id, so the actor's client and ours do not take each other's)."""
        cfg = self.config
        init_dds(cfg.domain_id, cfg.network_interface, self.NAME)
        self._open_rpc(f"on network interface {cfg.network_interface!r}, DDS domain {cfg.domain_id}")

    def send_safe_stop(self) -> None:
        self._stop_motion()

    # ---- internals ----

    def _open_rpc(self, where: str) -> None:
        """The locomotion client, proven to reach the robot's service within connect_timeout_s (a fresh
        participant may need a few calls before DDS discovery has matched it)."""
        cfg = self.config
        if self._client is None:
            self._client = self._make_client()
        self._client.SetTimeout(cfg.rpc_timeout_s)
        deadline = time.monotonic() + cfg.connect_timeout_s
        code, version = self._client.GetServerApiVersion()  # each call waits up to 2 x rpc_timeout_s
        while code != 0 and time.monotonic() < deadline:
            code, version = self._client.GetServerApiVersion()
        if code != 0:
            raise unreachable(self.NAME, f"its locomotion service did not answer {where} (SDK code {code})",
                              "the robot has finished booting and its locomotion service runs (the "
                              "remote's debug mode turns it off)")
        log.info("%s: connected, service API version %s", self.NAME, version)

    def _watchdog_stop(self) -> None:
        with self._lifecycle.lock:
            if self._lifecycle.state is not LinkState.DISCONNECTED:
                self._stop_motion()
                self.command = np.zeros(3)

    def _execute(self, action: np.ndarray) -> np.ndarray:
        self._move(*(float(v) for v in action))
        self.command = action.astype(np.float64)
        self.watchdog.feed()
        return action

    def _make_client(self) -> Any:
        client = _sdk_class(self.CLIENT)()
        client.SetTimeout(self.config.rpc_timeout_s)
        client.Init()
        return client

    def _state_message_type(self) -> Any:
        return _sdk_class(self.STATE_TYPE)

    def _observe(self) -> Observation:
        sample = self._state.latest(self.config.state_timeout_s)  # also with a camera: the link must be alive
        observation = self._spec.metadata["observation"]
        if observation == DEPLOY:
            return deploy_observation(self.camera.read_latest(self.config.camera_max_age_ms), self._proprio(sample))
        if observation == "image":
            return {"image": self.camera.read_latest(self.config.camera_max_age_ms)}
        return {"state": np.asarray(self._decode_state(sample), dtype=np.float32)}

    def _insist(self, call: Callable[[], int | None], what: str) -> None:
        """A stop is worth repeating: a lost request or reply (DDS on a busy link, a server queue that
        dropped it) must not leave the robot walking. Up to STOP_ATTEMPTS calls, then RobotError."""
        for attempt in range(1, STOP_ATTEMPTS + 1):
            try:
                self._timed(call, what)
                return
            except RobotError as exc:
                if attempt == STOP_ATTEMPTS:
                    raise
                log.warning("%s (attempt %d of %d), repeating", exc, attempt, STOP_ATTEMPTS)

    def _timed(self, call: Callable[[], int | None], what: str) -> None:
        started = time.perf_counter()
        code = call()
        self.rpc_seconds.append(time.perf_counter() - started)
        del self.rpc_seconds[:-1000]
        _check(code, f"{self.NAME}: {what}")


def body_frame(vx: float, vy: float, yaw: float) -> tuple[float, float]:
    """Rotate a world-frame planar velocity into the body frame of a robot with heading `yaw`."""
    c, s = math.cos(yaw), math.sin(yaw)
    return c * vx + s * vy, -s * vx + c * vy


@ROBOTS.register("go2")
class Go2Robot(UnitreeLegged):
    """Unitree Go2 via SportClient; observation fields in STATE_FIELDS (from rt/sportmodestate)."""

    NAME = "go2"
    LIMITS = GO2_LIMITS
    STATE_TOPIC = "rt/sportmodestate"
    STATE_TYPE = "unitree_sdk2py.idl.unitree_go.msg.dds_:SportModeState_"
    CLIENT = "unitree_sdk2py.go2.sport.sport_client:SportClient"
    # body-frame velocity (m/s, rad/s), attitude (rad), body height (m), odometry position (m)
    STATE_FIELDS = ("vx", "vy", "yaw_rate", "roll", "pitch", "yaw", "body_height", "x", "y")

    def _decode_state(self, sample: Any) -> list[float]:
        roll, pitch, yaw = sample.imu_state.rpy
        vx, vy = body_frame(sample.velocity[0], sample.velocity[1], yaw)
        return [vx, vy, sample.yaw_speed, roll, pitch, yaw, sample.body_height, sample.position[0], sample.position[1]]

    def _proprio(self, sample: Any) -> list[float]:
        vx, vy, yaw_rate, _, _, yaw, *_ = self._decode_state(sample)
        return go2_proprio(self.LIMITS, [vx, vy, yaw_rate], yaw)

    def _on_enable(self) -> None:
        self._timed(self._client.StandUp, "StandUp")
        self._timed(self._client.BalanceStand, "BalanceStand")

    def _move(self, vx: float, vy: float, yaw_rate: float) -> None:
        # Move is fire-and-forget in the SDK (no reply): code != 0 only if no robot is matched.
        _check(self._client.Move(vx, vy, yaw_rate), f"{self.NAME}: Move")

    def _stop_motion(self) -> None:
        self._insist(self._client.StopMove, "StopMove")

    def _on_disconnect(self) -> None:
        if self.config.stand_down_on_disconnect:
            self._timed(self._client.StandDown, "StandDown")


@ROBOTS.register("g1")
class G1Robot(UnitreeLegged):
    """Unitree G1 via LocoClient; observation fields in STATE_FIELDS (from rt/lowstate)."""

    NAME = "g1"
    LIMITS = G1_LIMITS
    STATE_TOPIC = "rt/lowstate"
    STATE_TYPE = "unitree_sdk2py.idl.unitree_hg.msg.dds_:LowState_"
    CLIENT = "unitree_sdk2py.g1.loco.g1_loco_client:LocoClient"
    N_JOINTS = 29
    # IMU attitude (rad) and angular rate (rad/s), then the 29 body joint angles (rad)
    STATE_FIELDS = ("roll", "pitch", "yaw", "gyro_x", "gyro_y", "gyro_z") + tuple(f"q{i}" for i in range(N_JOINTS))

    def _decode_state(self, sample: Any) -> list[float]:
        imu = sample.imu_state
        return [*imu.rpy, *imu.gyroscope, *(motor.q for motor in sample.motor_state[:self.N_JOINTS])]

    def _proprio(self, sample: Any) -> list[float]:
        imu = sample.imu_state
        return g1_proprio(self.LIMITS, imu.gyroscope[2], imu.rpy[2], self.command)

    def _on_enable(self) -> None:
        # Stand still in whatever locomotion mode the operator chose; the driver never changes the FSM.
        self._stop_motion()

    def _move(self, vx: float, vy: float, yaw_rate: float) -> None:
        # LocoClient.Move drops the return code; SetVelocity is the same RPC with the code kept.
        duration = self.config.command_duration_s
        self._timed(lambda: self._client.SetVelocity(vx, vy, yaw_rate, duration), "SetVelocity")

    def _stop_motion(self) -> None:
        self._insist(lambda: self._client.SetVelocity(0.0, 0.0, 0.0, 1.0), "SetVelocity(0) stop")
