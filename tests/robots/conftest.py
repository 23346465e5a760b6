"""Robot factories shared by the robot tests: the fake robot and every simulated twin configuration."""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import pytest  # noqa: E402

import robots  # noqa: E402,F401  (registers every robot)
from robots.base import ROBOTS  # noqa: E402

# id -> (registered name, constructor options). Every twin configuration must pass the contract suite.
ROBOT_CONFIGS = {
    "fake": ("fake", {}),
    "limo_sim-state": ("limo_sim", {"observation": "state"}),
    "limo_sim-image64": ("limo_sim", {"observation": "image", "image_size": 64}),
    "franka_sim-state": ("franka_sim", {"observation": "state"}),
    "franka_sim-image64": ("franka_sim", {"observation": "image", "image_size": 64}),
    "rm65_sim-state": ("rm65_sim", {"observation": "state"}),
    "rm65_sim-image64": ("rm65_sim", {"observation": "image", "image_size": 64}),
    "go2_sim-state": ("go2_sim", {"observation": "state"}),
    "go2_sim-image64": ("go2_sim", {"observation": "image", "image_size": 64}),
    "g1_sim-state": ("g1_sim", {"observation": "state"}),
    "g1_sim-image64": ("g1_sim", {"observation": "image", "image_size": 64}),
    **{f"{twin}-deploy64": (twin, {"observation": "deploy", "image_size": 64})
       for twin in ("limo_sim", "franka_sim", "rm65_sim", "go2_sim", "g1_sim")},
}


@pytest.fixture(params=sorted(ROBOT_CONFIGS))
def make_robot(request):
    """A factory building a fresh (unconnected) robot of one configuration; disconnects it afterwards."""
    name, options = ROBOT_CONFIGS[request.param]
    built = []

    def factory(**overrides):
        robot = ROBOTS.get(name)(**{**options, **overrides})
        built.append(robot)
        return robot

    yield factory
    for robot in built:
        robot.disconnect()


@pytest.fixture
def limo():
    """A connected, enabled LIMO twin in state mode, reset to a seeded ball-to-goal episode."""
    robot = ROBOTS.get("limo_sim")(observation="state", seed=7)
    robot.connect()
    robot.enable()
    robot.task.reset(robot)
    yield robot
    robot.disconnect()
