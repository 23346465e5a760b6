"""The twins' scripted corrector (actor/corrector.py) in the real control loop on the LIMO MuJoCo twin."""

from __future__ import annotations

import numpy as np
import pytest

from actor.app import ActorOptions, make_corrector
from actor.loop import ActorLoop, LoopConfig
from actor.operator import Operator, OperatorConfig
from learner.server import LearnerServer
from robots.fake import FakeRobot
from actor.corrector import CorrectorConfig, ScriptedCorrector
from robots.sim.limo import LimoSim
from tests.conftest import transitions_by_episode, wait_until
from tests.integration.test_policy_programs_actor import Store, run_actor
from tests.operator.conftest import SpinPolicy

pytestmark = pytest.mark.timeout(120)


def run(corrector_config: CorrectorConfig | None, episodes: int, max_steps: int, eval_only: bool = False):
    """`episodes` episodes of SpinPolicy (never reaches the goal) on the twin; (transitions by episode, summaries)."""
    robot = LimoSim(max_steps=max_steps, seed=3)
    operator = Operator(robot.spec, robot.stop, OperatorConfig(console=False))
    corrector = ScriptedCorrector(robot, operator, corrector_config) if corrector_config else None
    policy, recorded = SpinPolicy(), []
    loop = ActorLoop(robot, robot.task, recorded.append, lambda v: policy if v < policy.version else None,
                     LoopConfig(episodes=episodes, eval_only=eval_only, eval_episodes=episodes, time_scale=1000.0),
                     "corrected", operator, before_step=corrector.before_step if corrector else None)  # fmt: skip
    with robot:
        robot.enable()
        summaries = loop.run()
    return transitions_by_episode(recorded), summaries


def test_it_takes_over_after_n_policy_steps_hands_back_after_m_and_each_episode_starts_with_the_policy():
    episodes, summaries = run(CorrectorConfig(after_steps=5, correct_steps=4), episodes=2, max_steps=25)
    expected = [False] * 5 + [True] * 4 + [False] * 5 + [True] * 4 + [False] * 5 + [True] * 2
    spin = SpinPolicy().act({})
    for transitions in episodes:
        assert [t.intervention for t in transitions] == expected
        for t in transitions:  # the policy's steps are its own; the corrector's are the expert's, not the policy's
            assert np.allclose(t.action, spin) != t.intervention
    assert [s.interventions for s in summaries] == [10, 10]


def test_the_expert_it_drives_through_the_operator_finishes_episodes_the_policy_alone_never_does():
    _, alone = run(None, episodes=3, max_steps=100)
    _, corrected = run(CorrectorConfig(after_steps=1, correct_steps=0), episodes=3, max_steps=100)
    assert not any(s.success for s in alone)
    assert {s.end_reason for s in alone} == {"step_limit"}  # spinning in place ends nothing but the clock
    assert sum(s.success for s in corrected) >= 2, [(s.steps, s.outcome_source) for s in corrected]
    assert all((s.end_reason == "success") == s.success for s in corrected)  # the twin's task says why it ended


def test_evaluation_episodes_are_never_corrected():
    episodes, summaries = run(CorrectorConfig(after_steps=2, correct_steps=3), episodes=2, max_steps=12,
                              eval_only=True)  # fmt: skip
    assert all(t.evaluation and not t.intervention for ts in episodes for t in ts)
    assert [s.interventions for s in summaries] == [0, 0]


def test_it_refuses_a_robot_without_a_twin_scene_or_an_operator_without_an_intervene_key():
    fake = FakeRobot()
    with pytest.raises(ValueError, match="needs a simulated twin"):
        make_corrector(ActorOptions("fake", "127.0.0.1:1", "a", correct_after=5), fake,
                       Operator(fake.spec, fake.stop))  # fmt: skip
    twin = LimoSim()
    unbound = Operator(twin.spec, twin.stop, OperatorConfig(keymap={"intervene": ""}))
    with pytest.raises(ValueError, match="intervene key"):
        ScriptedCorrector(twin, unbound, CorrectorConfig(after_steps=5))
    with pytest.raises(ValueError, match="not --record-demo or --policy"):
        make_corrector(ActorOptions("limo_sim", "127.0.0.1:1", "a", policy_file="p.npz", correct_after=5), twin,
                       Operator(twin.spec, twin.stop))  # fmt: skip
    assert make_corrector(ActorOptions("limo_sim", "127.0.0.1:1", "a"), twin, Operator(twin.spec, twin.stop)) is None


def test_an_actor_process_with_correct_after_sends_the_corrected_steps_as_interventions(port):
    spec = LimoSim().spec
    store = Store()
    server = LearnerServer("127.0.0.1", port, spec, store).start()
    try:
        result = run_actor("--learner", f"127.0.0.1:{port}", "--episodes", "1", "-o", "max_steps=12",
                           "--correct-after", "4", "--correct-for", "3")  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
        columns = wait_until(lambda: (c := store.columns()) and len(c["step"]) == 12 and c, what="the episode")
    finally:
        server.close()
    flags = columns["intervention"][np.argsort(columns["step"])].astype(bool).tolist()
    assert flags == [False] * 4 + [True] * 3 + [False] * 4 + [True]
