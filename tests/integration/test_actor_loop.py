"""The real control loop with FakeRobot against a real learner server: versions, episodes, stops."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from actor.loop import ActorLoop, LoopConfig
from actor.policy import ActingPolicy
from actor.sender import Sender
from actor.weights import WeightClient
from common.types import Transition
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
    """FakeTask's goal disc is out of reach in 5 steps (start within 0.05 of the origin, at most 0.02 per step
    toward a disc 0.2 away), so every episode must end by the step limit: truncated at step 4, never terminated."""
    store = Store()
    server = LearnerServer("127.0.0.1", port, SPEC, store).start()
    sender = Sender("127.0.0.1", port, hello("limit")).start()
    robot = FakeRobot(seed=2, max_steps=5)
    loop = ActorLoop(
        robot, robot.task, sender.submit, lambda _v: None, LoopConfig(episodes=3, time_scale=50.0), "limit"
    )
    with robot:
        robot.enable()
        summaries = loop.run()
    assert sender.close(flush_timeout_s=10)
    server.close()
    columns = store.columns["limit"]
    terminated = np.concatenate([c["terminated"] for c in columns])
    truncated = np.concatenate([c["truncated"] for c in columns])
    steps = np.concatenate([c["step"] for c in columns])
    assert [(s.steps, s.outcome_source, s.end_reason, s.success) for s in summaries] == [
        (5, "step_limit", "step_limit", False)] * 3  # fmt: skip
    assert steps.tolist() == [0, 1, 2, 3, 4] * 3
    assert not terminated.any(), "a step-limit end is a truncation, not a termination"
    assert truncated.tolist() == [False, False, False, False, True] * 3


class _Versioned(ActingPolicy):
    """A deterministic policy standing for one weights version."""

    def __init__(self, version: int) -> None:
        self.version = version

    def act(self, _observation, deterministic: bool = False) -> np.ndarray:
        return np.full(SPEC.action.shape, 0.1, np.float32)


def test_an_evaluation_block_measures_one_policy_version_while_training_takes_every_new_one():
    offered = iter(range(10**6))  # a learner publishing faster than the robot steps: always a newer version

    def take_newer(_current: int) -> _Versioned:
        return _Versioned(next(offered))

    recorded = []
    robot = FakeRobot(seed=3, max_steps=6)
    config = LoopConfig(episodes=12, eval_every=2, eval_episodes=3, time_scale=50.0)
    loop = ActorLoop(robot, robot.task, recorded.append, take_newer, config, "eval")
    with robot:
        robot.enable()
        summaries = loop.run()
    assert [s.evaluation for s in summaries] == [False, False, True, True, True] * 2 + [False, False]
    by_episode: dict[int, list] = {}
    for transition in (t for t in recorded if isinstance(t, Transition)):  # the sink also gets summaries
        by_episode.setdefault(transition.episode, []).append(transition)
    training = [ts for ts in by_episode.values() if not ts[0].evaluation]
    assert all(len({t.policy_version for t in ts}) == len(ts) for ts in training), "training takes every version"
    blocks = [summaries[2:5], summaries[7:10]]
    for block in blocks:
        assert len({s.policy_version for s in block}) == 1, "a block is one policy"
    evaluated = [ts for ts in by_episode.values() if ts[0].evaluation]
    assert all(len({t.policy_version for t in ts}) == 1 for ts in evaluated)
    assert blocks[1][0].policy_version > blocks[0][0].policy_version


def test_an_evaluation_only_actor_runs_blocks_back_to_back_each_of_one_version():
    offered = iter(range(10**6))  # always a newer version on offer

    def take_newer(_current: int) -> _Versioned:
        return _Versioned(next(offered))

    robot = FakeRobot(seed=5, max_steps=4)
    config = LoopConfig(episodes=6, eval_episodes=3, eval_only=True, time_scale=50.0)
    loop = ActorLoop(robot, robot.task, lambda _item: None, take_newer, config, "eval")
    with robot:
        robot.enable()
        summaries = loop.run()
    versions = [s.policy_version for s in summaries]
    assert all(s.evaluation for s in summaries) and len(versions) == 6
    assert versions[0] == versions[1] == versions[2] < versions[3] == versions[4] == versions[5]


def test_an_evaluation_only_actor_waits_for_weights_instead_of_evaluating_the_random_policy():
    published, asked, recorded = threading.Event(), [], []

    def take_newer(current: int):
        asked.append(current)
        return _Versioned(7) if published.is_set() and current < 7 else None

    robot = FakeRobot(seed=4, max_steps=4)
    loop = ActorLoop(robot, robot.task, recorded.append, take_newer, LoopConfig(episodes=2, eval_only=True,
                     time_scale=50.0), "final-eval")  # fmt: skip
    with robot:
        robot.enable()
        runner = threading.Thread(target=loop.run)
        runner.start()
        wait_until(lambda: len(asked) >= 3, what="the actor asking again for weights")  # 2 episodes ask twice
        assert not recorded and not loop.summaries, "it acted before any weights arrived"
        published.set()
        runner.join(timeout=10)
    assert [s.policy_version for s in loop.summaries] == [7, 7]
    assert {t.policy_version for t in recorded if isinstance(t, Transition)} == {7}
