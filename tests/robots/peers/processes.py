"""The parent side of the peers that run as their own processes (unitree_robot.py, franka_peer.py): start
them, read their `PEER {...}` records, pause and resume them. Used by the driver tests and by
benchmarks/watchdog_latency.py. The peers timestamp what they receive with their monotonic clock, the
same clock (CLOCK_MONOTONIC) as the test process's time.monotonic()."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

UNITREE_SCRIPT = Path(__file__).parent / "unitree_robot.py"
FRANKA_SCRIPT = Path(__file__).parent / "franka_peer.py"
WAIT_S = 5.0  # generous bound for a message to cross processes on a loaded 2-core machine
MOTION = {"go2": "Move", "g1": "SetVelocity"}
STOP = {"go2": "StopMove", "g1": "SetVelocity"}


class UnitreePeer:
    """The fake robot process and the requests it logged."""

    def __init__(self, robot: str, domain: int) -> None:
        self.robot = robot
        self.domain = domain
        self.process: subprocess.Popen | None = None
        self.records: queue.Queue = queue.Queue()

    def start(self) -> "UnitreePeer":
        self.process = subprocess.Popen(
            [sys.executable, str(UNITREE_SCRIPT), "--robot", self.robot, "--domain", str(self.domain),
             "--interface", "lo"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)
        threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True).start()
        ready = self.next(timeout=30.0)
        assert ready.get("event") == "ready", ready
        return self

    def _read(self, stream) -> None:
        for line in stream:
            start = line.find("PEER ")  # the SDK prints without newlines sometimes; our records start a line
            if start >= 0:
                self.records.put(json.loads(line[start + 5:]))

    def next(self, timeout: float = WAIT_S) -> dict:
        return self.records.get(timeout=timeout)

    def drain(self) -> list[dict]:
        drained = []
        while True:
            try:
                drained.append(self.records.get_nowait())
            except queue.Empty:
                return drained

    def until(self, predicate, timeout: float = WAIT_S) -> list[dict]:
        """Records up to and including the first one matching `predicate`."""
        got, deadline = [], time.monotonic() + timeout
        while True:
            record = self.records.get(timeout=max(0.0, deadline - time.monotonic()))
            got.append(record)
            if predicate(record):
                return got

    def pause(self) -> None:
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
            self.process.wait(timeout=10)


def is_stop(robot: str, record: dict) -> bool:
    if robot == "go2":
        return record.get("name") == "StopMove"
    return record.get("name") == "SetVelocity" and record["param"]["velocity"] == [0.0, 0.0, 0.0]


def is_move(robot: str, record: dict) -> bool:
    return record.get("name") == MOTION[robot] and not is_stop(robot, record)


def command_of(robot: str, record: dict) -> list[float]:
    param = record["param"]
    return [param["x"], param["y"], param["z"]] if robot == "go2" else param["velocity"]


class FrankaPeer:
    """The franky-sim process, its stdin for queries and its PEER records."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.process = subprocess.Popen([sys.executable, str(FRANKA_SCRIPT), "--hostname", host],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                        text=True, bufsize=1)
        self.records: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        ready = self.records.get(timeout=60.0)
        assert ready["event"] == "ready" and ready["hostname"] == host, ready

    def _read(self) -> None:
        for line in self.process.stdout:
            start = line.find("PEER ")
            if start >= 0:
                self.records.put(json.loads(line[start + 5:]))

    def ask(self, command: str) -> dict:
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self.records.get(timeout=WAIT_S)

    def pause(self) -> None:
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def close(self) -> None:
        self.process.send_signal(signal.SIGCONT)
        self.process.kill()
        self.process.wait(timeout=10)


def franka_stop_latency(trace, last_sent: float) -> float:
    """Seconds from `last_sent` until the commanded speed leaves its cruise level for good (the stop begins)."""
    speeds = [(t, float(np.linalg.norm(v))) for t, *v in trace]
    level = [s for t, s in speeds if t <= last_sent][-1]
    return max(t for t, s in speeds if t > last_sent and s >= 0.9 * level) - last_sent
