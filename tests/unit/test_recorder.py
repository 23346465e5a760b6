"""The recorder: what reaches the sender at an episode's end."""

from __future__ import annotations

import numpy as np

from actor.recorder import Recorder
from common.protocol import EpisodeSummary
from common.types import Transition


def observation() -> dict[str, np.ndarray]:
    return {"state": np.zeros(3, np.float32)}


def test_an_episode_stopped_before_its_first_step_sends_nothing():
    """A stop that lands between the reset and the first step must not reach the learner as a 0-step failure."""
    sent: list[object] = []
    recorder = Recorder(sent.append)
    recorder.start_episode(evaluation=False)
    summary = recorder.finish_episode(success=False, outcome_source="stopped")
    assert summary.steps == 0 and sent == []


def test_an_episode_with_a_step_sends_the_step_then_its_summary():
    sent: list[object] = []
    recorder = Recorder(sent.append)
    recorder.start_episode(evaluation=False)
    recorder.record(observation(), np.zeros(2, np.float32), -1.0, False, False, observation(), policy_version=4)
    recorder.finish_episode(success=False, outcome_source="stopped")
    assert [type(item) for item in sent] == [Transition, EpisodeSummary]
    assert sent[0].truncated and sent[1].steps == 1 and sent[1].policy_version == 4
