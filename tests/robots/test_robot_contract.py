"""The contract every robot (fake and every sim twin configuration) must honour; see robots/base.py."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from common.specs import RobotSpec
from robots.base import RobotError


def connected_and_enabled(robot):
    robot.connect()
    robot.enable()
    robot.task.reset(robot)
    return robot


def test_spec_is_available_before_connect(make_robot):
    spec = make_robot().spec
    assert isinstance(spec, RobotSpec) and spec.control_hz > 0
    assert spec.metadata.get("simulated") == "true"
    assert RobotSpec.from_json(spec.to_json()).spec_hash == spec.spec_hash


def test_observations_validate_against_the_spec(make_robot):
    robot = connected_and_enabled(make_robot())
    robot.spec.validate_observation(robot.get_observation())
    for _ in range(3):
        robot.send_action(robot.spec.action.zeros())
        robot.spec.validate_observation(robot.get_observation())


def test_reset_observation_validates(make_robot):
    robot = make_robot()
    robot.connect()
    robot.spec.validate_observation(robot.task.reset(robot))


def test_executed_actions_stay_inside_bounds(make_robot):
    robot = connected_and_enabled(make_robot())
    spec = robot.spec.action
    rng = np.random.default_rng(0)
    width = spec.high_array - spec.low_array
    # Half the draws are well outside the bounds, to prove they are clipped rather than passed on.
    for scale in (0.5, 3.0):
        for _ in range(5):
            requested = spec.low_array + width * rng.uniform(0.5 - scale, 0.5 + scale, size=spec.shape)
            executed = robot.send_action(requested)
            assert executed.shape == spec.shape and executed.dtype == np.dtype(spec.dtype)
            assert np.all(executed >= spec.low_array) and np.all(executed <= spec.high_array)
            np.testing.assert_allclose(executed, spec.clip(requested))


def test_nan_action_executes_the_stop_action(make_robot):
    robot = connected_and_enabled(make_robot())
    executed = robot.send_action(np.full(robot.spec.action.shape, np.nan))
    np.testing.assert_array_equal(executed, robot.safety.stop_action)
    assert robot.safety.nan_stops == 1


def test_send_action_before_enable_raises(make_robot):
    robot = make_robot()
    with pytest.raises(RobotError):
        robot.send_action(robot.spec.action.zeros())
    robot.connect()
    with pytest.raises(RobotError):
        robot.send_action(robot.spec.action.zeros())


def test_reading_before_connect_or_enabling_a_disconnected_robot_raises(make_robot):
    robot = make_robot()
    with pytest.raises(RobotError):
        robot.get_observation()
    with pytest.raises(RobotError):
        robot.enable()


def test_stop_and_disconnect_are_idempotent(make_robot):
    robot = make_robot()
    robot.stop()  # before connect: harmless
    robot.disconnect()
    connected_and_enabled(robot)
    robot.stop()
    robot.stop()
    robot.disconnect()
    robot.disconnect()
    with pytest.raises(RobotError):
        robot.get_observation()


def test_stop_from_other_threads_during_control(make_robot):
    robot = connected_and_enabled(make_robot())
    errors = []

    def stopper():
        try:
            for _ in range(50):
                robot.stop()
        except Exception as exc:  # noqa: BLE001 - any exception is the failure being tested for
            errors.append(exc)

    threads = [threading.Thread(target=stopper) for _ in range(3)]
    for thread in threads:
        thread.start()
    for _ in range(10):
        robot.send_action(robot.spec.action.high_array)
    for thread in threads:
        thread.join()
    assert errors == []
    robot.spec.validate_observation(robot.get_observation())


def test_context_manager_disconnects_on_exception(make_robot):
    robot = make_robot()
    with pytest.raises(ZeroDivisionError):
        with robot:
            robot.enable()
            robot.send_action(robot.spec.action.zeros())
            1 / 0
    with pytest.raises(RobotError):
        robot.get_observation()


def test_same_seed_same_trajectory(make_robot):
    observations = []
    for _ in range(2):
        robot = connected_and_enabled(make_robot(seed=3))
        for _ in range(3):
            robot.send_action(robot.spec.action.high_array * 0.7)
        observations.append(robot.get_observation())
        robot.disconnect()
    for key in observations[0]:
        np.testing.assert_array_equal(observations[0][key], observations[1][key])


def test_task_contract(make_robot):
    robot = connected_and_enabled(make_robot())
    assert robot.task.max_steps > 0
    reward, terminated = robot.task.reward(robot.get_observation())
    assert isinstance(reward, float) and isinstance(terminated, bool)
