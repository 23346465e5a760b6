"""The `go2` and `g1` drivers against a fake robot on CycloneDDS loopback (tests/robots/peers/unitree_robot.py).

The peer is a separate process serving the "sport" RPC service with unitree_sdk2py's own `Server` and
publishing the robot's state topic, so the driver's SDK clients run unchanged. Every request the peer
receives is read back here from its stdout with the peer's monotonic timestamp.
"""

from __future__ import annotations

import os
import queue
import time

import numpy as np
import pytest

pytest.importorskip("unitree_sdk2py.core.channel",
                    reason="unitree_sdk2py/cyclonedds not installed (bash scripts/install_robot_sdks.sh; README)")

from robots.base import RobotError  # noqa: E402
from robots.legged_limits import G1_LIMITS, GO2_LIMITS  # noqa: E402
from robots.sim.legged import make_legged_spec  # noqa: E402
from robots.unitree import STOP_ATTEMPTS, G1Robot, Go2Robot  # noqa: E402
from tests.robots import test_robot_contract as contract  # noqa: E402
from tests.robots.peers.processes import (  # noqa: E402
    MOTION, STOP, WAIT_S, UnitreePeer, command_of, is_move, is_stop)
from tests.robots.peers.video import write_test_video  # noqa: E402

pytestmark = pytest.mark.timeout(60)

# One DDS domain per test process (the SDK's DDS participant is a process singleton), chosen from the pid so
# concurrent test runs on one machine do not hear each other.
DOMAIN = 1 + os.getpid() % 200
DRIVERS = {"go2": (Go2Robot, GO2_LIMITS), "g1": (G1Robot, G1_LIMITS)}


@pytest.fixture(scope="module", params=sorted(DRIVERS))
def peer(request):
    fake = UnitreePeer(request.param, DOMAIN).start()
    yield fake
    fake.close()


@pytest.fixture
def make_driver(peer):
    built = []

    def factory(**overrides):
        options = {"network_interface": "lo", "domain_id": DOMAIN, "connect_timeout_s": 5.0,
                   "rpc_timeout_s": 1.0, **overrides}
        robot = DRIVERS[peer.robot][0](**options)
        built.append(robot)
        return robot

    peer.drain()
    yield factory
    for robot in built:
        try:
            robot.disconnect()
        except RobotError:
            pass  # a test that silenced the peer; the driver still released its resources


def enabled(robot):
    robot.connect()
    robot.enable()
    return robot


# ---- spec ----

@pytest.mark.parametrize("name", sorted(DRIVERS))
def test_action_spec_is_the_twins(name):
    cls, limits = DRIVERS[name]
    robot = cls()  # no SDK call before connect
    twin = make_legged_spec(f"{name}_sim", limits)
    assert robot.spec.action == twin.action and robot.spec.control_hz == twin.control_hz
    assert robot.spec.metadata["simulated"] == "false"
    assert robot.spec.observation["state"].shape == (len(cls.STATE_FIELDS),)


# ---- protocol ----

def test_commands_arrive_with_the_right_values_and_units(peer, make_driver):
    robot = enabled(make_driver(command_duration_s=0.4))
    enable_calls = [record["name"] for record in peer.until(lambda r: r["name"] in ("BalanceStand", "SetVelocity"))]
    assert enable_calls == (["StandUp", "BalanceStand"] if peer.robot == "go2" else ["SetVelocity"])
    sent = [np.array([0.3, -0.2, 0.5]), np.array([-0.1, 0.25, -0.8])]
    for action in sent:
        robot.send_action(action)
        record = peer.until(lambda r: is_move(peer.robot, r))[-1]
        np.testing.assert_allclose(command_of(peer.robot, record), action, atol=1e-6)  # m/s, m/s, rad/s as sent
        if peer.robot == "g1":
            assert record["param"]["duration"] == pytest.approx(0.4)  # the robot's own deadman
    # The state topic reflects the motion: the measured yaw rate becomes the last commanded one.
    yaw_rate_index = list(robot.STATE_FIELDS).index("yaw_rate" if peer.robot == "go2" else "gyro_z")
    deadline = time.monotonic() + WAIT_S
    while abs(robot.get_observation()["state"][yaw_rate_index] - (-0.8)) > 1e-4:
        assert time.monotonic() < deadline, "state topic never showed the commanded yaw rate"
    robot.spec.validate_observation(robot.get_observation())


