"""A child process on a real pseudo-terminal: it sees a tty on stdin/stdout/stderr, as over SSH.

`PtyProcess` starts the child in its own session with the pty as its controlling terminal (so the
Ctrl-C byte raises SIGINT in it, exactly like a keyboard), collects everything it prints, and lets a
test wait for text to appear (`expect`) with a deadline instead of sleeping.
"""

from __future__ import annotations

import fcntl
import os
import re
import subprocess
import sys
import termios
import threading
import time

from tests.conftest import wait_until

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _make_controlling_terminal() -> None:  # runs in the child after setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class PtyProcess:
    """`python -m <args>` (or any argv) on a fresh pty; `send`, `expect`, `attrs`, `wait`."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.master, self.slave = os.openpty()
        self.original_attrs = termios.tcgetattr(self.slave)
        child_env = dict(os.environ, PYTHONUNBUFFERED="1", COLUMNS="200", LINES="40", MUJOCO_GL="egl", **(env or {}))
        self.process = subprocess.Popen(
            argv, stdin=self.slave, stdout=self.slave, stderr=self.slave, cwd=ROOT, env=child_env,
            start_new_session=True, preexec_fn=_make_controlling_terminal, close_fds=True,
        )  # fmt: skip
        self._chunks: list[str] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @classmethod
    def module(cls, *args: str, env: dict[str, str] | None = None) -> "PtyProcess":
        return cls([sys.executable, "-m", *args], env)

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            if not data:
                return
            with self._lock:
                self._chunks.append(data.decode("utf-8", errors="replace"))

    @property
    def output(self) -> str:
        """Everything printed so far, escape sequences removed."""
        with self._lock:
            return ANSI.sub("", "".join(self._chunks))

    @property
    def raw_output(self) -> str:
        with self._lock:
            return "".join(self._chunks)

    def send(self, keys: str | bytes) -> float:
        """Type `keys` into the terminal; returns the monotonic time they were written."""
        os.write(self.master, keys.encode() if isinstance(keys, str) else keys)
        return time.monotonic()

    def expect(self, pattern: str, timeout_s: float = 10.0, after: int = 0) -> re.Match:
        """Wait until `pattern` (a regex) appears in the output after offset `after`; returns the match."""
        return wait_until(lambda: re.search(pattern, self.output[after:]), timeout_s,
                          what=f"{pattern!r} in the terminal; last output:\n{self.output[-1500:]}")  # fmt: skip

    def attrs(self) -> list:
        """The terminal's current mode (termios attributes), as the child left it."""
        return termios.tcgetattr(self.slave)

    def wait(self, timeout_s: float = 15.0) -> int:
        return self.process.wait(timeout=timeout_s)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self._reader.join(timeout=0)
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass


def same_mode(a: list, b: list) -> bool:
    """Terminal modes equal in the flags that matter (iflag, oflag, lflag and the control characters)."""
    return a[0] == b[0] and a[1] == b[1] and a[3] == b[3] and a[6] == b[6]


def screen_lines(raw: str) -> list[str]:
    """What a terminal shows for `raw` output, line by line: `\\r` returns to column 0, ESC[2K erases
    the line, other escape sequences are dropped. Enough to see a status line redrawn in place."""
    lines, current = [], ""
    for part in re.split(r"(\r\n|\n|\r|\x1b\[2K)", raw):
        if part in ("\r\n", "\n"):
            lines.append(current)
            current = ""
        elif part == "\r":
            current = "\r" + current  # remember we are at column 0: the next text overwrites
        elif part == "\x1b[2K":
            current = "\r" if current.startswith("\r") else ""
        elif part:
            text = ANSI.sub("", part)
            if current.startswith("\r"):
                old = current[1:]
                current = text + old[len(text):]
            else:
                current += text
    lines.append(current.lstrip("\r"))
    return [line.lstrip("\r") for line in lines]
