"""The learner side of interventions: flagged transitions also feed the demo buffer (HIL-SERL practice)."""

from __future__ import annotations

import numpy as np
import pytest

from common.episodes import transitions_to_columns
from common.types import Transition
from learner.app import Learner, LearnerConfig
from robots.fake import FakeRobot

pytestmark = pytest.mark.timeout(60)


def batch(spec, flags: list[bool]) -> dict[str, np.ndarray]:
    state = np.zeros(4, np.float32)
    transitions = [Transition({"state": state + i}, np.full(2, 0.5 if f else 0.1, np.float32), 0.0, False, False,
                              {"state": state + i + 1}, episode=1, step=i, intervention=f)
                   for i, f in enumerate(flags)]  # fmt: skip
    return transitions_to_columns(transitions, spec)


@pytest.mark.parametrize("mode, demo_ratio, expected_demo_rows",
                         [("auto", "0.5", 2), ("auto", "0", 0), ("off", "0.5", 0), ("on", "0", 2)])
def test_intervention_rows_are_copied_to_the_demo_buffer_when_asked(tmp_path, mode, demo_ratio, expected_demo_rows):
    spec = FakeRobot().spec
    learner = Learner(LearnerConfig(algo="sac", overrides={"demo_ratio": demo_ratio}, run_dir=str(tmp_path),
                                    metrics_port=0, interventions_to_demo=mode))  # fmt: skip
    learner.build(spec)
    learner.store("arm-1", batch(spec, [False, True, False, True]))
    assert learner.replay.online_size == 4, "every transition is online experience"
    assert learner.replay.demo_size == expected_demo_rows
    if expected_demo_rows and float(demo_ratio) > 0:
        demo = learner.replay.sample(learner.loop.algorithm.sampling, np.random.default_rng(0))
        assert np.allclose(demo.action[demo.is_demo == 1], 0.5), "only the operator's actions went to the demo buffer"
