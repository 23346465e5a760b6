"""Flags for degenerate training runs (benchmarks/run_health.py), from train_metrics.csv as the learner writes it."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from benchmarks.run_health import health_flags

pytestmark = pytest.mark.timeout(60)


def write_metrics(path: Path, **columns) -> Path:
    """A train_metrics.csv with `columns` (equal-length sequences; None = an empty cell)."""
    names = list(columns)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["updates", *names])
        for i, values in enumerate(zip(*columns.values())):
            writer.writerow([25 * (i + 1), *("" if v is None else v for v in values)])
    return path


def moving_q(n: int = 200) -> list[float]:
    return list(-50.0 + 10.0 * np.sin(np.arange(n) / 7.0))


def test_a_healthy_run_has_no_flags(tmp_path):
    path = write_metrics(tmp_path / "m.csv", q_mean=moving_q(), critic_loss=[1.0] * 200,
                         actor_loss=[None if i % 2 else 3.0 for i in range(200)], reward_mean=[-5.0] * 200)
    assert health_flags(path) == []
    assert health_flags(tmp_path / "missing.csv") == []


def test_a_critic_on_one_value_after_its_warm_up_is_flat(tmp_path):
    q = moving_q(20) + [-8.0 + 1e-4 * (i % 3) for i in range(180)]  # the broken CSIL++: the lowest atom
    assert health_flags(write_metrics(tmp_path / "m.csv", q_mean=q)) == ["critic flat at Q = -8"]
    q[-30:] = moving_q(30)  # 85 % of the rows after the warm-up: moving enough
    assert health_flags(write_metrics(tmp_path / "m.csv", q_mean=q)) == []


def test_a_diverged_critic_a_runaway_reward_and_targets_outside_the_support(tmp_path):
    q = moving_q()
    q[150] = -3e4
    flags = health_flags(write_metrics(tmp_path / "m.csv", q_mean=q, reward_mean=[-4.0] * 199 + [-1.2e6],
                                       target_outside_support=[0.0] * 100 + [0.05] * 100))
    assert flags == ["Q diverged (|Q| up to 3e+04)", "reward runaway (batch mean down to -1.2e+06)",
                     "2% of TD targets outside the critic's support"]


def test_non_finite_values_are_flagged_but_not_the_old_every_other_row_nan(tmp_path):
    every_other = ["nan" if i % 2 else 1.0 for i in range(200)]  # runs before 577a398: no actor step, "nan"
    assert health_flags(write_metrics(tmp_path / "m.csv", q_mean=moving_q(), actor_loss=every_other)) == []
    blown_up = [1.0] * 196 + ["nan"] * 4
    flags = health_flags(write_metrics(tmp_path / "m.csv", q_mean=moving_q(), critic_loss=blown_up,
                                       actor_loss=[1.0] * 197 + ["inf"] * 3))
    assert flags == ["non-finite critic_loss"]
