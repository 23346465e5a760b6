"""CommandWatchdog: stops when actions go stale, only then, survives failing stops, closes from anywhere."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from robots.safety import StepChangeLimit, WorkspaceBox
from robots.watchdog import CommandWatchdog

pytestmark = pytest.mark.timeout(30)


class ManualClock:
    """A clock that moves only when the test says: what "fresh" means no longer depends on the scheduler."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class StopRecorder:
    """A stop function that records when it was called and can be told to fail."""

    def __init__(self, failures: int = 0) -> None:
        self.calls: list[float] = []
        self.failures = failures
        self.called = threading.Condition()

    def __call__(self) -> None:
        with self.called:
            self.calls.append(time.monotonic())
            self.called.notify_all()
            if self.failures > 0:
                self.failures -= 1
                raise OSError("link down")

    def wait_calls(self, count: int, timeout: float) -> bool:
        with self.called:
            return self.called.wait_for(lambda: len(self.calls) >= count, timeout=timeout)


@pytest.mark.parametrize("deadline_s", [0.05, 0.2])
def test_each_feed_is_followed_by_one_stop_never_before_the_deadline(deadline_s):
    """Order and outcome; how long after the deadline is benchmarks/watchdog_latency.py's."""
    stop = StopRecorder()
    watchdog = CommandWatchdog(stop, deadline_s).start()
    try:
        for trip in range(1, 4):
            fed = time.monotonic()
            watchdog.feed()
            assert stop.wait_calls(trip, deadline_s + 30.0)
            assert stop.calls[-1] - fed >= deadline_s, "stopped before the deadline"
            assert watchdog.wait_for_trips(trip, 5.0)
        assert not stop.wait_calls(4, 3 * deadline_s), "stopped again without a new feed"
        assert watchdog.trips == 3 and all(latency >= deadline_s for latency in watchdog.latencies)
    finally:
        watchdog.close()


def test_no_stop_while_actions_are_fresh_and_none_while_disarmed():
    clock = ManualClock()
    stop = StopRecorder()
    watchdog = CommandWatchdog(stop, 0.1, clock=clock).start()
    try:
        assert not stop.wait_calls(1, 0.25)  # never fed: nothing is moving, nothing to stop
        for _ in range(20):  # a 50 Hz control loop, in the watchdog's time, however the threads are scheduled
            watchdog.feed()
            clock.advance(0.02)
        assert stop.calls == []
        watchdog.disarm()  # a deliberate stop
        clock.advance(1.0)
        assert not stop.wait_calls(1, 0.25)
        watchdog.feed()
        clock.advance(0.1)  # the deadline passes; the watchdog notices at its next wake-up (<= 0.1 s)
        assert watchdog.wait_for_trips(1, 30.0)
        clock.advance(1.0)
        assert not stop.wait_calls(2, 0.3), "stopped again without a new action"
        assert watchdog.trips == 1 and watchdog.latencies == [pytest.approx(0.1)]
    finally:
        watchdog.close()


def test_a_stop_in_flight_does_not_disarm_an_action_sent_meanwhile():
    stop = StopRecorder()
    watchdog = CommandWatchdog(stop, 0.05).start()
    try:
        watchdog.feed()
        token = watchdog.feeds  # a stop starts here ...
        watchdog.feed()  # ... a fresh action is sent while it is in flight ...
        watchdog.disarm(token)  # ... and the stop's completion must not cancel watching that action
        assert stop.wait_calls(1, 2.0)
        watchdog.feed()
        watchdog.disarm(watchdog.feeds)  # nothing sent meanwhile: disarmed
        assert not stop.wait_calls(2, 0.2)
    finally:
        watchdog.close()


def test_a_failing_stop_is_retried_until_it_succeeds():
    stop = StopRecorder(failures=2)
    watchdog = CommandWatchdog(stop, 0.05).start()
    try:
        watchdog.feed()
        assert stop.wait_calls(3, 3.0)
        assert watchdog.wait_for_trips(1, 2.0)
        assert watchdog.stop_errors == 2 and watchdog.trips == 1 and watchdog.running
        gaps = np.diff(stop.calls)
        assert np.all(gaps >= 0.05 - 1e-3), gaps  # retried once per deadline, not in a tight loop
    finally:
        watchdog.close()


def test_close_is_idempotent_and_safe_from_any_thread_including_its_own():
    holder = {}

    def stop_and_close():
        holder["watchdog"].close()  # closing from inside the watchdog thread must not deadlock

    watchdog = CommandWatchdog(stop_and_close, 0.05)
    holder["watchdog"] = watchdog
    watchdog.close()  # before start: harmless
    watchdog = CommandWatchdog(stop_and_close, 0.05).start()
    holder["watchdog"] = watchdog
    watchdog.feed()
    assert watchdog.wait_for_trips(1, 2.0)
    threads = [threading.Thread(target=watchdog.close) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=5.0)
    watchdog.close()
    assert not watchdog.running and not any(thread.is_alive() for thread in threads)
    with pytest.raises(RuntimeError):
        watchdog.start()


def test_deadline_must_be_positive():
    with pytest.raises(ValueError):
        CommandWatchdog(lambda: None, 0.0)


# ---- the per-step change limit and workspace box beside ActionSafety ----

def test_step_change_limit_bounds_every_jump_but_never_delays_a_stop():
    limit = StepChangeLimit([0.1, 0.2])
    rng = np.random.default_rng(0)
    previous = limit.apply(np.array([0.0, 0.0]))
    for _ in range(200):
        action = limit.apply(rng.uniform(-1, 1, size=2))
        assert np.all(np.abs(action - previous) <= [0.1 + 1e-12, 0.2 + 1e-12])
        previous = action
    assert limit.limited > 0
    np.testing.assert_array_equal(limit.apply(np.zeros(2)), [0.0, 0.0])  # stop passes at once
    with pytest.raises(ValueError):
        StepChangeLimit([0.1, np.nan])


def test_workspace_box_zeroes_only_outward_components():
    box = WorkspaceBox([0.0, 0.0, 0.0], [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(box.hold([0.5, 0.5, 0.5], [1.0, -1.0, 1.0]), [1.0, -1.0, 1.0])
    np.testing.assert_array_equal(box.hold([1.0, 0.0, 0.5], [1.0, -1.0, 1.0]), [0.0, 0.0, 1.0])
    np.testing.assert_array_equal(box.hold([1.2, 0.5, 0.5], [-1.0, 0.0, 0.0]), [-1.0, 0.0, 0.0])  # back in: kept
    assert box.held == 1 and box.contains([0.5, 0.5, 0.5]) and not box.contains([1.2, 0.5, 0.5])
    with pytest.raises(ValueError):
        WorkspaceBox([0, 0], [0, 1])
