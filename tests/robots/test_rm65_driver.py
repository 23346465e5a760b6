"""The `rm65` driver against a fake RealMan controller answering the JSON-lines protocol on loopback TCP."""

from __future__ import annotations

import socket
import threading
import time

import numpy as np
import pytest

from robots.arm_limits import RM65_LIMITS
from robots.base import RobotError
from robots.rm65 import RM65Robot
from robots.sim.rm65 import make_rm65_spec
from tests.robots.peers.rm65_arm import FakeRM65Arm
from tests.robots.peers.video import write_test_video
from tests.robots.test_robot_contract import (  # noqa: F401  (collected here, with this module's make_robot)
    test_context_manager_disconnects_on_exception as test_contract_context_manager,
    test_executed_actions_stay_inside_bounds as test_contract_executed_actions_stay_inside_bounds,
    test_nan_action_executes_the_stop_action as test_contract_nan_action,
    test_observations_validate_against_the_spec as test_contract_observations_validate,
    test_reading_before_connect_or_enabling_a_disconnected_robot_raises as test_contract_reading_before_connect,
    test_reset_observation_validates as test_contract_reset_observation,
    test_send_action_before_enable_raises as test_contract_send_before_enable,
    test_stop_and_disconnect_are_idempotent as test_contract_stop_and_disconnect,
    test_stop_from_other_threads_during_control as test_contract_stop_from_other_threads,
    test_task_contract as test_contract_task,
)

pytestmark = pytest.mark.timeout(30)

WAIT_S = 3.0
DT = 1.0 / RM65_LIMITS.control_hz


@pytest.fixture
def arm():
    peer = FakeRM65Arm().start()
    yield peer
    peer.close()


@pytest.fixture
def rm65(arm):
    robot = RM65Robot(host="127.0.0.1", port=arm.port, watchdog_ms=200, timeout_s=0.5)
    yield robot
    robot.disconnect()


def enabled(robot):
    robot.connect()
    robot.enable()
    return robot


def pose_m(command):
    return np.asarray(command["pose"][:3]) * 1e-6


def test_action_spec_matches_the_twin():
    robot = RM65Robot(port=1)
    assert robot.spec.action == make_rm65_spec().action
    assert robot.spec.control_hz == make_rm65_spec().control_hz
    assert list(robot.spec.observation) == ["state"] and robot.spec.metadata["simulated"] == "false"


def test_connect_reads_state_and_observation_validates(arm, rm65):
    enabled(rm65)
    observation = rm65.get_observation()
    rm65.spec.validate_observation(observation)
    expected = (np.array([0.39, 0.0, 0.15]) - RM65_LIMITS.workspace_center) / RM65_LIMITS.workspace_half_size
    np.testing.assert_allclose(observation["state"][:3], expected, atol=1e-5)
    assert arm.count("get_current_arm_state") >= 2


def test_velocity_becomes_a_relative_pose_target_in_protocol_units(arm, rm65):
    enabled(rm65)
    executed = rm65.send_action(np.array([0.05, -0.02, 0.0], dtype=np.float32))
    np.testing.assert_allclose(executed, [0.05, -0.02, 0.0], atol=1e-7)
    assert arm.wait_for(lambda a: a.count("movep_canfd") >= 1, WAIT_S)
    (_, command), = arm.commands("movep_canfd")
    assert command["pose"] == [395000, -2000, 150000, 3142, 0, 0]  # +5 mm, -2 mm in 0.001 mm; orientation held
    assert command["follow"] is False


def test_out_of_bounds_and_nan_actions_never_reach_the_arm(arm, rm65):
    enabled(rm65)
    rng = np.random.default_rng(1)
    bad = [np.array([np.nan, 0, 0]), np.array([0, np.inf, 0]), np.array([1e6, -1e6, 1e6])]
    bad += [rng.uniform(-5, 5, size=3) for _ in range(60)]
    previous = np.array([0.39, 0.0, 0.15])
    for action in bad:
        rm65.send_action(action.astype(np.float32))
    # The two NaN/Inf actions sent a stop, not a pose; movep_canfd has no reply, so wait for the last one.
    assert arm.wait_for(lambda a: len(a.commands("movep_canfd")) >= len(bad) - 2, WAIT_S)
    poses = [pose_m(c) for _, c in arm.commands("movep_canfd")]
    assert len(poses) == len(bad) - 2
    for pose in poses:
        assert np.all(pose >= RM65_LIMITS.low_array - 1e-9) and np.all(pose <= RM65_LIMITS.high_array + 1e-9)
        assert np.all(np.abs(pose - previous) <= RM65_LIMITS.max_speed * DT + 1e-6), "step larger than the speed limit"
        previous = pose
    assert arm.count("set_arm_slow_stop") == 2 and rm65.safety.nan_stops == 2


def test_an_arm_found_outside_the_box_gets_only_small_inward_targets():
    arm = FakeRM65Arm(pose=(700000, 0, 150000, 3142, 0, 0)).start()  # x = 0.70 m, 12 cm past the box
    robot = enabled(RM65Robot(host="127.0.0.1", port=arm.port))
    try:
        robot.send_action(np.array([0.1, 0.0, 0.0], dtype=np.float32))  # outward: held
        robot.send_action(np.array([-0.1, 0.0, 0.0], dtype=np.float32))  # inward: at most one step
        assert arm.wait_for(lambda a: a.count("movep_canfd") >= 2, WAIT_S)
        xs = [pose_m(c)[0] for _, c in arm.commands("movep_canfd")]
        assert xs[0] == pytest.approx(0.70) and xs[1] == pytest.approx(0.69)
    finally:
        robot.disconnect()
        arm.close()


