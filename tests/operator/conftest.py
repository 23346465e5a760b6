"""An in-process operator rig: the real control loop on the LIMO MuJoCo twin, keys typed into a real pty,
transitions over real ZeroMQ into a real learner server.

The robot is a `LimoSim` that also notes, with timestamps, every action it executed and every stop,
so tests can say exactly when the robot stopped relative to the key that asked for it.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field

import numpy as np
import pytest

from actor.console import Console
from actor.loop import ActorLoop, LoopConfig
from actor.operator import Operator, OperatorConfig
from actor.policy import ActingPolicy
from actor.sender import Sender
from common.protocol import EpisodeSummary, Hello
from learner.server import LearnerServer
from robots.sim.limo import LimoSim
from tests.conftest import wait_until
from tests.integration.test_transport import Store

TIME_SCALE = 1.0  # the twin at its real 10 Hz: one control period is 100 ms, as on the real LIMO


class ObservedLimo(LimoSim):
    """The LIMO twin, noting (time, executed action) of every send_action and the time of every stop()."""

    def __init__(self, **options) -> None:
        super().__init__(**options)
        self.sent: list[tuple[float, np.ndarray]] = []
        self.stops: list[float] = []
        self.resets = 0

    def send_action(self, action: np.ndarray) -> np.ndarray:
        executed = super().send_action(action)
        self.sent.append((time.monotonic(), executed.copy()))
        return executed

    def stop(self) -> None:
        super().stop()
        self.stops.append(time.monotonic())

    def reset(self, layout=None):
        self.resets += 1
        return super().reset(layout)


class SpinPolicy(ActingPolicy):
    """A stand-in for learned weights: turn on the spot (never reaches the goal, never leaves the arena)."""

    version = 7

    def act(self, observation, deterministic: bool = False) -> np.ndarray:
        return np.array([0.0, 0.6], dtype=np.float32)


@dataclass
class Rig:
    robot: ObservedLimo
    operator: Operator
    loop: ActorLoop
    master: int
    store: Store
    summaries: list[EpisodeSummary] = field(default_factory=list)

    def press(self, keys: str) -> float:
        """Type `keys` into the terminal; returns when they were written (monotonic)."""
        os.write(self.master, keys.encode())
        return time.monotonic()

    def columns(self, name: str) -> np.ndarray:
        """Everything the learner stored under column `name`, in arrival order."""
        with self.store.lock:
            parts = [c[name] for c in self.store.columns.get("op", [])]
        return np.concatenate(parts) if parts else np.zeros(0)

    def wait_steps(self, count: int, what: str = "control steps") -> None:
        """Wait until the robot executed `count` more actions."""
        target = len(self.robot.sent) + count
        wait_until(lambda: len(self.robot.sent) >= target, 10, what)

    def wait_episodes(self, count: int) -> EpisodeSummary:
        """Wait until the learner heard of `count` finished episodes; returns the last."""
        wait_until(lambda: len(self.summaries) >= count, 10, f"{count} episode summaries at the learner")
        return self.summaries[count - 1]


@pytest.fixture
def rig(port):
    master, slave = os.openpty()
    store, summaries = Store(), []
    robot = ObservedLimo(max_steps=10_000)
    server = LearnerServer("127.0.0.1", port, robot.spec, store, on_episode=lambda _a, s: summaries.append(s)).start()
    spec = robot.spec
    sender = Sender("127.0.0.1", port, Hello("op", spec.name, spec.spec_hash, spec.to_json())).start()
    operator = Operator(spec, robot.stop, OperatorConfig(hold_s=0.3))
    policy = SpinPolicy()
    loop = ActorLoop(robot, robot.task, sender.submit, lambda v: policy if v < policy.version else None,
                     LoopConfig(time_scale=TIME_SCALE), "op", operator)  # fmt: skip
    console = Console(operator.handle_key, fd=slave)
    wait_until(sender.connected.is_set, 10, "the actor's handshake with the learner")
    runner = threading.Thread(target=loop.run, daemon=True)
    with robot, console:
        robot.enable()
        runner.start()
        rig = Rig(robot, operator, loop, master, store, summaries)
        try:
            rig.wait_steps(3, "the loop to start acting")
            yield rig
        finally:
            loop.request_stop()
            runner.join(timeout=10)
    sender.close(flush_timeout_s=5)
    server.close()
    os.close(master)
    os.close(slave)
