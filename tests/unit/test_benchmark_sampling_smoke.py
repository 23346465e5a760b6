"""benchmarks/sampling.py: its replay looks like a learner's, and a quick run prints the ratio table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks import sampling as bench
from learner.replay import SamplingSpec

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(120)


def test_the_benchmark_replay_has_wrapped_interleaved_episodes_and_demos():
    buffer = bench.fill(bench.make_spec("state"), 3000, np.random.default_rng(0))
    assert buffer.online_size == 3000 and buffer.demo_size >= 750
    batch = buffer.sample(SamplingSpec(256, horizon=bench.HORIZON), np.random.default_rng(1))
    valid = batch.extras["valid"].sum(axis=1)
    # Mostly full sequences, some cut by an episode's end: the sampler does real link-following work.
    assert (valid == bench.HORIZON).mean() > 0.8 and (valid < bench.HORIZON).any()
    # Four actors' batches interleave: consecutive ring slots often hold different episodes.
    episodes = buffer._online.rows.arrays["episode"]
    assert (np.diff(episodes) != 0).sum() > 3000 / bench.BATCH_ROWS / 2


def test_images_are_uint8_one_channel_as_the_robots_send():
    spec = bench.make_spec("image128")
    assert spec.observation["image"].shape == (128, 128, 1) and spec.observation["image"].dtype == "uint8"


def test_a_quick_run_prints_the_ratio_beside_the_baseline():
    result = subprocess.run([sys.executable, "-m", "benchmarks.sampling", "--quick", "--settings", "state,image64"],
                            cwd=ROOT, capture_output=True, text=True, timeout=100)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert "transitions (baseline)" in out and out.count(f"sequences h={bench.HORIZON} / transitions = ") == 2
    assert "error" not in out.lower(), out
