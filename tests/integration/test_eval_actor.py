"""`learner --eval-actor`: an evaluator actor runs evaluation blocks beside a training actor that only trains."""

from __future__ import annotations

import pytest

from learner.app import Learner, LearnerConfig, LocalRunConfig

pytestmark = pytest.mark.timeout(120)


def test_the_evaluator_evaluates_published_weights_while_the_training_actor_only_trains(tmp_path, port):
    local = LocalRunConfig("fake", ["--time-scale", "25", "--eval-episodes", "2"], eval_actor=True)
    learner = Learner(LearnerConfig(algo="sac", overrides={"hidden_dims": "16,16"}, port=port, run_dir=str(tmp_path),
                                    device="cpu", metrics_port=0, local=local))  # fmt: skip
    learner.start_server()
    actors = learner._start_local_actors()
    try:
        assert [a.actor_id for a in actors] == ["train", "eval"]
        assert learner.spec_ready.wait(60), "no actor said Hello"
        assert learner.stats.wait_for_episodes(2, "train", timeout_s=60)
        assert not learner.stats.episodes(actor_id="eval"), "the evaluator acted before any weights arrived"
        learner.loop.publish()  # version 1
        assert learner.stats.wait_for_episodes(2, "eval", timeout_s=60)
    finally:
        for actor in actors:
            actor.stop()
        learner.server.close()
    evaluated = learner.stats.episodes(actor_id="eval")
    assert evaluated and all(p.evaluation and p.policy_version == 1 for p in evaluated)
    assert not any(p.evaluation for p in learner.stats.episodes(actor_id="train"))
    assert learner.best_policy.best.version == 1 and learner.best_policy.best.episodes == len(evaluated)
