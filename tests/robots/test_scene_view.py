"""The twins' scene view (`render_view`), what episode videos show: RGB at the asked size, the whole scene,
following what moves, and leaving the policy's own camera observation untouched."""

from __future__ import annotations

import numpy as np
import pytest

import robots  # noqa: F401  (registers every robot)
from robots.base import ROBOTS

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(params=["limo_sim", "go2_sim", "franka_sim"])
def twin(request):
    robot = ROBOTS.get(request.param)(observation="image", image_size=64)
    robot.connect()
    robot.enable()
    robot.task.reset(robot)
    yield robot
    robot.disconnect()


def test_the_view_is_rgb_at_the_asked_size_and_shows_a_scene(twin):
    view = twin.render_view(320, 240)
    assert view.dtype == np.uint8 and view.shape == (240, 320, 3)
    assert int(view.max()) - int(view.min()) > 80, "the robot and objects stand out of the floor"
    assert twin.render_view(480, 360).shape == (360, 480, 3), "a second size gets its own renderer"


def test_the_view_follows_the_motion_and_the_observation_keeps_its_camera(twin):
    observation_before, view_before = twin.get_observation()["image"], twin.render_view()
    push = np.array(twin.spec.action.high, dtype=np.float32)
    for _ in range(8):
        twin.send_action(push)
    observation_after, view_after = twin.get_observation()["image"], twin.render_view()
    assert observation_after.shape == observation_before.shape == (64, 64, 1), "the policy still sees its camera"
    assert np.mean(np.abs(view_after.astype(int) - view_before.astype(int)) > 10) > 0.002, "the view shows motion"
