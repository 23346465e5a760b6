"""Label-to-robot-stop latency: a key typed into a real pty until the LIMO twin's stop() has returned.

The actor's control loop runs at the real LIMO rate (10 Hz, time scale 1) with a spinning stand-in
policy; keys (`s`/`f` labels, then `x` e-stops) are written to the pty master at random phases of the
control period. Two numbers per key: from the write to stop() returning (what the operator
experiences, including the pty and the console thread's wake-up), and the console's own measurement
from reading the key to stop() returning (what the status line shows).

    python -m benchmarks.operator_latency [--presses 30]
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import threading
import time

import numpy as np

from actor.console import Console
from actor.loop import ActorLoop, LoopConfig
from actor.operator import Operator, OperatorConfig
from actor.policy import ActingPolicy
from robots.sim.limo import LimoSim


class _TimedLimo(LimoSim):
    def __init__(self, **options) -> None:
        super().__init__(**options)
        self.stops: list[float] = []
        self.sent: list[float] = []

    def send_action(self, action):
        executed = super().send_action(action)
        self.sent.append(time.monotonic())
        return executed

    def stop(self) -> None:
        super().stop()
        self.stops.append(time.monotonic())


class _Spin(ActingPolicy):
    version = 1

    def act(self, observation, deterministic=False):
        return np.array([0.0, 0.6], np.float32)


def _wait(condition, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the actor loop stopped responding")
        time.sleep(0.002)


def measure(presses: int, key: str) -> tuple[list[float], list[float]]:
    master, slave = os.openpty()
    robot = _TimedLimo(max_steps=100_000)
    operator = Operator(robot.spec, robot.stop, OperatorConfig())
    loop = ActorLoop(robot, robot.task, lambda _i: None, lambda v: _Spin() if v < 1 else None, LoopConfig(), "bench",
                     operator)  # fmt: skip
    end_to_end, in_actor = [], []
    with robot, Console(operator.handle_key, fd=slave):
        robot.enable()
        runner = threading.Thread(target=loop.run, daemon=True)
        runner.start()
        for i in range(presses):
            _wait(lambda: len(robot.sent) >= 3 * (i + 1) and not operator.estopped)
            time.sleep(random.uniform(0.0, 0.1))  # a random phase of the 100 ms control period
            seen = len(operator.stop_latencies_s)
            written = time.monotonic()
            os.write(master, key.encode())
            _wait(lambda: len(operator.stop_latencies_s) > seen)
            end_to_end.append(next(s for s in robot.stops if s >= written) - written)
            in_actor.append(operator.stop_latencies_s[-1])
            if key == "x":
                os.write(master, b"c")
        loop.request_stop()
        runner.join(timeout=5)
    os.close(master)
    os.close(slave)
    return end_to_end, in_actor


def _describe(name: str, values: list[float]) -> str:
    ms = 1000 * np.asarray(values)
    return f"{name:<34} median {np.median(ms):6.2f} ms  p95 {np.percentile(ms, 95):6.2f} ms  max {ms.max():6.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presses", type=int, default=30)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # the operator's per-key log lines would drown the result
    for key, what in (("s", "success label"), ("x", "e-stop")):
        end_to_end, in_actor = measure(args.presses, key)
        print(f"{what} ({args.presses} presses, LIMO twin at 10 Hz = 100 ms period)")
        print("  " + _describe("pty write -> robot.stop() returned", end_to_end))
        print("  " + _describe("key read -> robot.stop() returned", in_actor))


if __name__ == "__main__":
    main()
