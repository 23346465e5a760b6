"""`CommandWatchdog`: stops a robot when fresh actions stop arriving, from its own thread.

The hazard it covers is the actor's own control loop stalling (GC pause, blocking I/O, a hung policy,
a crashed process thread) while the robot keeps following its last velocity command. The driver calls
`feed()` each time it sends a motion command; if no feed arrives within `deadline_s` the watchdog calls
the driver's stop function once, then waits for the next feed (it does not spam stops while idle). If the
stop function raises, the watchdog retries it every deadline until it succeeds: a robot that cannot be
told to stop is the one case worth insisting on.

`close()` is safe from any thread (including the watchdog's own), any number of times.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

DEFAULT_DEADLINE_S = 0.2


class CommandWatchdog:
    """Calls `stop_fn` when `feed()` was not called for `deadline_s` seconds since the last feed."""

    def __init__(self, stop_fn: Callable[[], None], deadline_s: float = DEFAULT_DEADLINE_S, name: str = "robot",
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not deadline_s > 0:
            raise ValueError(f"watchdog deadline must be positive, got {deadline_s}")
        self.deadline_s = float(deadline_s)
        self.name = name
        self._stop_fn = stop_fn
        self._clock = clock
        self._cond = threading.Condition()
        self._last_feed: float | None = None  # None: disarmed (nothing moving, nothing to stop)
        self._closed = False
        self._trips = 0
        self._feeds = 0
        self._stop_errors = 0
        self._latencies: list[float] = []  # seconds from last feed to the stop call, per trip
        self._thread: threading.Thread | None = None

    def start(self) -> CommandWatchdog:
        """Start the watchdog thread (idempotent). It is disarmed until the first feed()."""
        with self._cond:
            if self._closed:
                raise RuntimeError(f"{self.name} watchdog: start() after close()")
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=f"{self.name}-watchdog", daemon=True)
                self._thread.start()
        return self

    def renewed(self) -> CommandWatchdog:
        """A new, unstarted watchdog with this one's stop function, deadline, name and clock (a closed
        watchdog cannot be started again)."""
        return CommandWatchdog(self._stop_fn, self.deadline_s, self.name, self._clock)

    def feed(self) -> None:
        """A fresh motion command was just sent: arm (or re-arm) the deadline."""
        with self._cond:
            self._last_feed = self._clock()
            self._feeds += 1
            self._cond.notify_all()

    @property
    def feeds(self) -> int:
        """How many times feed() was called; take it before sending a stop, pass it to disarm()."""
        with self._cond:
            return self._feeds

    def disarm(self, feeds: int | None = None) -> None:
        """The robot was stopped deliberately; nothing to watch until the next feed().

        With `feeds` (the value of `self.feeds` taken before the stop was sent), a feed that arrived while
        the stop was in flight keeps the watchdog armed: that newer command is not covered by the stop.
        """
        with self._cond:
            if feeds is None or feeds == self._feeds:
                self._last_feed = None
            self._cond.notify_all()

    def close(self) -> None:
        """End the watchdog thread. Safe from any thread, any number of times; never raises."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=max(1.0, 5 * self.deadline_s))

    @property
    def trips(self) -> int:
        """How many times the deadline passed and the stop function was called successfully."""
        with self._cond:
            return self._trips

    def wait_for_trips(self, count: int, timeout: float) -> bool:
        """Wait until at least `count` trips happened; False on timeout (for tests and the check command)."""
        with self._cond:
            return self._cond.wait_for(lambda: self._trips >= count, timeout=timeout)

    @property
    def stop_errors(self) -> int:
        """How many calls of the stop function raised."""
        with self._cond:
            return self._stop_errors

    @property
    def latencies(self) -> list[float]:
        """Seconds from the last feed to each successful stop call (a copy)."""
        with self._cond:
            return list(self._latencies)

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    def _run(self) -> None:
        with self._cond:
            while not self._closed:
                if self._last_feed is None:
                    self._cond.wait()
                    continue
                remaining = self._last_feed + self.deadline_s - self._clock()
                if remaining > 0:
                    self._cond.wait(remaining)
                    continue
                fed_at = self._last_feed
                # Call the stop function without holding our lock, so feed()/close() never wait on the robot.
                self._cond.release()
                try:
                    error = self._call_stop()
                finally:
                    self._cond.acquire()
                if error is None:
                    self._trips += 1
                    self._latencies.append(self._clock() - fed_at)
                    self._cond.notify_all()
                    if self._last_feed == fed_at:  # no new feed raced in while stopping
                        self._last_feed = None
                else:
                    self._stop_errors += 1
                    if self._last_feed == fed_at:  # retry one deadline from now
                        self._last_feed = self._clock()

    def _call_stop(self) -> BaseException | None:
        try:
            log.warning("%s: no fresh action for %.0f ms, stopping", self.name, self.deadline_s * 1e3)
            self._stop_fn()
            return None
        except Exception as exc:  # noqa: BLE001 - the watchdog thread must survive any stop failure
            log.error("%s watchdog: stop failed: %s", self.name, exc)
            return exc
