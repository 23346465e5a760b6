"""Image mode: headless grayscale rendering from the LIMO's front camera."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from robots.sim.limo import LimoSim


@pytest.fixture(params=[64, 128])
def image_limo(request):
    robot = LimoSim(observation="image", image_size=request.param, seed=2)
    robot.connect()
    robot.enable()
    robot.task.reset(robot)
    yield robot
    robot.disconnect()


def test_image_is_non_constant_uint8_gray(image_limo):
    size = image_limo.spec.observation["image"].shape[0]
    image = image_limo.get_observation()["image"]
    assert image.dtype == np.uint8 and image.shape == (size, size, 1)
    assert int(image.max()) - int(image.min()) > 100  # high contrast: white ball on a dark floor


def test_image_changes_when_the_robot_moves(image_limo):
    before = image_limo.get_observation()["image"]
    for _ in range(3):
        image_limo.send_action(np.array([0.0, 1.5]))
    after = image_limo.get_observation()["image"]
    changed_fraction = np.mean(np.abs(after.astype(int) - before.astype(int)) > 10)
    assert changed_fraction > 0.02


def test_ball_is_the_brightest_thing_in_view(image_limo):
    # The ball starts straight ahead, so the brightest pixels should be near the image's middle column.
    image = image_limo.get_observation()["image"][:, :, 0]
    columns = np.nonzero(image >= image.max() - 5)[1]
    width = image.shape[1]
    assert abs(columns.mean() - width / 2) < width / 4


def test_rendering_works_from_another_thread(image_limo):
    results = []
    worker = threading.Thread(target=lambda: results.append(image_limo.get_observation()["image"]))
    worker.start()
    worker.join()
    np.testing.assert_array_equal(results[0], image_limo.get_observation()["image"])
