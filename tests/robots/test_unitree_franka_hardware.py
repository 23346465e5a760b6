"""On a real Go2 / G1 / Franka only: `pytest --hardware tests/robots/test_unitree_franka_hardware.py` with
TANDEM_GO2_IFACE=eth0, TANDEM_G1_IFACE=eth0 and/or TANDEM_FRANKA_HOST=172.16.0.2 set; a robot whose variable
is unset is skipped. Motions are tiny (0.05-0.1 m/s for 0.3 s). Keep the e-stop / remote in reach; a G1
must be standing in its locomotion mode (the driver never changes its mode)."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest

pytestmark = [pytest.mark.hardware, pytest.mark.timeout(90)]


def _env(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        pytest.skip(f"set {name} to run this hardware test")
    return value


def _drive_then_go_stale(robot, action) -> float:
    """Send `action` for 0.3 s at the policy rate, then nothing; seconds from the last action to the stop."""
    pace = threading.Event()
    for _ in range(3):
        robot.send_action(action)
        pace.wait(0.1)  # the policy's rate, not synchronisation
    assert robot.watchdog.wait_for_trips(1, 2.0), "the watchdog never stopped the robot"
    return robot.watchdog.latencies[-1]


@pytest.mark.parametrize("name, variable", [("go2", "TANDEM_GO2_IFACE"), ("g1", "TANDEM_G1_IFACE")])
def test_unitree_hardware_observes_and_watchdog_stops(name, variable):
    from robots.unitree import G1Robot, Go2Robot

    cls = Go2Robot if name == "go2" else G1Robot
    robot = cls(network_interface=_env(variable), stand_down_on_disconnect=False)
    with robot:
        robot.spec.validate_observation(robot.get_observation())
        robot.enable()
        latency = _drive_then_go_stale(robot, np.array([0.1, 0.0, 0.0], dtype=np.float32))
        print(f"{name} watchdog stop after {latency * 1e3:.0f} ms; RPC round trips (ms): "
              f"{np.round(np.array(robot.rpc_seconds) * 1e3, 1).tolist()}")
        assert latency < robot.watchdog.deadline_s + 0.1


def test_franka_hardware_observes_recovers_and_watchdog_stops():
    from robots.franka import FrankaRobot

    robot = FrankaRobot(address=_env("TANDEM_FRANKA_HOST"), home_joints=None)
    with robot:
        robot.enable()
        start = robot.reset()["state"]  # runs the automatic error recovery
        latency = _drive_then_go_stale(robot, np.array([0.0, 0.0, 0.05, 0.0], dtype=np.float32))
        print(f"franka watchdog stop after {latency * 1e3:.0f} ms")
        assert latency < robot.watchdog.deadline_s + 0.1
        assert np.all(np.abs(robot.get_observation()["state"][:3] - start[:3]) < 0.05), "moved more than 5 cm"
