"""The parent side of driving_actor.py: start an actor process that drives a real driver against its peer,
kill it with SIGKILL, and follow its safe-stop supervisor (robots/deadman.py) to its exit.

Used by tests/robots/test_safe_stop.py and benchmarks/safe_stop.py. `reaping_orphans()` makes this process
the child subreaper, so a killed actor's supervisor is re-parented here (not to PID 1) and `wait_exited`
can both wait for it without polling (a pidfd) and reap it: no zombie survives the test.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import queue
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

SCRIPT = Path(__file__).parent / "driving_actor.py"
PROJECT_ROOT = Path(__file__).resolve().parents[3]
PR_SET_CHILD_SUBREAPER = 36
START_TIMEOUT_S = 60.0  # interpreter, MuJoCo and SDK imports, the supervisor's own link, on a loaded box


@contextlib.contextmanager
def reaping_orphans():
    """Within the block, orphaned descendants (a killed actor's supervisor) become this process's children."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")
    try:
        yield
    finally:
        libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


def wait_exited(pid: int, timeout_s: float) -> int | None:
    """Wait (without polling) for process `pid`, a child of ours, to exit, and reap it: its exit status
    (negative: killed by that signal), or None if it is still running after `timeout_s`."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return None  # already reaped by someone else: not ours to judge
    try:
        ready, _, _ = select.select([pidfd], [], [], timeout_s)
        if not ready:
            return None
        _, status = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(status)
    finally:
        os.close(pidfd)


class DrivingActor:
    """One driving_actor.py process; its stderr (and its supervisor's) goes to `log_path`."""

    def __init__(self, robot: str, options: dict, action: list[float], log_path: Path) -> None:
        self.log_path = log_path
        command = [sys.executable, str(SCRIPT), "--robot", robot, "--action", ",".join(map(str, action))]
        for key, value in options.items():
            command += ["-o", f"{key}={value}"]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT),
                                                                          os.environ.get("PYTHONPATH")]))}
        with open(log_path, "wb") as log:
            self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                            stderr=log, env=env, text=True)
        self._lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.deadman_pid: int | None = None

    def _read(self) -> None:
        for line in self.process.stdout:
            if line.startswith("ACTOR "):
                self._lines.put(json.loads(line[6:]))
        self._lines.put(None)  # EOF: the actor exited

    def wait_driving(self, timeout_s: float = START_TIMEOUT_S) -> DrivingActor:
        """Block until the actor has connected, enabled and sent its first actions."""
        try:
            record = self._lines.get(timeout=timeout_s)
        except queue.Empty:
            record = None
        if record is None:
            self.kill()
            raise RuntimeError(f"the actor never started driving; its log:\n{self.log()}")
        self.deadman_pid = record["deadman_pid"]
        return self

    def kill(self) -> float:
        """SIGKILL the actor and reap it; returns time.monotonic() just before the signal was sent."""
        killed_at = time.monotonic()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)
        return killed_at

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")
