"""The `franka` driver (franky) against franky-sim's MuJoCo Franka speaking the libfranka protocol on loopback.

The peer (tests/robots/peers/franka_peer.py) is a separate process: franky-sim's SimulationServer on its own
127.x.y.z address, with a recorder on the Cartesian velocity commands and finger goals its server hands to
the simulator, so the tests check what reached the "robot", not what our class meant to send.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

_HOW = "bash scripts/install_robot_sdks.sh, or pip install -e '.[franka-sim]'"
pytest.importorskip("franky", reason=f"franky not installed ({_HOW})")
pytest.importorskip("franky_sim", reason=f"franky-sim not installed ({_HOW})")

from robots.arm_limits import FRANKA_LIMITS  # noqa: E402
from robots.base import RobotError  # noqa: E402
from robots.franka import STATE_FIELDS, FrankaRobot  # noqa: E402
from robots.sim.franka import make_franka_spec  # noqa: E402
from tests.robots import test_robot_contract as contract  # noqa: E402
from tests.robots.peers.processes import WAIT_S, FrankaPeer, franka_stop_latency  # noqa: E402
from tests.robots.peers.video import write_test_video  # noqa: E402

# method="thread": a hang inside libfranka holds the GIL, so only the thread method can end it (and the run).
pytestmark = pytest.mark.timeout(60, method="thread")

# libfranka's ports are fixed (1337/1338), so each test process binds its own loopback address.
HOST = f"127.{1 + os.getpid() % 250}.{(os.getpid() // 250) % 250}.1"


@pytest.fixture(scope="module")
def peer():
    fake = FrankaPeer(HOST)
    yield fake
    fake.close()


@pytest.fixture
def make_driver(peer):
    built = []

    def factory(**overrides):
        robot = FrankaRobot(**{"address": HOST, "relative_dynamics_factor": 0.5, **overrides})
        built.append(robot)
        return robot

    yield factory
    for robot in built:
        robot.disconnect()


def enabled(robot):
    robot.connect()
    robot.enable()
    robot.reset()
    return robot


def wait_for(predicate, timeout: float = WAIT_S, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
    return result


def test_action_spec_is_the_twins():
    robot = FrankaRobot()  # franky is not touched before connect
    twin = make_franka_spec()
    assert robot.spec.action == twin.action and robot.spec.control_hz == twin.control_hz
    assert robot.spec.metadata["simulated"] == "false"
    assert robot.spec.observation["state"].shape == (len(STATE_FIELDS),)


def test_velocity_and_finger_commands_reach_the_robot_in_its_units(peer, make_driver):
    robot = enabled(make_driver())
    peer.ask("reset")
    action = np.array([0.08, -0.05, 0.04, 0.05])  # m/s tool velocity, m/s finger opening rate
    start = robot.get_observation()["state"]

    def reached():
        robot.send_action(action)
        return np.allclose(peer.ask("stats")["last_linear"], action[:3], atol=1e-4)

    wait_for(reached, what="the commanded twist at the simulator")
    state = robot.get_observation()["state"]
    np.testing.assert_allclose(state[3:6], action[:3], atol=5e-3)  # measured tool velocity follows
    assert np.all(np.sign(state[:3] - start[:3]) == np.sign(action[:3]))  # and the tool moved that way
    goals = peer.ask("stats")["hand_goals"]
    assert goals and goals[0][0] > start[6] and goals[0][1] == pytest.approx(0.05)  # opening, at the rate sent


def test_out_of_bounds_and_nan_actions_never_reach_the_robot(peer, make_driver):
    robot = enabled(make_driver(watchdog_ms=30000))
    peer.ask("reset")
    rng = np.random.default_rng(0)
    low, high = np.array(FRANKA_LIMITS.action_low), np.array(FRANKA_LIMITS.action_high)
    n_actions = 30
    for i in range(n_actions):
        action = low + (high - low) * rng.uniform(-3.0, 4.0, size=4)
        if i % 3 == 0:
            action[i % 4] = (np.nan, np.inf, -np.inf)[i % 9 // 3]
        robot.send_action(action)
    robot.stop()
    stats = wait_for(lambda: (s := peer.ask("stats"))["velocity_commands"] > 0
                     and np.linalg.norm(s["last_linear"]) < 1e-4 and s, what="the stop at the simulator")
    assert stats["nonfinite"] == 0
    # franky's trajectory generator may overshoot a target by a hair while settling; never by more.
    assert np.all(np.array(stats["max_abs_linear"]) <= FRANKA_LIMITS.max_speed + 1e-3), stats["max_abs_linear"]
    for width, speed in stats["hand_goals"]:
        assert 0.0 <= width <= FRANKA_LIMITS.gripper_max_width and 0.0 < speed <= FRANKA_LIMITS.gripper_max_speed
    assert robot.safety.nan_stops == n_actions // 3


def test_the_watchdog_stops_the_robot_after_each_last_action(peer, make_driver):
    """Order and outcome: after the last action the arm keeps its speed until the watchdog's deadline (never
    stopped early), then decelerates to rest, once per round. How long after the deadline the deceleration
    starts is benchmarks/watchdog_latency.py's."""
    # franky would also end each motion by itself after command_hold_s: make that long to see the watchdog.
    robot = enabled(make_driver(watchdog_ms=200, command_hold_s=5.0))
    deadline_s = robot.watchdog.deadline_s
    for trip, direction in enumerate((1.0, -1.0), start=1):
        action = np.array([0.1 * direction, 0.0, 0.0, 0.0])
        wait_for(lambda action=action: robot.send_action(action) is not None
                 and abs(peer.ask("stats")["last_linear"][0] - action[0]) < 1e-4, what="cruise speed")
        before = time.monotonic()
        robot.send_action(action)
        wait_for(lambda: np.linalg.norm(peer.ask("stats")["last_linear"]) < 1e-4, 4 * WAIT_S, "the watchdog's stop")
        # The trace's samples are 2 ms apart: the last one at cruise speed may precede the stop by that much.
        assert franka_stop_latency(peer.ask("stats")["trace"], before) >= deadline_s * 0.9, "stopped early"
        assert robot.watchdog.wait_for_trips(trip, WAIT_S)
    assert robot.watchdog.trips == 2


