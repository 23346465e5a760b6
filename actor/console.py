"""The operator's keyboard: raw, non-blocking key input from the actor's terminal (works over SSH, no X).

`Console` puts the terminal in cbreak mode (no line buffering, no echo; Ctrl-C still raises SIGINT, so
the usual "Ctrl-C stops the robot" habit keeps working), reads keys on a background thread with
`select`, and hands each command to a callback. The terminal is restored when the context exits,
whatever the exit path (normal end, exception, Ctrl-C, SIGTERM handled by the actor), and at
interpreter exit as a last resort. Only SIGKILL can leave the terminal raw (`stty sane` fixes it).

When stdin is not a terminal (a service, CI, a pipe) the console is off: `active` is False and no
thread runs, so the actor works unattended.

Keys are tokens: printable characters as themselves, plus "UP", "DOWN", "LEFT", "RIGHT", "SPACE",
"ESC", "ENTER", "TAB", "BACKSPACE". Arrow keys arrive as escape sequences (ESC [ A or ESC O A) and a
burst of keys arrives in one read, so input is tokenised, not read byte by byte.
"""

from __future__ import annotations

import atexit
import logging
import os
import select
import termios
import threading
import time
import tty
from dataclasses import dataclass, field
from typing import Callable, Mapping

log = logging.getLogger(__name__)

_ARROWS = {"A": "UP", "B": "DOWN", "C": "RIGHT", "D": "LEFT"}
_NAMED = {" ": "SPACE", "\r": "ENTER", "\n": "ENTER", "\t": "TAB", "\x7f": "BACKSPACE"}

# command -> keys. Teleop commands take precedence over the others only while intervening, so `s` is
# "success" normally and "backward" while the operator drives; Enter labels success in both modes.
DEFAULT_KEYMAP: dict[str, tuple[str, ...]] = {
    "start": ("t",),
    "success": ("s", "ENTER"),
    "failure": ("f",),
    "reset": ("r",),
    "pause": ("SPACE",),
    "intervene": ("i",),
    "estop": ("ESC", "x"),
    "release": ("c",),
    "help": ("?", "h"),
    "forward": ("UP", "w"),
    "backward": ("DOWN", "s"),
    "left": ("LEFT", "a"),
    "right": ("RIGHT", "d"),
    "yaw_left": ("q",),
    "yaw_right": ("e",),
    "gripper": ("g",),
    "faster": ("+", "="),
    "slower": ("-", "_"),
}
TELEOP_COMMANDS = ("forward", "backward", "left", "right", "yaw_left", "yaw_right", "gripper", "faster", "slower")
COMMAND_HELP = {
    "start": "real robot: start acting (random actions) before the learner's first weights",
    "success": "label success, end episode", "failure": "label failure, end episode",
    "reset": "stop, reset the task, new episode", "pause": "pause/resume (robot holds)",
    "intervene": "toggle intervention (teleop drives)", "estop": "EMERGENCY STOP", "release": "release the e-stop",
    "help": "show keys", "forward": "teleop +x / forward", "backward": "teleop -x / backward",
    "left": "teleop +y / turn left", "right": "teleop -y / turn right", "yaw_left": "teleop yaw left / +z",
    "yaw_right": "teleop yaw right / -z", "gripper": "teleop gripper open/close", "faster": "teleop speed +",
    "slower": "teleop speed -",
}  # fmt: skip


def parse_keys(data: str) -> list[str]:
    """Tokenise one read of terminal input into key names (arrows decoded, a lone ESC is "ESC")."""
    keys: list[str] = []
    i = 0
    while i < len(data):
        char = data[i]
        if char == "\x1b":
            if i + 2 < len(data) and data[i + 1] in "[O":
                end = i + 2
                while end < len(data) and not ("@" <= data[end] <= "~"):
                    end += 1  # skip parameters of a CSI sequence (e.g. ESC [ 1 ; 5 A)
                final = data[end] if end < len(data) else ""
                keys.append(_ARROWS.get(final, "UNKNOWN"))
                i = end + 1
                continue
            keys.append("ESC")  # a lone ESC, or ESC followed by another key (both are e-stops anyway)
        else:
            keys.append(_NAMED.get(char, char))
        i += 1
    return keys


