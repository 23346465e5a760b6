"""Stop and failure latencies per driver against its protocol peer, each beside its target.

The driver tests check order and outcome (a stop follows each last action, never before the deadline; a
silent robot gives its named error); how long things take on this machine is measured here, where a loaded
box makes a slow figure, not a red test. Per driver:

  watchdog stop   one action, then nothing: last action -> the stop reaching the peer (LIMO: a 0x111 frame
                  with v = w = 0 on the pty; RM65: set_arm_slow_stop on TCP; go2/g1: StopMove / SetVelocity(0)
                  at the DDS RPC server; franka: franky-sim's commanded speed leaving its cruise level).
                  Target: the deadline plus a margin (LIMO/RM65 150 ms, DDS and libfranka 300 ms).
  stalled step    the same while another thread holds the robot's control-step lock (LIMO, RM65): the
                  watchdog must not wait for it. Same target.
  silent connect  connect() to a peer that never answers -> RobotError (LIMO connect_timeout_s 0.5, RM65
  silent observe  timeout_s 0.3, go2/g1 connect_timeout_s 1.0); get_observation() after the peer goes
  silent stop     silent -> RobotError (state timeouts 0.3 s; franka: libfranka's UDP timeout); go2/g1
                  stop() with no reply -> RobotError after STOP_ATTEMPTS RPCs of rpc_timeout_s 0.3.
  bare watchdog   CommandWatchdog alone, feed -> stop call, at 50 and 200 ms (target: deadline + 100 ms).

Peers: tests/robots/peers/ (LIMO pty base, RM65 TCP controller, the Unitree DDS process, franky-sim).
Drivers whose SDK is missing are skipped with a line saying so.

    python -m benchmarks.watchdog_latency [--trials 20] [--deadline-ms 200] [--drivers limo,rm65,go2,g1,franka,watchdog]
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from robots.base import RobotError
from robots.watchdog import CommandWatchdog

ALL = ("watchdog", "limo", "rm65", "go2", "g1", "franka")
SERIAL_TCP_MARGIN_S = 0.15  # LIMO and RM65: deadline + this (the targets the tests used to assert)
DDS_FRANKA_MARGIN_S = 0.3  # go2/g1 over DDS RPC, franka through libfranka and franky-sim
BARE_MARGIN_S = 0.1


@dataclass
class Figure:
    """One measured quantity over trials, with the target it is held to."""

    driver: str
    what: str
    seconds: list[float]
    target_s: float
    floor_s: float = 0.0  # never sooner than this (a stop before the deadline would be a bug)

    def row(self) -> str:
        ms = np.asarray(self.seconds) * 1e3
        within = int(np.sum((ms >= self.floor_s * 1e3 - 1e-6) & (ms <= self.target_s * 1e3)))
        target_ms = self.target_s * 1e3
        floor = f"{self.floor_s * 1e3:.0f}..{target_ms:.0f}" if self.floor_s else f"<= {target_ms:.0f}"
        return (f"{self.driver:8s} {self.what:16s} n={len(ms):3d}  ms: min {ms.min():7.1f}  median {np.median(ms):7.1f}"
                f"  p95 {np.percentile(ms, 95):7.1f}  max {ms.max():7.1f}   target {floor:>9s} ms: {within}/{len(ms)}")


def time_until_error(call: Callable[[], object], limit_s: float = 30.0) -> float:
    """Seconds until `call` raises RobotError (called repeatedly until it does)."""
    started = time.monotonic()
    while time.monotonic() - started < limit_s:
        try:
            call()
        except RobotError:
            return time.monotonic() - started
    raise RuntimeError(f"no RobotError within {limit_s} s")


def stalled(lock) -> tuple[threading.Event, threading.Thread]:
    """A thread holding `lock` (a control step hung inside the robot) until the returned event is set."""
    release, holding = threading.Event(), threading.Event()

    def hold() -> None:
        with lock:
            holding.set()
            release.wait(30.0)

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    holding.wait(5.0)
    return release, thread


# ---- the bare watchdog ----

def bare_watchdog(trials: int) -> list[Figure]:
    figures = []
    for deadline_s in (0.05, 0.2):
        calls: list[float] = []
        called = threading.Condition()

        def stop(calls=calls, called=called) -> None:
            with called:
                calls.append(time.monotonic())
                called.notify_all()

        watchdog = CommandWatchdog(stop, deadline_s).start()
        latencies = []
        try:
            for trip in range(1, trials + 1):
                fed = time.monotonic()
                watchdog.feed()
                with called:
                    if not called.wait_for(lambda trip=trip: len(calls) >= trip, 30.0):
                        raise RuntimeError("the watchdog never stopped")
                latencies.append(calls[-1] - fed)
        finally:
            watchdog.close()
        figures.append(Figure(f"wd{deadline_s * 1e3:.0f}ms", "watchdog stop", latencies,
                              deadline_s + BARE_MARGIN_S, deadline_s))
    return figures


# ---- LIMO (pty) and RM65 (TCP) ----

@dataclass
class StopProbe:
    """How to read one peer: how many stops it has received, when the newest arrived, and how to wait."""

    stops: Callable[[], int]
    newest_stop_at: Callable[[], float]
    wait_for: Callable[[Callable[[], bool], float], bool]


def stop_latencies(robot, action: np.ndarray, probe: StopProbe, trials: int, stall: bool) -> list[float]:
    """Last action -> its watchdog stop at the peer, `trials` times; with `stall`, while another thread holds
    the robot's control-step lock."""
    latencies = []
    for _ in range(trials):
        count = probe.stops()
        robot.send_action(action)
        sent = time.monotonic()
        release, thread = stalled(robot._lifecycle.lock) if stall else (None, None)
        try:
            if not probe.wait_for(lambda count=count: probe.stops() > count, 30.0):
                raise RuntimeError(f"{robot.spec.name}: no stop reached the peer")
            latencies.append(probe.newest_stop_at() - sent)
        finally:
            if release is not None:
                release.set()
                thread.join()
    return latencies


