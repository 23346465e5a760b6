"""On a real LIMO / RM65 only: `pytest --hardware tests/robots/test_limo_rm65_hardware.py` with
TANDEM_LIMO_PORT=/dev/ttyTHS1 and/or TANDEM_RM65_HOST=192.168.1.18 set; a robot whose variable is unset
is skipped. Motions are tiny (0.05 m/s for 0.3 s); keep the e-stop in reach."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest

pytestmark = [pytest.mark.hardware, pytest.mark.timeout(60)]


def _env(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        pytest.skip(f"set {name} to run this hardware test")
    return value


def _drive_then_go_stale(robot, action) -> float:
    """Send `action` for 0.3 s, then nothing; return seconds from the last action to the watchdog's stop."""
    pace = threading.Event()
    robot.enable()
    for _ in range(3):
        robot.send_action(action)
        pace.wait(0.1)
    assert robot.watchdog.wait_for_trips(1, 2.0), "the watchdog never stopped the robot"
    return robot.watchdog.latencies[-1]  # from the last feed (the last action) to the stop call


def test_limo_hardware_observes_and_watchdog_stops():
    from robots.limo import LimoRobot

    robot = LimoRobot(port=_env("TANDEM_LIMO_PORT"))
    with robot:
        robot.spec.validate_observation(robot.get_observation())
        latency = _drive_then_go_stale(robot, np.array([0.05, 0.0], dtype=np.float32))
        print(f"limo watchdog stop after {latency * 1e3:.0f} ms; bad frames {robot.bad_frames}")
        assert latency < robot.watchdog.deadline_s + 0.1
        settle = threading.Event()
        settle.wait(1.0)  # physical deceleration, not synchronisation
        assert abs(robot.state.motion[0]) < 0.01, f"still moving: {robot.state.motion}"


def test_rm65_hardware_observes_and_watchdog_stops():
    from robots.rm65 import RM65Robot

    robot = RM65Robot(host=_env("TANDEM_RM65_HOST"), port=int(os.environ.get("TANDEM_RM65_PORT", "8080")))
    with robot:
        robot.spec.validate_observation(robot.get_observation())
        before, _ = robot.read_pose()
        latency = _drive_then_go_stale(robot, np.array([0.0, 0.0, 0.05], dtype=np.float32))
        print(f"rm65 watchdog stop after {latency * 1e3:.0f} ms")
        assert latency < robot.watchdog.deadline_s + 0.1
        after, _ = robot.read_pose()
        assert np.all(np.abs(after - before) < 0.05), "moved more than 5 cm"
