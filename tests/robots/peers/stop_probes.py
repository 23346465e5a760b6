"""One interface over the protocol peers for the kill -9 tests and benchmark: start the peer, the options that
point a driver at it, an action to drive, and what it received (motion command times, stop times, with the
peer's CLOCK_MONOTONIC stamps, the clock of time.monotonic() here).

  LIMO   (pty base)        moves: 0x111 frames with v or w != 0; stops: 0x111 frames with v = w = 0
  RM65   (TCP controller)  moves: movep_canfd; stops: set_arm_slow_stop
  go2/g1 (DDS process)     moves: Move / SetVelocity != 0; stops: StopMove / SetVelocity(0, 0, 0)
  franka (franky-sim)      moves: commanded twist at cruise speed; stops: the simulator holding the arm
"""

from __future__ import annotations

import queue
import time

import numpy as np

from tests.robots.peers.limo_base import FakeLimoBase
from tests.robots.peers.rm65_arm import FakeRM65Arm

# The killed actor's own watchdog is set this long, so it never sends a stop of its own while driving.
QUIET_WATCHDOG_MS = 30000


class LimoProbe:
    robot, drive = "limo", [0.3, 0.2]

    def __init__(self, workdir) -> None:
        self.base = FakeLimoBase(str(workdir / "ttyLIMO")).start()
        self.options = {"port": self.base.port}

    def stops_after(self, t: float) -> list[float]:
        return [at for at, values in list(self.base.commands) if at > t and values[:2] == (0.0, 0.0)]

    def moves(self) -> list[float]:
        return [at for at, values in list(self.base.commands) if values[:2] != (0.0, 0.0)]

    def wait_for(self, predicate, timeout: float) -> bool:
        return self.base.wait_for(lambda _base: predicate(), timeout)

    def close(self) -> None:
        self.base.close()


class RM65Probe:
    robot, drive = "rm65", [0.01, 0.0, 0.0]

    def __init__(self, workdir=None) -> None:
        self.arm = FakeRM65Arm().start()
        self.options = {"host": "127.0.0.1", "port": self.arm.port}

    def stops_after(self, t: float) -> list[float]:
        return [at for at, _ in self.arm.commands("set_arm_slow_stop") if at > t]

    def moves(self) -> list[float]:
        return [at for at, _ in self.arm.commands("movep_canfd")]

    def wait_for(self, predicate, timeout: float) -> bool:
        return self.arm.wait_for(lambda _arm: predicate(), timeout)

    def close(self) -> None:
        self.arm.close()


class LeggedProbe:
    """The Unitree DDS peer process; its request log is gathered as it arrives."""

    drive = [0.2, 0.0, 0.3]

    def __init__(self, robot: str, domain: int) -> None:
        from tests.robots.peers.processes import UnitreePeer

        self.robot = robot
        self.peer = UnitreePeer(robot, domain).start()
        self.records: list[dict] = []
        # command_duration_s: the G1's own expiry must not be what stops it here
        self.options = {"network_interface": "lo", "domain_id": domain, "connect_timeout_s": 10.0,
                        "rpc_timeout_s": 1.0, "command_duration_s": 30.0, "stand_down_on_disconnect": False}

    def stops_after(self, t: float) -> list[float]:
        from tests.robots.peers.processes import is_stop

        self.records += self.peer.drain()
        return [r["t"] for r in self.records if r["t"] > t and is_stop(self.robot, r)]

    def moves(self) -> list[float]:
        from tests.robots.peers.processes import is_move

        self.records += self.peer.drain()
        return [r["t"] for r in self.records if is_move(self.robot, r)]

    def wait_for(self, predicate, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not predicate():
            try:  # blocks until the peer's next request, or the deadline
                self.records.append(self.peer.next(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                return bool(predicate())
        return True

    def close(self) -> None:
        self.peer.close()


class FrankaProbe:
    """franky-sim in its own process; asked for its statistics (each ask is a round trip to the peer)."""

    robot, drive = "franka", [0.05, 0.0, 0.0, 0.0]

    def __init__(self, host: str) -> None:
        from tests.robots.peers.processes import FrankaPeer

        self.sim = FrankaPeer(host)
        self.options = {"address": host, "command_hold_s": 30.0, "home_joints": "none", "use_gripper": "false"}

    def stops_after(self, t: float) -> list[float]:
        return [at for at in self.sim.ask("stats")["holds"] if at > t]

    def moves(self) -> list[float]:
        cruise = 0.9 * float(np.linalg.norm(self.drive[:3]))
        return [t for t, *v in self.sim.ask("stats")["trace"] if np.linalg.norm(v) >= cruise]

    def wait_for(self, predicate, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not predicate():  # paced by the peer's answers
            if time.monotonic() > deadline:
                return False
        return True

    def close(self) -> None:
        self.sim.close()
