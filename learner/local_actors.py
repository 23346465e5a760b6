"""Start real `actor` processes on this machine (the one-machine default and the final evaluation).

They are the same program a robot runs, talking to this learner over loopback ZeroMQ; nothing is
shortcut. Stopping sends SIGINT first (the actor stops its robot and flushes), then kills.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

log = logging.getLogger(__name__)


class LocalActor:
    """One `actor` subprocess, logging to a file in the run directory."""

    def __init__(self, actor_id: str, robot: str, port: int, log_dir: Path, extra_args: list[str]) -> None:
        self.actor_id = actor_id
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"actor-{actor_id}.log"
        command = [
            sys.executable, "-m", "actor", "--robot", robot, "--learner", f"127.0.0.1:{port}",
            "--actor-id", actor_id, "--metrics-port", "0", "--parent-pid", str(os.getpid()), *extra_args,
        ]  # fmt: skip
        self._log_file = self.log_path.open("w")
        log.info("starting %s", " ".join(command))
        self.process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=self._log_file, stderr=subprocess.STDOUT
        )

    def alive(self) -> bool:
        return self.process.poll() is None

    def wait(self, timeout_s: float) -> int | None:
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, grace_s: float = 15.0) -> int:
        """SIGINT (safe shutdown: robot stopped, transitions flushed), then SIGKILL after `grace_s`."""
        if self.alive():
            self.process.send_signal(signal.SIGINT)
            if self.wait(grace_s) is None:
                log.warning("actor %s ignored SIGINT for %.0f s; killing it", self.actor_id, grace_s)
                self.process.kill()
                self.process.wait()
        self._log_file.close()
        return self.process.returncode

    def tail(self, lines: int = 20) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])
