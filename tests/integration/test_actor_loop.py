"""The real control loop with FakeRobot against a real learner server: versions, episodes, stops."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from actor.loop import ActorLoop, LoopConfig
from actor.sender import Sender
from actor.weights import WeightClient
from learner.server import LearnerServer
from robots.fake import FakeRobot
from tests.conftest import wait_until
from tests.integration.test_transport import SPEC, Store, hello, make_weights

pytestmark = pytest.mark.timeout(60)


def test_transitions_after_a_weight_swap_carry_the_new_version(port):
    store, summaries = Store(), []
    server = LearnerServer("127.0.0.1", port, SPEC, store, on_episode=lambda _a, s: summaries.append(s)).start()
    client = WeightClient("127.0.0.1", port, SPEC).start()
    sender = Sender("127.0.0.1", port, hello("loop"), on_weights=client.offer).start()
    robot = FakeRobot(seed=1)
    loop = ActorLoop(robot, robot.task, sender.submit, client.take_newer, LoopConfig(time_scale=20.0), "loop")
    with robot:
        robot.enable()
        runner = threading.Thread(target=loop.run)
        runner.start()
        try:
            wait_until(lambda: len(store.markers("loop")) >= 40, what="random-policy transitions")
            server.publish(make_weights(1))
            wait_until(lambda: any(np.any(c["policy_version"] == 1) for c in store.columns.get("loop", [])),
                       what="a transition acted by weights v1")  # fmt: skip
        finally:
            loop.request_stop()
            runner.join(timeout=10)
    assert sender.close(flush_timeout_s=10)
    client.close()
    server.close()
    versions = np.concatenate([c["policy_version"] for c in store.columns["loop"]])
    assert versions[0] == -1 and versions[-1] == 1
    assert np.all(np.diff(versions) >= 0), "a transition went back to an older policy"
    episodes = np.concatenate([c["episode"] for c in store.columns["loop"]])
    steps = np.concatenate([c["step"] for c in store.columns["loop"]])
    for episode in np.unique(episodes):
        assert steps[episodes == episode].tolist() == list(range(int(np.sum(episodes == episode))))
    assert summaries and all(s.steps >= 1 for s in summaries)


def test_the_episode_ends_on_the_step_limit_with_truncation_not_termination(port):
    store = Store()
    server = LearnerServer("127.0.0.1", port, SPEC, store).start()
    sender = Sender("127.0.0.1", port, hello("limit")).start()
    robot = FakeRobot(seed=2, max_steps=5)
    loop = ActorLoop(robot, robot.task, sender.submit, lambda _v: None, LoopConfig(episodes=3, time_scale=50.0), "limit")
    with robot:
        robot.enable()
        summaries = loop.run()
    assert sender.close(flush_timeout_s=10)
    server.close()
    columns = store.columns["limit"]
    terminated = np.concatenate([c["terminated"] for c in columns])
    truncated = np.concatenate([c["truncated"] for c in columns])
    assert len(summaries) == 3
    for summary in summaries:
        assert summary.steps <= 5
        assert summary.outcome_source in ("task", "step_limit")
    assert int(truncated.sum() + terminated.sum()) == 3  # exactly one end per episode
    assert not np.any(truncated & terminated)
