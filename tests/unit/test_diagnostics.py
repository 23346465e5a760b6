"""The paper's diagnostics: OOD action ratio (Fig. 2) and Q-value oscillation."""

from __future__ import annotations

import math

import pytest
import torch

from learner.diagnostics import QOscillation, ood_action_ratio


def test_ood_ratio_counts_actions_farther_than_the_threshold_from_every_demo_action():
    demo = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    # RMS distances to the nearest demo action: 0.1, 0.29, 0.31, 0.5 -> two of four are out of distribution.
    policy = torch.tensor([[0.1, 0.1], [0.71, 0.71], [0.31, 0.31], [0.5, 0.5]])
    assert ood_action_ratio(policy, demo, threshold=0.3) == pytest.approx(0.5)


def test_ood_ratio_is_undefined_without_demo_actions():
    assert math.isnan(ood_action_ratio(torch.zeros(4, 2), torch.zeros(0, 2)))


def test_q_oscillation_is_the_windowed_standard_deviation():
    oscillation = QOscillation(window=3)
    values = [oscillation.add(v) for v in (1.0, 1.0, 4.0, 4.0, 4.0)]
    assert values[:2] == [0.0, 0.0]
    assert values[2] == pytest.approx(torch.tensor([1.0, 1.0, 4.0]).std().item())
    assert values[4] == 0.0  # the window has forgotten the jump


def test_on_a_sequence_batch_the_policy_is_compared_with_each_sequences_first_action():
    """ALOE samples h-step sequences: its first planned action is measured against the demo's first step."""
    from types import SimpleNamespace

    from common.types import Batch
    from learner.diagnostics import Diagnostics

    action = torch.zeros(2, 3, 1)
    action[:, 1:] = 5.0  # later steps far from the policy: only the first step may be compared
    batch = Batch({"state": torch.zeros(2, 1)}, action, torch.zeros(2, 3), torch.zeros(2, 3), {}, torch.ones(2))
    algorithm = SimpleNamespace(mean_action=lambda observation: torch.full((2, 1), 0.1))
    assert Diagnostics(ood_every=1).measure(algorithm, batch, {})["ood_action_ratio"] == 0.0
    algorithm.mean_action = lambda observation: torch.full((2, 1), 1.0)
    assert Diagnostics(ood_every=1).measure(algorithm, batch, {})["ood_action_ratio"] == 1.0
