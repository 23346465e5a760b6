"""Real `learner` and `actor` processes for fault tests, an actor-side feeder thread with numbered
transitions, and readers of what the learner's durable replay holds."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from actor.sender import Sender
from common.protocol import Hello
from common.types import Transition, unpack_transitions
from learner.replay.durable import read_journal
from robots.fake import FakeRobot
from common.ports import free_port_pair
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


STARTED: list[subprocess.Popen] = []  # every process started here (conftest kills what a failed test left)


def kill_leftovers() -> None:
    """SIGKILL every process started here that still runs (a test that failed before stopping its own)."""
    while STARTED:
        process = STARTED.pop()
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


class LearnerProcess:
    """A learner subprocess (the real CLI, `learner_command`, unless told otherwise) logging to a file."""

    def __init__(self, port: int, run_dir: Path, resume: bool = False, command=learner_command) -> None:
        command = command(port, run_dir, resume)
        self.log_path = run_dir.parent / f"learner-{port}-{time.monotonic_ns()}.log"
        run_dir.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("w")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.process = subprocess.Popen(command, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        STARTED.append(self.process)
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
            out.extend(int(x) for x in unpack_transitions(record.arrays, SPEC)["observation/state"][:, 0])
    return out


class ActorProcess:
    """The real `actor` CLI on the fake robot, spooling to `spool_dir`, with /metrics on `metrics_port`."""

    def __init__(self, port: int, actor_id: str, spool_dir: Path, metrics_port: int, log_path: Path,
                 *extra: str) -> None:  # fmt: skip
        command = [sys.executable, "-m", "actor", "--robot", "fake", "--learner", f"127.0.0.1:{port}", "--actor-id",
                   actor_id, "--spool", str(spool_dir), "--metrics-port", str(metrics_port), "--no-console", *extra]
        self.metrics_port, self.log_path = metrics_port, log_path
        self.started_ms = int(time.time() * 1000)  # its episode numbers start after this (actor.recorder)
        self._log = log_path.open("w")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.process = subprocess.Popen(command, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, env=env)  # fmt: skip
        STARTED.append(self.process)

    def recorded(self) -> int:
        """Steps the control loop has recorded, from /metrics (0 until it serves). Counted after `record()`
        returns, so a value read here is a lower bound on what the actor had recorded when it read."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as response:
                text = response.read().decode()
        except OSError:
            return 0
        return int(sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                       if line.startswith("tandem_actor_proposal_actions_total{")))  # fmt: skip

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self._log.close()

    def terminate(self, timeout_s: float = 60.0) -> int:
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=timeout_s)
        self._log.close()
        return code

    def text(self) -> str:
        return self.log_path.read_text(errors="replace")


def journal_columns(run_dir: Path, actor_id: str, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Per-transition columns (e.g. episode, step) of `actor_id`'s batches in RUN_DIR's durable replay."""
    parts = {name: [] for name in names}
    for record in read_journal(run_dir / "replay"):
        if record.arrays is not None and record.actor_id == actor_id:
            columns = unpack_transitions(record.arrays, SPEC)
            for name in names:
                parts[name].append(columns[name])
    return {name: np.concatenate(arrays) if arrays else np.zeros(0) for name, arrays in parts.items()}


@dataclass
class EpisodeAudit:
    """What the durable replay holds of one actor's episodes, checked step by step."""

    transitions: int  # transitions stored
    episodes: int  # distinct episodes
    duplicated: int  # (episode, step) pairs stored more than once, beyond the first
    missing: int  # steps absent below an episode's highest stored step (a hole)
    bad_endings: list  # episodes whose end flag is not exactly one, on their last stored step

    @property
    def clean(self) -> bool:
        return not (self.duplicated or self.missing or self.bad_endings)


def audit_episodes(columns: dict[str, np.ndarray]) -> EpisodeAudit:
    """Every episode must be steps 0..T-1, each once, ending (terminated or truncated) at T-1 and only there: an
    episode cut by a kill too, since the restarted actor marks its last recorded step truncated."""
    episode, step = columns["episode"].astype(np.int64), columns["step"].astype(np.int64)
    done = columns["terminated"].astype(bool) | columns["truncated"].astype(bool)
    duplicated = missing = 0
    bad_endings = []
    for number in np.unique(episode):
        mine = episode == number
        steps, ends = step[mine], done[mine]
        unique = np.unique(steps)
        duplicated += len(steps) - len(unique)
        missing += int(unique.max()) + 1 - len(unique)
        last = steps == unique.max()
        if not ends[last].all() or ends[~last].any():
            bad_endings.append(int(number))
    return EpisodeAudit(len(episode), len(np.unique(episode)), duplicated, missing, bad_endings)


@dataclass
class Life:
    """One actor process: when it started, and the steps it had recorded when it was killed (or stopped)."""

    started_ms: int
    recorded: int


def kill_actor_repeatedly(port: int, work: Path, kills: int, rng: random.Random) -> list[Life]:
    """`kills` lives of a real `actor --spool` each killed with SIGKILL after a random number of recorded steps
    (read from its /metrics just before the kill), then one stopped with SIGTERM, which must flush everything."""
    lives = []
    for index in range(kills + 1):
        actor = ActorProcess(port, "killed", work / "spool", free_port_pair(), work / f"actor-{index}.log",
                             "--time-scale", "10")  # fmt: skip
        target, seen = rng.randint(20, 400), [0]  # steps: a random moment of its step, seal and send cycles
        wait_until(lambda: seen.append(actor.recorded()) or seen[-1] >= target, 60,
                   what=f"actor life {index} to record {target} steps")  # fmt: skip
        if index < kills:
            actor.kill()
        else:
            assert actor.terminate() == 0, actor.text()[-2000:]
        lives.append(Life(actor.started_ms, seen[-1]))
    return lives


def life_ranges(lives: list[Life]) -> list[tuple[int, int]]:
    """Episode-number ranges of the lives (numbers start at the wall clock in ms and grow by one per episode)."""
    starts = [life.started_ms for life in lives] + [2**62]
    return list(zip(starts, starts[1:]))
