"""Real learner processes for fault tests, and an actor-side feeder thread with numbered transitions."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from actor.sender import Sender
from common.protocol import Hello
from common.types import Transition
from learner.replay.durable import read_journal
from robots.fake import FakeRobot
from tests.conftest import wait_until

SPEC = FakeRobot().spec  # the same spec as tests/integration/test_transport.py, without importing torch


def hello(actor_id: str) -> Hello:
    return Hello(actor_id, SPEC.name, SPEC.spec_hash, SPEC.to_json())


def transition(marker: int) -> Transition:
    """A transition whose observation carries `marker` in its first element."""
    obs = np.array([marker, 0, 0, 0], np.float32)
    return Transition({"state": obs}, np.zeros(2, np.float32), 0.0, False, False, {"state": obs + 0.5}, step=marker)

ROOT = Path(__file__).resolve().parents[2]


def learner_command(port: int, run_dir: Path, resume: bool) -> list[str]:
    """The real `learner` CLI, never training (learning-starts huge): it serves, persists and resumes."""
    run = ["--resume", str(run_dir)] if resume else ["--run-dir", str(run_dir)]
    return [sys.executable, "-m", "learner", "--algo", "sac", "--port", str(port), *run, "--metrics-port", "0",
            "--learning-starts", "1000000000", "--checkpoint-every", "0", "--device", "cpu", "--threads", "1",
            "--final-eval", "0"]  # fmt: skip


class LearnerProcess:
    """A learner subprocess (the real CLI, `learner_command`, unless told otherwise) logging to a file."""

    def __init__(self, port: int, run_dir: Path, resume: bool = False, command=learner_command) -> None:
        command = command(port, run_dir, resume)
        self.log_path = run_dir.parent / f"learner-{port}-{time.monotonic_ns()}.log"
        run_dir.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("w")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.process = subprocess.Popen(command, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        self.started = time.monotonic()

    def wait_listening(self, timeout_s: float = 90.0) -> float:  # torch's import alone takes ~10 s on a busy box
        wait_until(lambda: "listening on" in self.text() or self.process.poll() is not None, timeout_s,
                   what="the learner to listen")  # fmt: skip
        assert self.process.poll() is None, self.text()
        return time.monotonic()

    def text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self._log.close()

    def terminate(self, timeout_s: float = 30.0) -> int:
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=timeout_s)
        self._log.close()
        return code


class Feeder:
    """Submits numbered transitions to a sender from a thread, like a control loop (never blocking)."""

    def __init__(self, sender: Sender, start: int = 0, period_s: float = 0.002) -> None:
        self.sender, self.next, self.period_s = sender, start, period_s
        self.refused = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.periods: list[float] = []

    def start(self) -> "Feeder":
        self._thread.start()
        return self

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(timeout=5)
        return self.next

    def _run(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(self.period_s):  # the period is the load, not synchronisation
            if self.sender.submit(transition(self.next)):
                self.next += 1
            else:
                self.refused += 1
            now = time.monotonic()
            self.periods.append(now - last)
            last = now


def journal_markers(run_dir: Path, actor_id: str) -> list[int]:
    """Observation markers of every transition in RUN_DIR's durable replay, in order."""
    out = []
    for record in read_journal(run_dir / "replay"):
        if record.arrays is not None and record.actor_id == actor_id:
            out.extend(int(x) for x in record.arrays["rows/state"][record.arrays["obs_index"], 0])
    return out
