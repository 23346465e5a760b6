"""Control-loop timing: a rate limiter that counts overruns, and a stopwatch."""

from __future__ import annotations

import time

import numpy as np


class RateLimiter:
    """Paces a loop at `hz` ticks per second of wall time (divided by `time_scale` for simulators).

    `wait()` sleeps until the next tick and returns True if the loop body overran its period. After an
    overrun the schedule restarts from now instead of trying to catch up with a burst of short ticks.
    """

    def __init__(self, hz: float, time_scale: float = 1.0) -> None:
        if hz <= 0 or time_scale <= 0:
            raise ValueError(f"hz and time_scale must be positive, got {hz}, {time_scale}")
        self.period_s = 1.0 / (hz * time_scale)
        self._next_tick = time.monotonic() + self.period_s
        self._last_tick = time.monotonic()
        self.overruns = 0
        self.last_period_s = 0.0

    def wait(self) -> bool:
        now = time.monotonic()
        overran = now > self._next_tick
        if overran:
            self.overruns += 1
            self._next_tick = now + self.period_s
        else:
            time.sleep(self._next_tick - now)
            self._next_tick += self.period_s
        tick = time.monotonic()
        self.last_period_s = tick - self._last_tick
        self._last_tick = tick
        return overran

    def restart(self) -> None:
        """Start a fresh schedule (after a reset or pause, so the pause is not counted as an overrun)."""
        self._next_tick = time.monotonic() + self.period_s
        self._last_tick = time.monotonic()


class Stopwatch:
    """`with Stopwatch() as sw: ...` then `sw.seconds`."""

    def __enter__(self) -> "Stopwatch":
        self._start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.seconds = time.perf_counter() - self._start


class PeriodLog:
    """Every control tick's (monotonic time, period in s, acting policy version), appended to a file of
    float64 triples for jitter analysis (`actor --period-log`, benchmarks/control_period.py).

    Ticks are buffered and written `block` at a time, so the loop pays one small write every `block` ticks;
    a process killed with -9 loses at most the last block. `time.monotonic()` is the system-wide
    CLOCK_MONOTONIC on Linux, so another process can line its own events up with these ticks.
    """

    COLUMNS = 3

    def __init__(self, path: str, block: int = 16) -> None:
        self.path, self.block = path, int(block)
        self._rows: list[tuple[float, float, float]] = []
        open(path, "wb").close()  # a fresh log each run

    def record(self, period_s: float, version: int) -> None:
        self._rows.append((time.monotonic(), period_s, float(version)))
        if len(self._rows) >= self.block:
            self.flush()

    def flush(self) -> None:
        if self._rows:
            with open(self.path, "ab") as f:
                f.write(np.asarray(self._rows, dtype="<f8").tobytes())
            self._rows.clear()

    @classmethod
    def read(cls, path: str) -> np.ndarray:
        """The ticks written so far as an (n, 3) array: time, period, version."""
        raw = np.fromfile(path, dtype="<f8")
        return raw[: len(raw) - len(raw) % cls.COLUMNS].reshape(-1, cls.COLUMNS)
