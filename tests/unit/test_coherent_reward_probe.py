"""The coherent-reward probe's figures: per-episode means split by success, and their AUC."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.coherent_reward_probe import auc, episode_means

pytestmark = pytest.mark.timeout(30)


def test_episodes_split_by_success_and_averaged_per_step():
    episode = np.array([7, 7, 7, 8, 8, 9])
    succeeded = np.array([False, False, True, False, False, False])  # 7 succeeded; 8 and 9 failed
    reward = np.array([1.0, 2.0, 3.0, -1.0, 0.0, 5.0])
    success, failure = episode_means(reward, episode, succeeded)
    assert success.tolist() == [2.0] and failure.tolist() == [-0.5, 5.0]


def test_the_auc_is_the_chance_a_success_outscores_a_failure_with_ties_half():
    assert auc([2.0, 3.0], [0.0, 1.0]) == 1.0
    assert auc([0.0], [1.0]) == 0.0
    assert auc([1.0, 0.0], [1.0, 0.5]) == pytest.approx((0.5 + 1 + 0 + 0) / 4)
    assert np.isnan(auc([], [1.0]))
