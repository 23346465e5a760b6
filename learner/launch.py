"""Where a run's actor processes run, kept apart from building the run (learner/app.py).

A run is built the same way wherever its processes go: the learner builds spec, algorithm, replay and
server, and a launcher starts `actor` processes against it. `ActorProcess` says what to start (robot,
actor id, arguments), never where; a launcher starts it and hands back a handle (`alive`, `stop`, `tail`).

- `LocalLauncher` (the one-machine default: `learner --local-actor ROBOT`, `--fleet ROBOT=N`): children of
  the learner on this machine, over loopback ZeroMQ, tied to its life (`--parent-pid`) so a killed learner
  leaves no orphan. Stopping sends SIGINT first (the actor stops its robot and flushes), then kills.
- `deploy/ray`'s RayLauncher (`learner --launcher ray`): the same commands as Ray actors spread over a
  cluster's nodes and restarted by Ray, with the learner itself placed on a GPU node.

Either way the actors are the program a robot runs, and transitions and weights go over the acked,
encrypted ZeroMQ link; nothing is shortcut.

A simulated robot draws each episode's layout (start pose, object places, course) from its `seed` option,
which an actor sets from its `--layout-seed`.
With `--layouts held-out` (the default) every actor of a run draws its own: training actor i of a run with
`--seed S` the stream 1000*S + i, so seeds differ in the episodes they train on and a fleet does not repeat
itself, and the evaluators fixed streams no training actor draws, the same in every run, so every algorithm
and seed is scored on the same held-out layouts. `--layouts shared` gives every actor the twin's default
stream (what runs did before 2026-12-08: evaluation blocks replayed the layouts training had run through).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable, Protocol

log = logging.getLogger(__name__)

LAYOUTS = ("held-out", "shared")
EVAL_LAYOUT_SEED = 1_000_000_007  # the evaluator's blocks: the same held-out layouts in every run
FINAL_LAYOUT_SEED = 1_000_000_009  # the final evaluation's: held out from training and from the blocks
_ROBOT_OPTION_FLAGS = ("-o", "--robot-option")


@dataclass(frozen=True)
class ActorProcess:
    """One `actor` command of a run: what to start, not where."""

    actor_id: str
    robot: str
    args: tuple[str, ...] = ()

    def command(self, learner_address: str, *extra: str) -> list[str]:
        """The `actor` command line against the learner at HOST:PORT (no console, no /metrics port clash)."""
        return [sys.executable, "-m", "actor", "--robot", self.robot, "--learner", learner_address,
                "--actor-id", self.actor_id, "--metrics-port", "0", "--no-console", *extra, *self.args]  # fmt: skip


def parse_fleet(groups: Iterable[str]) -> list[tuple[str, int]]:
    """`ROBOT=N` groups (N >= 1; a bare ROBOT is one) as (robot, count) pairs."""
    parsed = []
    for group in groups:
        robot, sep, count = group.partition("=")
        if not robot or (sep and not count.isdigit()) or (sep and int(count) < 1):
            raise ValueError(f"a fleet group is ROBOT=N with N >= 1, got {group!r}")
        parsed.append((robot, int(count) if sep else 1))
    return parsed


def fleet_processes(groups: Iterable[str], args: Iterable[str] = ()) -> list[ActorProcess]:
    """The fleet's actors, named ROBOT-I (I counting within the robot across groups), each given `args`."""
    seen: dict[str, int] = {}
    processes = []
    for robot, count in parse_fleet(groups):
        for _ in range(count):
            index = seen[robot] = seen.get(robot, -1) + 1
            processes.append(ActorProcess(f"{robot}-{index}", robot, tuple(args)))
    return processes


def training_layout_seed(run_seed: int, index: int) -> int:
    """The layout stream of a run's training actor `index` (0 the first); distinct for up to 1,000 actors."""
    return 1000 * run_seed + index


def with_layout_seed(process: ActorProcess, seed: int) -> ActorProcess:
    """`process` drawing its episode layouts from `seed` (`actor --layout-seed`: a real robot ignores it)."""
    return replace(process, args=(*process.args, "--layout-seed", str(seed)))


def with_training_layouts(processes: list[ActorProcess], run_seed: int) -> list[ActorProcess]:
    """Training actors, each drawing its own layout stream (see the module docstring)."""
    return [with_layout_seed(p, training_layout_seed(run_seed, i)) for i, p in enumerate(processes)]


def check_layouts(layouts: str, actor_args: Iterable[str]) -> None:
    """A ValueError for an unknown `layouts`, or for a `-o seed=` in the actors' arguments that would give
    every actor the same stream while `held-out` layouts were asked for."""
    if layouts not in LAYOUTS:
        raise ValueError(f"--layouts is one of {', '.join(LAYOUTS)}, got {layouts!r}")
    args = list(actor_args)
    options = [b for a, b in zip(args, args[1:]) if a in _ROBOT_OPTION_FLAGS]
    options += [a.partition("=")[2] for a in args if a.startswith("--robot-option=")]
    if layouts == "held-out" and any(option.startswith("seed=") for option in options):
        raise ValueError("with --layouts held-out each actor's layout seed comes from --seed and its role; drop the "
                         "actors' -o seed=..., or pass --layouts shared to give every actor that one stream")


class ActorHandle(Protocol):
    """A started actor process, wherever it runs."""

    actor_id: str

    def alive(self) -> bool: ...

    def stop(self, grace_s: float = 15.0) -> int | None: ...

    def tail(self, lines: int = 20) -> str: ...


class Launcher(Protocol):
    """Starts a run's actor processes somewhere."""

    def start(self, process: ActorProcess, learner_address: str) -> ActorHandle: ...


class LocalLauncher:
    """Actors as children of this process, logging to `log_dir/actor-ID.log`."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir

    def start(self, process: ActorProcess, learner_address: str) -> LocalActor:
        return LocalActor(process, learner_address, self.log_dir)


class LocalActor:
    """One `actor` subprocess on this machine, ended with this process even by `kill -9`."""

    def __init__(self, process: ActorProcess, learner_address: str, log_dir: Path) -> None:
        self.actor_id = process.actor_id
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"actor-{process.actor_id}.log"
        command = process.command(learner_address, "--parent-pid", str(os.getpid()))
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
