"""A real robot does not explore on its own: the real control loop holds it still until the learner's first
weights or the operator's start key; `--explore-before-weights` and the twins keep random exploration."""

from __future__ import annotations

import contextlib
import dataclasses
import threading

import numpy as np
import pytest

from actor.app import holds_until_start
from actor.loop import ActorLoop, LoopConfig
from actor.operator import Operator
from actor.policy import ActingPolicy
from common.types import Transition
from robots.base import ROBOTS
from robots.fake import FakeRobot
from robots.limo import LimoRobot
from tests.conftest import wait_until

pytestmark = pytest.mark.timeout(60)


class LooksReal(FakeRobot):
    """The fake robot with a real robot's spec (metadata simulated=false), logging every command in order."""

    def __init__(self, **options) -> None:
        super().__init__(**options)
        self._spec = dataclasses.replace(self._spec, metadata={**self._spec.metadata, "simulated": "false"})
        self.calls: list[str] = []  # "stop" or "action", in the order the robot got them
        self._calls_lock = threading.Lock()

    def send_action(self, action: np.ndarray) -> np.ndarray:
        with self._calls_lock:
            self.calls.append("action")
        return super().send_action(action)

    def stop(self) -> None:
        with self._calls_lock:
            self.calls.append("stop")
        super().stop()

    def count(self, call: str) -> int:
        with self._calls_lock:
            return self.calls.count(call)


class _Weights(ActingPolicy):
    """The learner's first weights: a deterministic policy of version 0."""

    version = 0

    def act(self, _observation, deterministic: bool = False) -> np.ndarray:
        return np.full((2,), 0.5, np.float32)


@contextlib.contextmanager
def running(robot: LooksReal, take_policy, hold_until_start: bool):
    """The real loop on `robot` for one episode in a thread: yields (loop, operator, runner, what it sent to
    the learner); stops and disconnects whatever happens."""
    config = LoopConfig(episodes=1, time_scale=20.0, hold_until_start=hold_until_start)
    recorded: list = []
    operator = Operator(robot.spec, robot.stop)
    loop = ActorLoop(robot, robot.task, recorded.append, take_policy, config, "real", operator)
    robot.connect()
    robot.enable()
    runner = threading.Thread(target=loop.run)
    runner.start()
    try:
        yield loop, operator, runner, recorded
    finally:
        loop.request_stop()
        runner.join(timeout=10)
        robot.disconnect()


def held(robot: LooksReal) -> int:
    """Wait until the loop has held the robot for a few control periods; how many stops that was."""
    wait_until(lambda: robot.count("stop") >= 5, what="the robot being held (stopped every period)")
    assert robot.count("action") == 0, "a real robot moved before its first weights or the start key"
    return robot.count("stop")


def transitions(recorded: list) -> list[Transition]:
    return [item for item in recorded if isinstance(item, Transition)]


def test_real_robots_hold_unless_asked_and_twins_explore():
    assert holds_until_start(LimoRobot(port="/dev/null").spec, explore_before_weights=False)
    assert not holds_until_start(LimoRobot(port="/dev/null").spec, explore_before_weights=True)
    for twin in ("limo_sim", "go2_sim", "franka_sim", "fake"):
        assert not holds_until_start(ROBOTS.get(twin)().spec, explore_before_weights=False), twin


def test_a_real_robot_holds_still_until_the_first_weights_then_acts_with_them():
    published = threading.Event()
    robot = LooksReal(seed=1, max_steps=5)
    take = lambda current: _Weights() if published.is_set() and current < 0 else None  # noqa: E731
    with running(robot, take, hold_until_start=True) as (loop, _, runner, recorded):
        holds = held(robot)
        assert loop.status.mode == "WAITING"
        published.set()
        runner.join(timeout=30)
        assert not runner.is_alive()
    first_action = robot.calls.index("action")
    assert first_action >= holds and set(robot.calls[:first_action]) == {"stop"}  # held, then acted
    steps = transitions(recorded)
    assert steps and {t.policy_version for t in steps} == {0}, "no random action reached the robot"
    np.testing.assert_allclose(steps[0].action, 0.5)


def test_the_start_key_lets_a_real_robot_explore_before_weights():
    robot = LooksReal(seed=2, max_steps=5)
    with running(robot, lambda _current: None, hold_until_start=True) as (loop, operator, runner, recorded):
        holds = held(robot)
        assert operator.handle_key("t") == "start"
        runner.join(timeout=30)
        assert not runner.is_alive()
    assert robot.calls.index("action") >= holds
    steps = transitions(recorded)
    assert steps and {t.policy_version for t in steps} == {-1}  # the random policy, as the operator asked


def test_without_the_hold_a_robot_explores_from_the_first_step():
    robot = LooksReal(seed=3, max_steps=5)
    with running(robot, lambda _current: None, hold_until_start=False) as (loop, _, runner, recorded):
        runner.join(timeout=30)
        assert not runner.is_alive()
    assert robot.calls[0] == "action"
    assert {t.policy_version for t in transitions(recorded)} == {-1}


def test_a_stop_request_ends_the_wait_without_moving():
    robot = LooksReal(seed=4, max_steps=5)
    with running(robot, lambda _current: None, hold_until_start=True) as (loop, _, runner, recorded):
        held(robot)
        loop.request_stop()
        runner.join(timeout=10)
        assert not runner.is_alive()
    assert robot.count("action") == 0 and not loop.summaries and not recorded
