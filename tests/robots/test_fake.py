"""FakeRobot dynamics and FakeTask success detection."""

from __future__ import annotations

import numpy as np
import pytest

from robots.base import ROBOTS
from robots.fake import FAKE_CONTROL_HZ, FakeRobot, FakeTask


@pytest.fixture
def fake():
    robot = ROBOTS.get("fake")(seed=1)
    robot.connect()
    robot.enable()
    yield robot
    robot.disconnect()


def test_state_integrates_the_executed_action(fake):
    start = fake.reset()["state"]
    fake.send_action(np.array([1.0, -0.5]))
    state = fake.get_observation()["state"]
    np.testing.assert_allclose(state[:2], start[:2] + np.array([1.0, -0.5]) / FAKE_CONTROL_HZ, atol=1e-6)
    np.testing.assert_allclose(state[2:], [1.0, -0.5])


def test_stop_zeroes_velocity(fake):
    fake.reset()
    fake.send_action(np.array([1.0, 1.0]))
    fake.stop()
    np.testing.assert_array_equal(fake.get_observation()["state"][2:], [0.0, 0.0])


def test_driving_to_the_goal_succeeds_within_max_steps(fake):
    task = fake.task
    observation = task.reset(fake)
    for step in range(task.max_steps):
        direction = task.goal - observation["state"][:2]
        fake.send_action(direction / max(np.abs(direction).max(), 1e-6))
        observation = fake.get_observation()
        reward, terminated = task.reward(observation)
        if terminated:
            break
    assert (reward, terminated) == (1.0, True) and step < task.max_steps - 1


def test_task_reward_on_hand_placed_states():
    task = FakeTask(goal=(0.3, 0.0), goal_radius=0.1)
    assert task.reward({"state": np.array([0.3, 0.05, 0, 0], np.float32)}) == (1.0, True)
    assert task.reward({"state": np.array([0.0, 0.0, 0, 0], np.float32)}) == (0.0, False)


def test_max_steps_is_configurable():
    assert FakeRobot(max_steps=7).task.max_steps == 7
    assert FakeRobot().task.max_steps == 20
    with pytest.raises(ValueError):
        FakeTask(max_steps=0)


def test_reset_jitter_depends_on_seed():
    starts = []
    for seed in (0, 0, 1):
        robot = FakeRobot(seed=seed)
        robot.connect()
        starts.append(robot.reset()["state"])
    np.testing.assert_array_equal(starts[0], starts[1])
    assert not np.array_equal(starts[0], starts[2])


def test_an_image_size_adds_a_camera_whose_image_follows_the_robot():
    robot = FakeRobot(seed=3, image_size=32, start_jitter=0.0)
    assert robot.spec.observation["image"].shape == (32, 32, 1)
    robot.connect()
    robot.enable()
    first = robot.reset()["image"]
    assert first.dtype == np.uint8 and first.shape == (32, 32, 1) and first.max() == 255
    for _ in range(10):
        robot.send_action(np.array([1.0, 1.0]))
    moved = robot.get_observation()["image"]
    # the bright square left the centre and went up and right (x to the right, y up the image)
    rows, columns = np.nonzero(moved[..., 0] == 255)
    assert rows.mean() < 15 and columns.mean() > 17
    assert not np.shares_memory(first, moved)
    robot.spec.validate_observation(robot.get_observation())  # the spec describes what the camera gives


def test_a_camera_smaller_than_8_pixels_is_refused():
    with pytest.raises(ValueError, match="image_size"):
        FakeRobot(image_size=4)
    assert "image" not in FakeRobot().spec.observation