def silent_latencies(robot, make_other: Callable[[], object], set_silent: Callable[[bool], None],
                     trials: int) -> tuple[list[float], list[float]]:
    """(observation, connect) times until RobotError once the peer stops answering."""
    observe, connect = [], []
    for _ in range(trials):
        set_silent(True)
        observe.append(time_until_error(robot.get_observation))
        other = make_other()
        connect.append(time_until_error(other.connect))
        other.disconnect()
        set_silent(False)
        time_until_answer(robot.get_observation)
    return observe, connect


def time_until_answer(call: Callable[[], object], limit_s: float = 30.0) -> None:
    deadline = time.monotonic() + limit_s
    while True:
        try:
            call()
            return
        except RobotError:
            if time.monotonic() > deadline:
                raise


def serial_tcp_figures(name: str, robot, action: np.ndarray, probe: StopProbe, make_other, set_silent,
                       trials: int, deadline_s: float, connect_floor_s: float) -> list[Figure]:
    target = deadline_s + SERIAL_TCP_MARGIN_S
    robot.connect()
    robot.enable()
    watchdog = stop_latencies(robot, action, probe, trials, stall=False)
    stalled_step = stop_latencies(robot, action, probe, max(1, trials // 4), stall=True)
    observe, connect = silent_latencies(robot, make_other, set_silent, max(1, trials // 10))
    return [Figure(name, "watchdog stop", watchdog, target, deadline_s),
            Figure(name, "stalled step", stalled_step, target, deadline_s),
            Figure(name, "silent connect", connect, 2.0 if name == "limo" else 1.5, connect_floor_s),
            Figure(name, "silent observe", observe, 1.5)]


def limo(trials: int, deadline_ms: float, workdir: Path) -> list[Figure]:
    from robots.limo import LimoRobot
    from tests.robots.peers.limo_base import FakeLimoBase

    base = FakeLimoBase(str(workdir / "ttyLIMO")).start()
    robot = LimoRobot(port=base.port, watchdog_ms=deadline_ms, state_timeout_ms=300)

    def stop_times() -> list[float]:
        return [t for t, values in list(base.commands) if values[:2] == (0.0, 0.0)]

    probe = StopProbe(lambda: len(stop_times()), lambda: stop_times()[-1],
                      lambda predicate, timeout: base.wait_for(lambda _base: predicate(), timeout))
    try:
        return serial_tcp_figures("limo", robot, np.array([0.1, 0.0], dtype=np.float32), probe,
                                  lambda: LimoRobot(port=base.port, connect_timeout_s=0.5),
                                  lambda silent: setattr(base, "silent", silent), trials, deadline_ms / 1e3, 0.5)
    finally:
        robot.disconnect()
        base.close()


def rm65(trials: int, deadline_ms: float) -> list[Figure]:
    from robots.rm65 import RM65Robot
    from tests.robots.peers.rm65_arm import FakeRM65Arm

    arm = FakeRM65Arm().start()
    robot = RM65Robot(host="127.0.0.1", port=arm.port, watchdog_ms=deadline_ms, timeout_s=0.3)
    probe = StopProbe(lambda: arm.count("set_arm_slow_stop"), lambda: arm.commands("set_arm_slow_stop")[-1][0],
                      lambda predicate, timeout: arm.wait_for(lambda _arm: predicate(), timeout))
    try:
        return serial_tcp_figures("rm65", robot, np.array([0.01, 0.0, 0.0], dtype=np.float32), probe,
                                  lambda: RM65Robot(host="127.0.0.1", port=arm.port, timeout_s=0.3),
                                  lambda silent: setattr(arm, "silent", silent), trials, deadline_ms / 1e3, 0.3)
    finally:
        robot.disconnect()
        arm.close()


# ---- go2 / g1 (CycloneDDS peer process) and franka (franky-sim peer process) ----

def unitree(name: str, trials: int, deadline_ms: float, domain: int) -> list[Figure]:
    from robots.unitree import STOP_ATTEMPTS, G1Robot, Go2Robot
    from tests.robots.peers.processes import UnitreePeer, is_move, is_stop

    deadline_s = deadline_ms / 1e3
    peer = UnitreePeer(name, domain).start()
    options = {"network_interface": "lo", "domain_id": domain, "connect_timeout_s": 5.0, "rpc_timeout_s": 1.0,
               "watchdog_ms": deadline_ms, "command_duration_s": 5.0, "stand_down_on_disconnect": False}
    driver = {"go2": Go2Robot, "g1": G1Robot}[name]
    robot = driver(**options)
    watchdog, silent_observe, silent_stop, silent_connect = [], [], [], []
    try:
        robot.connect()
        robot.enable()
        peer.drain()
        for _ in range(trials):
            robot.send_action(np.array([0.2, 0.0, 0.3]))
            move = peer.until(lambda r: is_move(name, r))[-1]
            stop = peer.until(lambda r: is_stop(name, r), 30.0)[-1]
            watchdog.append(stop["t"] - move["t"])
        quiet = driver(**{**options, "state_timeout_s": 0.3, "rpc_timeout_s": 0.3})
        quiet.connect()
        for _ in range(max(1, trials // 10)):
            peer.pause()
            try:
                silent_observe.append(time_until_error(quiet.get_observation))
                started = time.monotonic()
                try:
                    quiet.stop()
                except RobotError:
                    silent_stop.append(time.monotonic() - started)
                fresh = driver(**{**options, "connect_timeout_s": 1.0})
                silent_connect.append(time_until_error(fresh.connect))
            finally:
                peer.resume()
            time_until_answer(quiet.get_observation)
        quiet.disconnect()
    finally:
        robot.disconnect()
        peer.close()
    rpc = 0.3
    return [Figure(name, "watchdog stop", watchdog, deadline_s + DDS_FRANKA_MARGIN_S, 0.9 * deadline_s),
            Figure(name, "silent observe", silent_observe, 0.3 + 1.0),
            Figure(name, "silent stop", silent_stop, STOP_ATTEMPTS * 2 * rpc + 1.0),
            Figure(name, "silent connect", silent_connect, 1.0 + 1.0, 1.0)]


def franka(trials: int, deadline_ms: float) -> list[Figure]:
    from robots.franka import FrankaRobot
    from tests.robots.peers.processes import FrankaPeer, franka_stop_latency

    deadline_s = deadline_ms / 1e3
    host = f"127.{1 + os.getpid() % 250}.{(os.getpid() // 250) % 250}.1"
    peer = FrankaPeer(host)
    robot = FrankaRobot(address=host, relative_dynamics_factor=0.5, watchdog_ms=deadline_ms, command_hold_s=5.0,
                        home_joints=None)
    watchdog, silent_observe = [], []

    def wait(predicate, what: str) -> None:
        deadline = time.monotonic() + 30
        while not predicate():
            if time.monotonic() > deadline:
                raise RuntimeError(f"franka: no {what}")

    try:
        robot.connect()
        robot.enable()
        for trial in range(trials):
            action = np.array([0.1 * (1 if trial % 2 == 0 else -1), 0.0, 0.0, 0.0])
            wait(lambda a=action: robot.send_action(a) is not None
                 and abs(peer.ask("stats")["last_linear"][0] - a[0]) < 1e-4, "cruise speed")
            robot.send_action(action)
            last_sent = time.monotonic()
            wait(lambda: np.linalg.norm(peer.ask("stats")["last_linear"]) < 1e-4, "stop")
            watchdog.append(franka_stop_latency(peer.ask("stats")["trace"], last_sent))
        for _ in range(max(1, trials // 10)):
            peer.pause()
            try:
                silent_observe.append(time_until_error(robot.get_observation))
            finally:
                peer.resume()
            robot.reset()
    finally:
        robot.disconnect()
        peer.close()
    return [Figure("franka", "watchdog stop", watchdog, deadline_s + DDS_FRANKA_MARGIN_S, 0.9 * deadline_s),
            Figure("franka", "silent observe", silent_observe, 3.0)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--deadline-ms", type=float, default=200.0)
    parser.add_argument("--drivers", default=",".join(ALL), help=f"comma-separated, of {', '.join(ALL)}")
    args = parser.parse_args()
    logging.basicConfig(level=logging.CRITICAL)  # the drivers log every watchdog stop; the figures are the output
    chosen = [name for name in args.drivers.split(",") if name]
    unknown = sorted(set(chosen) - set(ALL))
    if unknown:
        parser.error(f"unknown drivers {unknown}")
    needs = {"go2": "unitree_sdk2py", "g1": "unitree_sdk2py", "franka": "franky_sim", "limo": "serial"}
    domain = 231 + os.getpid() % 2  # DDS domains the tests do not use (1..230)
    print(f"deadline {args.deadline_ms:.0f} ms, {args.trials} trials per stop figure")
    for name in chosen:
        if name in needs and importlib.util.find_spec(needs[name]) is None:
            print(f"{name:8s} skipped: {needs[name]} is not installed")
            continue
        if name == "watchdog":
            figures = bare_watchdog(args.trials)
        elif name == "limo":
            with tempfile.TemporaryDirectory() as workdir:
                figures = limo(args.trials, args.deadline_ms, Path(workdir))
        elif name == "rm65":
            figures = rm65(args.trials, args.deadline_ms)
        elif name == "franka":
            figures = franka(args.trials, args.deadline_ms)
        else:
            figures = unitree(name, args.trials, args.deadline_ms, domain)
        for figure in figures:
            print(figure.row(), flush=True)


if __name__ == "__main__":
    main()
