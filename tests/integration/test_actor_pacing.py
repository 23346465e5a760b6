"""Lockstep pacing (`actor --pace-utd R`): the real control loop, sender and learner server over ZeroMQ.

The learner server's update count is the test's to set, so each test decides when the learner "updates";
the actor must never get more than (updates + slack) / R transitions (plus the step under way and the
transition the recorder holds back) ahead, and must resume when a re-ack brings a higher count.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import numpy as np
import pytest

from actor.app import ActorOptions, _stop_now, make_pacer
from actor.loop import ActorLoop, LoopConfig
from actor.operator import Operator
from actor.pacing import Pacer, counting_submit, spaced_intake, stopping_wakes
from actor.sender import Sender, SenderConfig
from actor.weights import WeightClient
from common.protocol import EpisodeSummary
from common.types import Transition
from learner.server import LearnerServer
from robots.fake import FakeRobot
from robots.limo import make_limo_driver_spec
from tests.conftest import wait_until
from tests.integration.test_transport import SPEC, Store, hello, make_weights

pytestmark = pytest.mark.timeout(90)

RATIO, SLACK = 2.0, 10


class PacedActor:
    """A fake robot's control loop wired as `actor --pace-utd` wires it, against a real LearnerServer."""

    def __init__(self, port: int, learner_updates: list[int], ratio: float = RATIO, slack: int = SLACK) -> None:
        self.store = Store()
        self.server = LearnerServer("127.0.0.1", port, SPEC, self.store, updates=lambda: learner_updates[0]).start()
        self.pacer = Pacer(ratio, slack)
        self.sender = Sender("127.0.0.1", port, hello("paced"), SenderConfig(batch_size=4, flush_interval_s=0.05),
                             on_learner_updates=self.pacer.on_learner_updates).start()  # fmt: skip
        self.robot = FakeRobot(seed=3, max_steps=7)
        self.operator = Operator(SPEC, stopping_wakes(self.robot.stop, self.pacer))
        self.submitted = 0  # transitions the loop handed to the sender (the pacer's count can absorb the first few)
        submit = counting_submit(self._submit, self.pacer, eval_data=True)
        self.loop = ActorLoop(self.robot, self.robot.task, submit, lambda _v: None, LoopConfig(time_scale=50.0),
                              "paced", self.operator, before_training_step=self.pacer.wait_turn)  # fmt: skip
        self.runner = threading.Thread(target=self._run)

    def _run(self) -> None:
        with self.robot:
            self.robot.enable()
            self.loop.run()

    def _submit(self, item: object) -> bool:
        accepted = self.sender.submit(item)
        self.submitted += accepted and isinstance(item, Transition)
        return accepted

    def stored(self) -> int:
        return len(self.store.markers("paced"))

    def waiting_with_everything_stored(self) -> bool:
        """The loop waits for the learner, rightly (not just woken), and all it sent is in the learner's replay."""
        return self.pacer.waiting and self.pacer.ahead() and self.stored() == self.pacer.sent

    def close(self) -> None:
        _stop_now(self.loop, self.robot, self.pacer)  # what Ctrl-C does
        self.runner.join(timeout=10)
        self.sender.close(flush_timeout_s=5)
        self.server.close()


