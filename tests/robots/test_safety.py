"""ActionSafety: clipping, the NaN stop, counters, and thread-safe counting."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from common.specs import BoundedSpec, SpecError
from robots.safety import ActionSafety

LIMO_LIKE = BoundedSpec("action", (2,), "float32", low=(-0.5, -1.5), high=(0.5, 1.5))


def test_in_bounds_action_passes_unchanged():
    safety = ActionSafety(LIMO_LIKE)
    safe, stopped = safety.apply(np.array([0.25, -1.0]))
    np.testing.assert_array_equal(safe, np.array([0.25, -1.0], dtype=np.float32))
    assert not stopped and safety.clipped == 0 and safety.nan_stops == 0


def test_out_of_bounds_action_is_clipped_and_counted():
    safety = ActionSafety(LIMO_LIKE)
    safe, stopped = safety.apply(np.array([3.0, -9.0]))
    np.testing.assert_array_equal(safe, np.array([0.5, -1.5], dtype=np.float32))
    assert not stopped and safety.clipped == 1


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_action_becomes_the_stop_action(bad):
    safety = ActionSafety(LIMO_LIKE)
    safe, stopped = safety.apply(np.array([0.4, bad]))
    np.testing.assert_array_equal(safe, np.zeros(2, dtype=np.float32))
    assert stopped and safety.nan_stops == 1 and safety.clipped == 0


def test_stop_action_is_clipped_into_bounds_that_exclude_zero():
    safety = ActionSafety(BoundedSpec("gripper", (1,), "float32", low=(0.2,), high=(1.0,)))
    safe, stopped = safety.apply(np.array([np.nan]))
    assert stopped and safe[0] == pytest.approx(0.2)


def test_wrong_shape_is_an_error_not_a_clip():
    with pytest.raises(SpecError):
        ActionSafety(LIMO_LIKE).apply(np.zeros(3))


@given(arrays(np.float64, 2, elements=st.floats(allow_nan=True, allow_infinity=True, width=64)))
def test_output_is_always_inside_bounds(action):
    safe, _ = ActionSafety(LIMO_LIKE).apply(action)
    assert safe.dtype == np.float32 and np.all(np.isfinite(safe))
    assert np.all(safe >= LIMO_LIKE.low_array) and np.all(safe <= LIMO_LIKE.high_array)


def test_counters_are_exact_under_concurrent_use():
    safety = ActionSafety(LIMO_LIKE)
    per_thread = 2000

    def hammer():
        for _ in range(per_thread):
            safety.apply(np.array([9.0, 0.0]))
            safety.apply(np.array([np.nan, 0.0]))

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert safety.clipped == 4 * per_thread and safety.nan_stops == 4 * per_thread
