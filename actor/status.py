"""The operator's live status line: one line at the bottom of the terminal, redrawn in place.

Log records go *above* it: `StatusLine.log_handler()` clears the line, writes the record, and redraws
the line, all under one lock, so log output never runs through the status text. Redraws are throttled
(`min_interval_s`) so a fast control loop costs almost nothing.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from dataclasses import dataclass
from typing import IO

_CLEAR = "\r\x1b[2K"  # carriage return + erase the whole line


@dataclass
class Status:
    """Everything the status line shows; the loop and the app fill it in."""

    episode: int = 0  # episodes started by this actor
    step: int = 0
    episode_return: float = 0.0
    successes: int = 0  # over the whole run
    recent_success_rate: float = 0.0  # over the last 20 finished episodes
    recent_episodes: int = 0
    policy_version: int = -1
    policy_age_s: float = 0.0  # since the acting weights were swapped in
    learner: str = "-"  # connected / waiting / refused / off
    queued: int = 0  # transitions not yet acked (queued, batching or in flight)
    acked: int = 0
    spooled: int = 0
    rate_hz: float = 0.0  # measured control-loop rate
    overruns: int = 0
    mode: str = "policy"  # policy / INTERVENING / PAUSED / E-STOP / WAITING (real robot: first weights or start)
    speed: float = 0.0  # teleop speed fraction
    last_stop_ms: float = -1.0  # label/e-stop key -> robot stopped, last one


def format_status(s: Status) -> str:
    """The status text (no newline), e.g. `ep 3 step 41 | R 1.00 | ok 2 (67%/3) | v12 4s | ...`."""
    version = f"v{s.policy_version} {s.policy_age_s:.0f}s" if s.policy_version >= 0 else "random"
    stop = f" | stop {s.last_stop_ms:.1f}ms" if s.last_stop_ms >= 0 else ""
    return (
        f"ep {s.episode} step {s.step} | R {s.episode_return:.2f} | ok {s.successes} "
        f"({100 * s.recent_success_rate:.0f}%/{s.recent_episodes}) | {version} | learner {s.learner} | "
        f"tx q{s.queued} a{s.acked} s{s.spooled} | {s.rate_hz:.1f}Hz ovr {s.overruns} | "
        f"{s.mode} spd {100 * s.speed:.0f}%{stop} | ? help"
    )


class StatusLine:
    """Draws `format_status` at the bottom of `stream` (a terminal) and keeps log lines above it."""

    def __init__(self, stream: IO[str], min_interval_s: float = 0.2) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self._text = ""
        self._min_interval_s = min_interval_s
        self._drawn_at = 0.0

    def show(self, status: Status, force: bool = False) -> None:
        """Redraw with `status` (at most every `min_interval_s` unless `force`)."""
        now = time.monotonic()
        if not force and now - self._drawn_at < self._min_interval_s:
            return
        width = shutil.get_terminal_size((160, 24)).columns
        with self._lock:
            self._drawn_at = now
            self._text = format_status(status)[: max(width - 1, 20)]
            self._write(_CLEAR + self._text)

    def print_above(self, text: str) -> None:
        """Write `text` (one or more lines) above the status line."""
        with self._lock:
            self._write(_CLEAR + text.rstrip("\n") + "\n" + self._text)

    def clear(self) -> None:
        """Erase the status line (on exit, so the shell prompt starts on a clean line)."""
        with self._lock:
            self._write(_CLEAR)
            self._text = ""

    def log_handler(self, formatter: logging.Formatter | None = None) -> logging.Handler:
        """A logging handler that prints records above the status line."""
        handler = _AboveStatusHandler(self)
        if formatter is not None:
            handler.setFormatter(formatter)
        return handler

    def _write(self, text: str) -> None:
        try:
            self._stream.write(text)
            self._stream.flush()
        except (OSError, ValueError):
            pass  # terminal gone; the actor keeps running


class _AboveStatusHandler(logging.Handler):
    def __init__(self, line: StatusLine) -> None:
        super().__init__()
        self._line = line

    def emit(self, record: logging.LogRecord) -> None:
        try:
            # A raw terminal (cbreak) still maps \n to \r\n on output, so plain newlines are fine.
            self._line.print_above(self.format(record))
        except Exception:
            self.handleError(record)
