"""benchmarks/transport.py: its payload is what it claims, and a tiny run finishes and prints both tables."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks import transport_payload as bt
from benchmarks.transport_procs import window_delta
from common.codec import decode, encode
from common.protocol import TransitionBatch
from common.types import pack_transitions, unpack_transitions

ROOT = Path(__file__).resolve().parents[2]


def test_consecutive_transitions_share_the_observation_object_so_each_frame_travels_once():
    frames, actions = bt.make_pool()
    batch = [bt.make_transition(i, frames, actions) for i in range(100)]
    assert all(a.next_observation is b.observation for a, b in zip(batch, batch[1:]))
    arrays = pack_transitions(batch)
    assert arrays["rows/image"].shape == (101, *bt.OBS_SHAPE)
    columns = unpack_transitions(decode(encode(TransitionBatch(1, arrays))).arrays, bt.bench_spec())
    assert np.array_equal(columns["next_observation/image"][41], batch[42].observation["image"])
    assert columns["action"].shape == (100, bt.ACTION_DIM)


def test_the_baseline_carries_the_same_payload_per_transition():
    assert bt.BASELINE_BYTES_PER_TRANSITION == 2 * 128 * 128 + 7 * 4 + 4 + 1


def test_weight_tensors_sum_to_the_requested_size():
    assert sum(a.size for a in bt.weight_tensors(1_000_000).values()) == 1_000_000


def test_window_delta_interpolates_between_samples():
    samples = [(0.0, 0, 0.0), (1.0, 100, 0.5), (2.0, 300, 1.0)]
    assert window_delta(samples, 0.5, 1.5, 1) == pytest.approx(150.0)
    with pytest.raises(RuntimeError):
        window_delta(samples, 0.5, 3.0, 1)


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_a_tiny_run_prints_both_tables():
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.transport", "--smoke", "--no-progress", "--sizes", "4"],
        cwd=ROOT, capture_output=True, text=True, timeout=200,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert "1. Transitions/s" in out and "2. Weight push latency" in out
    assert "error" not in out.lower(), out
    # the encrypted path ran and delivered (a CURVE handshake the learner refused would show as "error")
    curve_rows = [line for line in out.splitlines() if line.startswith("  tandem-curve")]
    assert sum("transitions/s" in line for line in curve_rows) == 2, out  # 1 and 100 per batch
    assert sum("MB push: median" in line for line in curve_rows) == 1, out