@dataclass
class Keymap:
    """Which keys trigger which command; `overrides` maps command -> comma-separated keys."""

    bindings: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_KEYMAP))

    @classmethod
    def with_overrides(cls, overrides: Mapping[str, str]) -> "Keymap":
        bindings = dict(DEFAULT_KEYMAP)
        for command, keys in overrides.items():
            if command not in bindings:
                raise ValueError(f"unknown operator command {command!r}; known: {', '.join(bindings)}")
            bindings[command] = tuple(_key_name(k) for k in keys.split(",") if k)
        if not bindings["estop"]:
            raise ValueError("the e-stop needs at least one key")
        return cls(bindings)

    def command(self, key: str, intervening: bool) -> str | None:
        """The command `key` triggers now (teleop bindings win only while intervening)."""
        general = None
        for command, keys in self.bindings.items():
            if key in keys:
                if command in TELEOP_COMMANDS and intervening:
                    return command
                if command not in TELEOP_COMMANDS and general is None:
                    general = command
        return general

    def help_text(self) -> str:
        return "\n".join(f"  {'/'.join(self.bindings[c]):<14} {COMMAND_HELP[c]}" for c in self.bindings)


def _in_foreground(fd: int) -> bool:
    """Whether this process owns the terminal; a background job (`actor ... &`) that touched the terminal
    mode would be stopped by SIGTTOU, so it runs without the console instead."""
    try:
        return os.tcgetpgrp(fd) == os.getpgrp()
    except OSError:
        return True  # not our controlling terminal: job control (SIGTTOU) does not apply


def _key_name(text: str) -> str:
    text = text.strip()
    return text.upper() if text.upper() in (*_ARROWS.values(), *_NAMED.values(), "ESC") else text


class Console:
    """Context manager: raw keys from `fd` (default stdin) delivered as key names to `on_key` on a thread."""

    def __init__(self, on_key: Callable[[str, float], None], fd: int | None = None, enabled: bool = True) -> None:
        self._on_key = on_key  # called with (key name, monotonic time the bytes were read)
        self._fd = 0 if fd is None else fd
        self.active = enabled and os.isatty(self._fd) and _in_foreground(self._fd)
        self._saved: list | None = None
        self._stop_read, self._stop_write = -1, -1
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "Console":
        if not self.active:
            return self
        self._saved = termios.tcgetattr(self._fd)
        atexit.register(self.restore)  # last resort if the context is never exited normally
        tty.setcbreak(self._fd, termios.TCSANOW)
        self._stop_read, self._stop_write = os.pipe()
        self._thread = threading.Thread(target=self._read_loop, name="tandem-console", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the reader thread and restore the terminal (idempotent)."""
        if self._thread is not None:
            os.write(self._stop_write, b"x")
            self._thread.join(timeout=2.0)
            self._thread = None
            for fd in (self._stop_read, self._stop_write):
                os.close(fd)
        self.restore()

    def restore(self) -> None:
        """Put the terminal back exactly as it was (idempotent, safe at interpreter exit)."""
        saved, self._saved = self._saved, None
        if saved is not None:
            try:
                termios.tcsetattr(self._fd, termios.TCSADRAIN, saved)
            except termios.error:
                pass  # the terminal is already gone (closed pty, hung-up SSH session)
            atexit.unregister(self.restore)

    def _read_loop(self) -> None:
        while True:
            readable, _, _ = select.select([self._fd, self._stop_read], [], [])
            if self._stop_read in readable:
                return
            try:
                data = os.read(self._fd, 1024)
            except OSError:
                return  # terminal hung up
            if not data:
                return
            now = time.monotonic()
            for key in parse_keys(data.decode("utf-8", errors="replace")):
                try:
                    self._on_key(key, now)
                except Exception:  # a bad handler must not kill the keyboard (and with it the e-stop)
                    log.exception("operator key %r failed", key)
