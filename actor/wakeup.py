"""A pipe one thread polls beside its socket, so other threads can end its wait early."""

from __future__ import annotations

import os
import threading


class Wakeup:
    """The polling thread `open`s it, registers `fileno` beside its socket, sets `napping` before a wait and
    `drain`s after one; any thread may `wake` it. One byte per nap: `wake` clears `napping`."""

    def __init__(self) -> None:
        self._read = self._write = -1
        self._lock = threading.Lock()  # a write never lands on a closed (and maybe reused) descriptor
        self.napping = False

    @property
    def fileno(self) -> int:
        return self._read

    def open(self) -> int:
        """Create the pipe (non-blocking both ends); returns the descriptor to poll."""
        read, write = os.pipe()
        for fd in (read, write):
            os.set_blocking(fd, False)
        with self._lock:
            self._read, self._write = read, write
        return read

    def wake(self) -> None:
        """End the polling thread's wait (a no-op before `open` and after `close`)."""
        self.napping = False
        with self._lock:
            try:
                os.write(self._write, b"\0")
            except OSError:  # the pipe is full (so a byte waits already), closed or not open (-1)
                pass

    def drain(self) -> None:
        """Read the bytes `wake` wrote, so the next poll waits again."""
        try:
            os.read(self._read, 4096)
        except BlockingIOError:
            pass

    def close(self) -> None:
        with self._lock:
            for fd in (self._read, self._write):
                if fd >= 0:
                    os.close(fd)
            self._read = self._write = -1