def test_a_silent_robot_gives_a_clear_error_and_reset_recovers(peer, make_driver):
    robot = enabled(make_driver(home_joints=None))
    peer.pause()
    try:
        started = time.monotonic()
        # libfranka may still hand out state packets already in its socket buffer; then its 1 s UDP timeout.
        with pytest.raises(RobotError, match="franka: .*(Timeout|timeout)"):
            while time.monotonic() - started < 4 * WAIT_S:  # only so a broken check fails instead of hanging
                robot.get_observation()
    finally:
        peer.resume()
    robot.reset()  # reconnects and runs franky's error recovery
    robot.send_action(np.array([0.05, 0.0, 0.0, 0.0]))
    wait_for(lambda: peer.ask("stats")["last_linear"][0] > 0.0, what="motion after recovery")


def test_stop_on_close(peer, make_driver):
    robot = enabled(make_driver(command_hold_s=5.0, watchdog_ms=30000))
    action = np.array([0.0, 0.1, 0.0, 0.0])
    wait_for(lambda: robot.send_action(action) is not None
             and abs(peer.ask("stats")["last_linear"][1] - 0.1) < 1e-4, what="cruise speed")
    robot.disconnect()  # returns once the stop motion has finished
    assert np.linalg.norm(peer.ask("stats")["last_linear"]) < 1e-4
    with pytest.raises(RobotError):
        robot.get_observation()


def test_camera_observation_is_the_twins_image_spec(peer, make_driver, tmp_path):
    video = write_test_video(tmp_path / "wrist.avi", frames=30, size=(80, 60))
    robot = make_driver(camera=str(video), image_size=64)
    assert robot.spec.observation == make_franka_spec("image", 64).observation
    robot.connect()
    robot.spec.validate_observation(robot.get_observation())


# ---- the robot contract suite (robots/base.py), minus what only a simulator can promise ----

@pytest.fixture
def make_robot(make_driver):
    return lambda **overrides: make_driver(home_joints=None, **overrides)


for _name in ("test_observations_validate_against_the_spec", "test_reset_observation_validates",
              "test_executed_actions_stay_inside_bounds", "test_nan_action_executes_the_stop_action",
              "test_send_action_before_enable_raises",
              "test_reading_before_connect_or_enabling_a_disconnected_robot_raises",
              "test_stop_and_disconnect_are_idempotent", "test_stop_from_other_threads_during_control",
              "test_context_manager_disconnects_on_exception", "test_task_contract"):
    globals()[f"{_name}_contract"] = getattr(contract, _name)
del _name