def test_out_of_bounds_and_nan_actions_never_reach_the_peer(peer, make_driver):
    robot = enabled(make_driver(watchdog_ms=30000))
    peer.drain()
    limits = DRIVERS[peer.robot][1]
    low, high = np.array(limits.low), np.array(limits.high)
    rng = np.random.default_rng(0)
    n_actions, n_finite, records = 60, 0, []
    for i in range(n_actions):
        action = low + (high - low) * rng.uniform(-2.5, 3.5, size=3)  # mostly far outside the bounds
        if i % 3 == 0:
            action[i % 2] = (np.nan, np.inf, -np.inf)[i % 9 // 3]
        else:
            n_finite += 1
        robot.send_action(action)
        # Pace by the peer (a policy runs at 10 Hz): the SDK's Python server drops the oldest of >10 queued
        # requests, and Go2's Move has no reply to wait for.
        records += peer.until(lambda r: r["name"] in (MOTION[peer.robot], STOP[peer.robot]))
    robot.stop()
    records += peer.until(lambda r: is_stop(peer.robot, r))
    commands = [np.array(command_of(peer.robot, r)) for r in records if r["name"] == MOTION[peer.robot]]
    moves = [c for c in commands if not (peer.robot == "g1" and not c.any())]
    assert len(moves) == n_finite  # every finite action was sent once; each NaN/Inf one became a stop
    outside = [c for c in commands
               if not (np.all(np.isfinite(c)) and np.all(c >= low - 1e-6) and np.all(c <= high + 1e-6))]
    assert outside == [], f"{len(outside)} of {len(commands)} commands outside the envelope reached the peer"
    assert robot.safety.nan_stops == n_actions - n_finite
    # Every NaN/Inf action and the final stop() reach the peer as a stop. A stop whose reply came late
    # (a loaded machine) is repeated by design, so the peer may log one stop more than once.
    expected_stops = n_actions - n_finite + 1
    assert expected_stops <= sum(is_stop(peer.robot, r) for r in records) <= expected_stops * STOP_ATTEMPTS


def _all_until_last_stop(peer) -> list[dict]:
    """Everything the peer logged up to the stop() that ended the test's commands."""
    records = []
    while True:
        try:
            records.append(peer.next(timeout=1.0))
        except queue.Empty:
            return records


def test_the_watchdog_stops_the_robot_after_each_last_action(peer, make_driver):
    """Order and outcome: each move is followed by the watchdog's stop, never one sent before the deadline,
    and the robot ends at rest. How long after the deadline is benchmarks/watchdog_latency.py's. (The peer
    stamps requests with CLOCK_MONOTONIC, the clock of time.monotonic() here.)"""
    robot = enabled(make_driver(watchdog_ms=200, command_duration_s=5.0))
    peer.drain()
    for trip in range(1, 4):
        before = time.monotonic()
        robot.send_action(np.array([0.2, 0.0, 0.3]))
        # Up to the move first: a late-acknowledged stop of the previous round is repeated by design and
        # may still be in the log (it once left this round with a stop and no move before it).
        move = peer.until(lambda r: is_move(peer.robot, r))[-1]
        stop = peer.until(lambda r: is_stop(peer.robot, r), 4 * WAIT_S)[-1]  # only the watchdog stops
        assert before <= move["t"] < stop["t"], "the stop came before the move it ends"
        assert stop["t"] - before >= robot.watchdog.deadline_s, "stopped before the deadline"
        assert robot.watchdog.wait_for_trips(trip, WAIT_S)
    yaw_rate = list(robot.STATE_FIELDS).index("yaw_rate" if peer.robot == "go2" else "gyro_z")
    deadline = time.monotonic() + 4 * WAIT_S  # only so a broken check fails instead of hanging
    while robot.get_observation()["state"][yaw_rate] != 0.0:  # the state topic shows the robot at rest
        assert time.monotonic() < deadline, "the robot never showed it stopped"


def test_a_silent_robot_gives_a_clear_error(peer, make_driver):
    robot = enabled(make_driver(state_timeout_s=0.3, rpc_timeout_s=0.3, connect_timeout_s=1.0))
    robot.get_observation()
    peer.pause()
    try:
        started = time.monotonic()
        with pytest.raises(RobotError, match="sample for"):
            while time.monotonic() - started < 4 * WAIT_S:  # only so a broken check fails instead of hanging
                robot.get_observation()
        calls = len(robot.rpc_seconds)
        with pytest.raises(RobotError, match="SDK code 310"):
            robot.stop()  # a replied RPC that gets no reply, STOP_ATTEMPTS times
        assert len(robot.rpc_seconds) - calls == STOP_ATTEMPTS  # insisted, then said so
        fresh = make_driver(connect_timeout_s=1.0)
        with pytest.raises(RobotError, match=f"no rt/.* on network interface 'lo', DDS domain {DOMAIN}; check "):
            fresh.connect()
    finally:
        peer.resume()
    peer.until(lambda r: is_stop(peer.robot, r))  # the late stop request is still handled after resuming
    deadline = time.monotonic() + WAIT_S
    while True:  # and the same driver reads state again, without reconnecting
        try:
            robot.get_observation()
            break
        except RobotError:
            assert time.monotonic() < deadline


def test_stop_on_close_and_never_damp_a_humanoid(peer, make_driver):
    robot = enabled(make_driver())
    robot.send_action(np.array([0.3, 0.0, 0.0]))
    robot.disconnect()
    names = [r["name"] for r in _all_until_last_stop(peer)]
    if peer.robot == "go2":
        assert names[-2:] == ["StopMove", "StandDown"]
    else:
        assert names[-1] == "SetVelocity" and "SetFsmId" not in names  # stopped in place, mode untouched
    with pytest.raises(RobotError):
        robot.get_observation()
    robot.disconnect()  # idempotent, sends nothing more
    assert peer.drain() == []


def test_context_manager_stops_the_robot_on_an_exception(peer, make_driver):
    with pytest.raises(ZeroDivisionError):
        with make_driver(stand_down_on_disconnect=False) as robot:
            robot.enable()
            robot.send_action(np.array([0.3, 0.0, 0.0]))
            peer.until(lambda r: is_move(peer.robot, r))
            1 / 0
    records = _all_until_last_stop(peer)
    assert records and all(is_stop(peer.robot, r) for r in records)


def test_reconnects_after_the_robot_restarts(peer, make_driver):
    robot = enabled(make_driver(state_timeout_s=0.3))
    peer.close()
    peer.records = queue.Queue()
    with pytest.raises(RobotError):
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            robot.get_observation()
    peer.start()
    deadline = time.monotonic() + WAIT_S
    while True:
        try:
            robot.get_observation()
            break
        except RobotError:
            assert time.monotonic() < deadline, "no state from the restarted robot"
    robot.send_action(np.array([0.1, 0.0, 0.0]))
    record = peer.until(lambda r: is_move(peer.robot, r))[-1]
    np.testing.assert_allclose(command_of(peer.robot, record), [0.1, 0.0, 0.0], atol=1e-6)


def test_camera_observation_is_the_twins_image_spec(peer, make_driver, tmp_path):
    video = write_test_video(tmp_path / "front.avi", frames=30, size=(80, 60))
    robot = make_driver(camera=str(video), image_size=64)
    assert robot.spec.observation == make_legged_spec(f"{peer.robot}_sim", DRIVERS[peer.robot][1], "image").observation
    robot.connect()
    robot.spec.validate_observation(robot.get_observation())
    peer.pause()  # a live camera does not hide a silent robot
    try:
        with pytest.raises(RobotError, match="sample for"):
            deadline = time.monotonic() + WAIT_S
            while time.monotonic() < deadline:
                robot.get_observation()
    finally:
        peer.resume()


# ---- the robot contract suite (robots/base.py), minus what only a simulator can promise ----

@pytest.fixture
def make_robot(make_driver):
    # 150 StopMove round trips from 3 threads: allow for a Python peer stalled by a loaded CI machine
    return lambda **overrides: make_driver(**{"rpc_timeout_s": 3.0, **overrides})


for _name in ("test_observations_validate_against_the_spec", "test_reset_observation_validates",
              "test_executed_actions_stay_inside_bounds", "test_nan_action_executes_the_stop_action",
              "test_send_action_before_enable_raises",
              "test_reading_before_connect_or_enabling_a_disconnected_robot_raises",
              "test_stop_and_disconnect_are_idempotent", "test_stop_from_other_threads_during_control",
              "test_context_manager_disconnects_on_exception", "test_task_contract"):
    globals()[f"{_name}_contract"] = getattr(contract, _name)
del _name