def allowed(updates: int, ratio: float = RATIO, slack: int = SLACK) -> int:
    """Transitions a paced actor may have sent when the learner reports `updates`."""
    return int((updates + slack) // ratio) + 2  # + the step under way and the held-back transition


def test_the_actor_never_runs_ahead_of_the_learner_and_resumes_when_its_update_count_advances(port):
    learner_updates = [0]
    actor = PacedActor(port, learner_updates)
    actor.runner.start()
    try:
        for updates in (0, 7, 40):  # a learner that has not started, then two advances (told by re-acks only)
            learner_updates[0] = updates
            wait_until(lambda: actor.pacer.learner_updates == updates and actor.waiting_with_everything_stored(),
                       what=f"the actor waiting at {updates} learner updates")  # fmt: skip
            assert (updates + SLACK) / RATIO <= actor.stored() <= allowed(updates), \
                "went as far as the learner allows, and no further"  # fmt: skip
        assert actor.runner.is_alive() and actor.pacer.waits >= 3
    finally:
        actor.close()
    assert not actor.runner.is_alive(), "a stop ends the wait"


def test_an_actor_joining_a_learner_that_has_trained_resumes_lockstep_instead_of_running_ahead(port):
    """A resumed learner at 400 updates: a fresh paced actor counts from 400 / R, so it sends only the slack's
    worth before waiting (a count from 0 would send ~200 transitions unpaced)."""
    learner_updates = [400]
    actor = PacedActor(port, learner_updates)
    actor.runner.start()
    try:
        wait_until(lambda: actor.pacer.waiting and actor.pacer.ahead(), what="the actor waiting for the learner")
        assert actor.stored() <= SLACK / RATIO + 2 + 4, "more than the slack (+ a 4-transition first batch) went out"
        start = 400 // RATIO  # where its count began
        learner_updates[0] = 440
        # Transitions sent before the first ack set the count to `start` are absorbed in it (at most what a count
        # of 0 updates allows), so the count after `start` is compared with the bound, and what was sent with what
        # was stored.
        wait_until(lambda: actor.pacer.learner_updates == 440 and actor.pacer.waiting and actor.pacer.ahead()
                   and actor.stored() == actor.submitted, 30, what="the actor at 440 updates")  # fmt: skip
        assert (440 + SLACK) / RATIO - start <= actor.pacer.sent - start <= allowed(440) - start, \
            "20 more steps, no further"  # fmt: skip
        assert actor.submitted - (actor.pacer.sent - start) <= allowed(0), "unpaced before the first ack"
    finally:
        actor.close()


def test_an_e_stop_ends_the_wait_and_the_episode_while_the_learner_never_updates(port):
    actor = PacedActor(port, [0])
    actor.runner.start()
    try:
        wait_until(actor.waiting_with_everything_stored, what="the actor waiting for a learner that never updates")
        actor.operator.handle_key(actor.operator.keymap.bindings["estop"][0])
        wait_until(lambda: any(s.outcome_source == "operator" for s in actor.loop.summaries),
                   what="the e-stopped episode's end")  # fmt: skip
        assert actor.operator.estopped and actor.stored() <= allowed(0)
    finally:
        actor.close()
    assert not actor.runner.is_alive()


def test_an_evaluator_starts_its_blocks_on_a_grid_of_learner_updates_with_the_newest_policy(port):
    learner_updates, every = [0], 10
    server = LearnerServer("127.0.0.1", port, SPEC, Store(), updates=lambda: learner_updates[0]).start()
    client = WeightClient("127.0.0.1", port, SPEC).start()
    pacer = Pacer(0.0, 0, block_every=every)
    sender = Sender("127.0.0.1", port, hello("eval"), on_weights=client.offer,
                    on_learner_updates=pacer.on_learner_updates).start()  # fmt: skip
    robot = FakeRobot(seed=4, max_steps=5)
    loop = ActorLoop(robot, robot.task, sender.submit, spaced_intake(client.take_newer, pacer, every),
                     LoopConfig(eval_only=True, eval_episodes=2, time_scale=50.0), "eval")  # fmt: skip

    def run() -> None:
        with robot:
            robot.enable()
            loop.run()

    runner = threading.Thread(target=run)
    runner.start()
    try:
        server.publish(make_weights(1))
        for blocks, (updates, version) in enumerate(((15, 2), (20, 3)), start=1):
            wait_until(lambda: len(loop.summaries) == 2 * blocks and pacer.waiting, what=f"block {blocks} done")
            server.publish(make_weights(version))  # a newer policy alone does not start a block
            wait_until(lambda: client.latest_version == version, what=f"weights v{version} at the actor")
            learner_updates[0] = updates  # the grid point (10, then 20) reached: the next block takes v{version}
            wait_until(lambda: len(loop.summaries) == 2 * blocks + 2, what=f"block {blocks + 1}")
            assert [s.policy_version for s in loop.summaries[-2:]] == [version, version]
            assert pacer.learner_updates == updates
        assert [s.policy_version for s in loop.summaries] == [1, 1, 2, 2, 3, 3]
    finally:
        _stop_now(loop, robot, pacer)
        runner.join(timeout=10)
        sender.close(flush_timeout_s=5)
        client.close()
        server.close()
    assert not runner.is_alive()


def test_pacing_is_refused_for_a_real_robot_and_bad_settings():
    options = ActorOptions(robot="limo", learner="127.0.0.1:5555", actor_id="limo", pace_utd=2.0)
    with pytest.raises(ValueError, match="only for simulated robots"):
        make_pacer(options, make_limo_driver_spec("proprio"), max_episode_steps=100)
    for ratio, slack in ((-1.0, -1), (2.0, -5)):
        with pytest.raises(ValueError, match="pace-utd must be > 0"):
            make_pacer(ActorOptions("fake", "x:1", "f", pace_utd=ratio, pace_slack=slack), SPEC, 20)
    default = make_pacer(ActorOptions("fake", "x:1", "f", pace_utd=2.0), SPEC, 20)
    assert default.slack == 2 * (200 + 20 + 32), "covers learning_starts, an episode and a batch"
    assert make_pacer(ActorOptions("fake", "x:1", "f"), SPEC, 20) is None
    evaluator = ActorOptions("fake", "x:1", "f", loop=LoopConfig(eval_only=True), pace_utd=2.0)
    assert make_pacer(evaluator, SPEC, 20) is None, "evaluation-only actors are not paced"
    evaluator.eval_every_updates = 500
    assert make_pacer(evaluator, SPEC, 20).block_every == 500, "an open-ended evaluator's blocks are spaced"
    evaluator.loop = LoopConfig(eval_only=True, episodes=20)
    assert make_pacer(evaluator, SPEC, 20) is None, "a final evaluation of N episodes never waits"


def test_without_evaluation_data_only_training_transitions_are_sent_and_counted():
    sent, pacer = [], Pacer(1.0, 0)
    submit = counting_submit(lambda item: sent.append(item) or True, pacer, eval_data=False)
    observation = {"state": np.zeros(4, np.float32)}
    items = [Transition(observation, np.zeros(2, np.float32), 0.0, False, False, observation, evaluation=evaluation)
             for evaluation in (False, True, False)]  # fmt: skip
    summary = EpisodeSummary(episode=1, steps=3, episode_return=0.0, success=False, evaluation=True,
                             outcome_source="task", policy_version=1)
    for item in [*items, summary]:
        assert submit(item)
    assert sent == [items[0], items[2], summary] and pacer.sent == 2


def test_a_paced_learner_run_makes_its_updates_from_matched_env_steps(tmp_path):
    """The real learner process with a paced local actor and an evaluator whose data stays out of replay:
    the run stops at --max-updates having received between max_updates / R and (max_updates + slack) / R
    training transitions."""
    max_updates, ratio, slack = 120, 2, 60
    command = [
        sys.executable, "-m", "learner", "--algo", "sac", "--run-dir", str(tmp_path), "--port", "0",
        "--metrics-port", "0", "--threads", "1", "--utd", str(ratio), "--learning-starts", "20",
        "--max-updates", str(max_updates), "--final-eval", "0", "--set", "hidden_dims=16,16", "--set",
        "batch_size=16", "--local-actor", "fake", "--eval-actor", "--actor-arg=--time-scale=25",
        f"--actor-arg=--pace-utd={ratio}", f"--actor-arg=--pace-slack={slack}", "--actor-arg=--no-eval-data",
        "--actor-arg=--eval-episodes=2",
    ]  # fmt: skip
    finished = subprocess.run(command, capture_output=True, text=True, timeout=75)
    assert finished.returncode == 0, finished.stderr[-2000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["updates"] == max_updates
    assert max_updates / ratio <= summary["env_steps"] <= allowed(max_updates, ratio, slack)
    assert "paced" in (tmp_path / "logs" / "actor-train.log").read_text()