def test_a_silent_arm_fails_connect_and_observation_with_a_clear_error(arm):
    arm.silent = True
    robot = RM65Robot(host="127.0.0.1", port=arm.port, timeout_s=0.3)
    with pytest.raises(RobotError, match=f"no reply to get_current_arm_state .*127.0.0.1:{arm.port}; check "):
        robot.connect()
    arm.silent = False
    enabled(robot)
    arm.silent = True
    with pytest.raises(RobotError, match="no reply"):
        robot.get_observation()
    assert arm.count("movep_canfd") == 0  # nothing was commanded on the silent link
    arm.silent = False
    robot.disconnect()


def test_nothing_listening_fails_connect_at_once():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(RobotError, match="cannot connect"):
        RM65Robot(host="127.0.0.1", port=port).connect()


def test_reconnects_after_the_controller_restarts(arm, rm65):
    enabled(rm65)
    rm65.send_action(np.array([0.01, 0.0, 0.0], dtype=np.float32))
    arm.restart()  # the controller reboots: our connection is closed from its side
    # A request racing the close may fail with a clear error; the driver then reconnects by itself.
    outcomes = []
    for _ in range(3):
        try:
            rm65.get_observation()
            outcomes.append("ok")
        except RobotError as exc:
            assert "link closed" in str(exc) or "send failed" in str(exc), exc
            outcomes.append("error")
    assert outcomes[-1] == "ok" and outcomes.count("error") <= 1, outcomes
    assert arm.wait_for(lambda a: len(a._clients) >= 1, WAIT_S)
    rm65.spec.validate_observation(rm65.get_observation())
    rm65.send_action(np.array([0.0, 0.01, 0.0], dtype=np.float32))
    assert arm.wait_for(lambda a: len(a.commands("movep_canfd")) >= 2, WAIT_S)


def test_the_watchdog_slow_stops_the_arm_after_each_last_action(arm, rm65):
    """Order and outcome: each pose target is followed by exactly one slow stop, never one sent before the
    deadline. How long after the deadline is benchmarks/watchdog_latency.py's."""
    enabled(rm65)
    for trip in range(1, 4):
        before = time.monotonic()
        rm65.send_action(np.array([0.02, 0.0, 0.0], dtype=np.float32))
        assert arm.wait_for(lambda a, trip=trip: len(a.commands("set_arm_slow_stop")) >= trip, 4 * WAIT_S)
        (moved_at, _), (stopped_at, _) = arm.commands("movep_canfd")[-1], arm.commands("set_arm_slow_stop")[-1]
        assert before <= moved_at < stopped_at, "the stop came before the action it ends"
        assert stopped_at - before >= rm65.watchdog.deadline_s, "stopped before the deadline"
        assert rm65.watchdog.wait_for_trips(trip, WAIT_S)
    assert not arm.wait_for(lambda a: a.count("set_arm_slow_stop") > 3, 0.5), "stopped again with no new action"
    assert arm.count("movep_canfd") == 3 and rm65.watchdog.trips == 3


def test_emergency_stop_and_concurrent_stops(arm, rm65):
    enabled(rm65)
    errors = []

    def stopper():
        try:
            for _ in range(10):
                rm65.stop()
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=stopper) for _ in range(3)]
    for thread in threads:
        thread.start()
    for _ in range(5):
        rm65.send_action(np.array([0.01, 0.0, 0.0], dtype=np.float32))
    for thread in threads:
        thread.join()
    assert errors == [] and arm.count("set_arm_slow_stop") >= 30
    rm65.emergency_stop()
    assert arm.count("set_arm_stop") == 1


def test_watchdog_stops_the_arm_while_the_control_step_is_stalled(arm, rm65):
    enabled(rm65)
    release, holding = threading.Event(), threading.Event()
    rm65.send_action(np.array([0.03, 0.0, 0.0], dtype=np.float32))

    def stalled_control_step():
        with rm65._lifecycle.lock:
            holding.set()
            release.wait(30.0)

    staller = threading.Thread(target=stalled_control_step)
    staller.start()
    try:
        assert holding.wait(WAIT_S)
        # The stop arrives while the control step still holds the lock: the watchdog does not wait for it.
        assert arm.wait_for(lambda a: len(a.commands("set_arm_slow_stop")) >= 1, 4 * WAIT_S)
        assert staller.is_alive() and not release.is_set()
    finally:
        release.set()
        staller.join()


def test_image_observation_matches_the_twin_image_spec(arm, tmp_path):
    video = write_test_video(tmp_path / "wrist.avi", frames=20, size=(80, 60))
    robot = enabled(RM65Robot(host="127.0.0.1", port=arm.port, camera=str(video), image_size=64))
    try:
        assert robot.spec.observation == make_rm65_spec("image", 64).observation
        robot.spec.validate_observation(robot.get_observation())
    finally:
        robot.disconnect()


def test_stop_and_disconnect_are_idempotent(arm):
    robot = RM65Robot(host="127.0.0.1", port=arm.port)
    robot.stop()
    robot.disconnect()
    enabled(robot)
    robot.stop()
    robot.disconnect()
    robot.disconnect()
    with pytest.raises(RobotError):
        robot.get_observation()
    with pytest.raises(RobotError):
        robot.send_action(np.zeros(3, dtype=np.float32))


# ---- the robot contract (tests/robots/test_robot_contract.py) over the driver and its TCP peer ----
# Every contract test except the two that are about simulation (metadata "simulated", seeded replay);
# they are imported at the top of this module and run with the make_robot fixture below.

@pytest.fixture
def make_robot(arm):
    built = []

    def factory(**overrides):
        built.append(RM65Robot(host="127.0.0.1", port=arm.port, **overrides))
        return built[-1]

    yield factory
    for robot in built:
        robot.disconnect()
