"""Watchdog stop latency per driver: from the last action until the stop command reaches the protocol peer.

The LIMO driver talks to the fake base on a pty (tests/robots/peers/limo_base.py), the RM65 driver to
the fake controller on loopback TCP (tests/robots/peers/rm65_arm.py). Each trial sends one action, then
nothing; the peer timestamps the stop frame (LIMO: a 0x111 frame with v = w = 0; RM65: set_arm_slow_stop)
on arrival. Deadline 200 ms unless --deadline-ms.

    python -m benchmarks.watchdog_latency [--trials 30] [--deadline-ms 200]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import numpy as np

from robots.limo import LimoRobot
from robots.rm65 import RM65Robot
from tests.robots.peers.limo_base import FakeLimoBase
from tests.robots.peers.rm65_arm import FakeRM65Arm


def limo_latencies(trials: int, deadline_ms: float, workdir: Path) -> list[float]:
    base = FakeLimoBase(str(workdir / "ttyLIMO")).start()
    robot = LimoRobot(port=base.port, watchdog_ms=deadline_ms)
    latencies = []
    try:
        robot.connect()
        robot.enable()
        for _ in range(trials):
            count = base.command_count()
            robot.send_action(np.array([0.1, 0.0], dtype=np.float32))
            sent = time.monotonic()
            if not base.wait_for(lambda b, n=count: len(b.commands) > n + 1 and b.commands[-1][1][:2] == (0.0, 0.0), 5):
                raise RuntimeError("no stop reached the LIMO peer")
            latencies.append(base.last_command()[0] - sent)
    finally:
        robot.disconnect()
        base.close()
    return latencies


def rm65_latencies(trials: int, deadline_ms: float) -> list[float]:
    arm = FakeRM65Arm().start()
    robot = RM65Robot(host="127.0.0.1", port=arm.port, watchdog_ms=deadline_ms)
    latencies = []
    try:
        robot.connect()
        robot.enable()
        for trial in range(1, trials + 1):
            robot.send_action(np.array([0.01, 0.0, 0.0], dtype=np.float32))
            sent = time.monotonic()
            if not arm.wait_for(lambda a, n=trial: a.count("set_arm_slow_stop") >= n, 5):
                raise RuntimeError("no stop reached the RM65 peer")
            latencies.append(arm.commands("set_arm_slow_stop")[-1][0] - sent)
    finally:
        robot.disconnect()
        arm.close()
    return latencies


def summary(name: str, latencies: list[float], deadline_ms: float) -> str:
    ms = np.asarray(latencies) * 1e3
    over = ms - deadline_ms
    return (f"{name:5s} n={len(ms)}  stop after last action (ms): min {ms.min():.1f}  median {np.median(ms):.1f}  "
            f"p95 {np.percentile(ms, 95):.1f}  max {ms.max():.1f}   (past the deadline: median {np.median(over):.1f},"
            f" max {over.max():.1f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--deadline-ms", type=float, default=200.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory() as workdir:
        print(summary("limo", limo_latencies(args.trials, args.deadline_ms, Path(workdir)), args.deadline_ms))
    print(summary("rm65", rm65_latencies(args.trials, args.deadline_ms), args.deadline_ms))


if __name__ == "__main__":
    main()
