"""`learner --eval-actor`: an evaluator actor runs evaluation blocks beside a training actor that only trains."""

from __future__ import annotations

import pytest

from learner.app import Learner, LearnerConfig, LocalRunConfig

pytestmark = pytest.mark.timeout(240)


def test_the_evaluator_evaluates_published_weights_while_the_training_actor_only_trains(tmp_path, port):
    local = LocalRunConfig("fake", ["--time-scale", "25", "--eval-episodes", "2"], fleet=["fake=1"], eval_actor=True)
    learner = Learner(LearnerConfig(algo="sac", overrides={"hidden_dims": "16,16"}, port=port, run_dir=str(tmp_path),
                                    device="cpu", metrics_port=0, local=local))  # fmt: skip
    learner.start_server()
    actors = learner._start_local_actors()
    try:
        assert [a.actor_id for a in actors] == ["train", "eval", "fake-0"]
        assert learner.spec_ready.wait(120), "no actor said Hello"  # two processes importing torch
        assert learner.stats.wait_for_episodes(2, "train", timeout_s=60)
        assert learner.stats.wait_for_episodes(2, "fake-0", timeout_s=60), "the fleet's actor trains too"
        assert not learner.stats.episodes(actor_id="eval"), "the evaluator acted before any weights arrived"
        learner.loop.publish()  # version 1
        assert learner.stats.wait_for_episodes(2, "eval", timeout_s=60)
    finally:
        for actor in actors:
            actor.stop()
        learner.server.close()
    evaluated = learner.stats.episodes(actor_id="eval")
    assert evaluated and all(p.evaluation and p.policy_version == 1 for p in evaluated)
    assert not any(p.evaluation for p in [*learner.stats.episodes(actor_id="train"),
                                          *learner.stats.episodes(actor_id="fake-0")])
    assert learner.best_policy.best.version == 1 and learner.best_policy.best.episodes == len(evaluated)


@pytest.mark.parametrize("args, stop_window, ok", [
    ([], 20, False),  # the actor's default block of 5 can never show 20 episodes of one version
    (["--eval-episodes", "20"], 20, True),
    (["--time-scale", "4", "--eval-episodes=20"], 20, True),
    (["--eval-episodes=10"], 5, True),
    (["--eval-episodes=10"], 20, False),
])  # fmt: skip
def test_a_stop_rule_the_evaluation_blocks_cannot_satisfy_is_refused_up_front(args, stop_window, ok):
    def make():
        return LocalRunConfig("limo_sim", args, stop_at_success=1.0, stop_window=stop_window)

    if ok:
        make()
    else:
        with pytest.raises(ValueError, match="--eval-episodes"):
            make()
    LocalRunConfig("limo_sim", [], stop_at_success=0.0)  # no stop rule: nothing to check


def test_an_evaluator_without_a_local_robot_is_refused():
    with pytest.raises(ValueError, match="--local-actor"):
        LocalRunConfig("", [], eval_actor=True)
