"""Flags for a degenerate training run, read from its train_metrics.csv.

A run whose critic cannot move its actor still scores whatever its starting policy scores: CSIL++ sat in three
tables at 25-52 % with its critic pinned to the lowest atom and its learned reward running to -1e6, and only
reading the CSVs showed it. These checks put such a run's state beside its success figures, for every algorithm:

- a non-finite loss or value, in NONFINITE_RUN or more rows in a row (runs before 577a398 wrote "nan" for the
  actor's metrics in every row without an actor step: up to policy_delay - 1 <= 3 rows in a row);
- a flat critic: batch-mean Q the same (to 0.1 %) in at least 90 % of the rows after the first tenth. Pinned to
  a bound of its support it gives the actor no gradient (CSIL++ above); flat at the return of never succeeding
  (-100 for the shaped reward) it has learned the policy never reaches the goal, which also gives no gradient;
- Q diverged: |batch-mean Q| past 1e4 (no reward Tandem trains on has returns near that: the shaped -1/0 reward
  is bounded by 1 / (1 - gamma) = 100, CSIL's coherent reward by its critic's support, ~645);
- a learned reward running away: a batch-mean reward below -100 per step (CSIL's refinement clips at -5;
  healthy runs stay above -20);
- TD targets outside a categorical critic's support in more than 1 % of a batch on average.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

FLAT_SHARE = 0.9  # share of rows at one value that makes a critic flat
FLAT_TOLERANCE = 1e-3  # relative: rows within 0.1 % of the median count as "at one value"
WARM_UP_SHARE = 0.1  # the first rows (pretraining values, the first updates) are left out of the flat check
Q_DIVERGED = 1e4
REWARD_RUNAWAY = -100.0
OUTSIDE_SUPPORT = 0.01
FINITE_COLUMNS = ("q_mean", "target_q_mean", "critic_loss", "actor_loss")
NONFINITE_RUN = 4


def health_flags(train_csv: Path) -> list[str]:
    """What is wrong with a run, one short phrase each; [] for a healthy run or one without train_metrics.csv."""
    columns = _read_columns(train_csv)
    if not columns:
        return []
    flags = [f"non-finite {name}" for name in FINITE_COLUMNS if longest_nonfinite(columns.get(name)) >= NONFINITE_RUN]
    q = columns.get("q_mean", np.array([]))
    q = q[np.isfinite(q)]
    if len(q) and np.abs(q).max() > Q_DIVERGED:
        flags.append(f"Q diverged (|Q| up to {np.abs(q).max():.3g})")
    flat = flat_value(q)
    if flat is not None:
        flags.append(f"critic flat at Q = {flat:.4g}")
    reward = columns.get("reward_mean", np.array([]))
    if len(reward) and np.nanmin(reward) < REWARD_RUNAWAY:
        flags.append(f"reward runaway (batch mean down to {np.nanmin(reward):.3g})")
    outside = columns.get("target_outside_support", np.array([]))
    if len(outside) and np.nanmean(outside) > OUTSIDE_SUPPORT:
        flags.append(f"{np.nanmean(outside):.0%} of TD targets outside the critic's support")
    return flags


def longest_nonfinite(values: np.ndarray | None) -> int:
    """The most consecutive non-finite values in a column (0 for a missing column)."""
    longest = current = 0
    for finite in np.isfinite(values) if values is not None else ():
        current = 0 if finite else current + 1
        longest = max(longest, current)
    return longest


def flat_value(q: np.ndarray) -> float | None:
    """The value a critic's batch-mean Q sits at in >= FLAT_SHARE of the rows after the warm-up, else None."""
    q = q[int(len(q) * WARM_UP_SHARE):]
    if len(q) < 10:
        return None
    median = float(np.median(q))
    near = np.abs(q - median) <= FLAT_TOLERANCE * max(1.0, abs(median))
    return median if near.mean() >= FLAT_SHARE else None


def _read_columns(train_csv: Path) -> dict[str, np.ndarray]:
    """Numeric columns of train_metrics.csv; a cell left empty (a metric not computed in that update) is skipped,
    a "nan" or "inf" one kept, so the finite check sees it."""
    if not train_csv.exists():
        return {}
    values: dict[str, list[float]] = {}
    with train_csv.open() as handle:
        for row in csv.DictReader(handle):
            for name, cell in row.items():
                if cell not in (None, ""):
                    values.setdefault(name, []).append(_float(cell))
    return {name: np.array(v, dtype=np.float64) for name, v in values.items()}


def _float(cell: str) -> float:
    try:
        return float(cell)
    except ValueError:
        return math.nan
