"""A simulated Franka on loopback: franky-sim's MuJoCo simulator behind its libfranka-protocol server
(TCP 1337 + UDP for the arm, TCP 1338 for the hand), bound to one 127.x.y.z address, with a recorder on
what the server hands to the simulator, so tests can check what actually reached the "robot".

    python tests/robots/peers/franka_peer.py --hostname 127.0.7.1

stdout: `PEER {"event": "ready", ...}` once the server listens. stdin: one command per line, answered on
stdout by one `PEER {...}` line:
  stats  -> {"event": "stats", "velocity_commands": n, "max_abs_linear": [x, y, z], "nonfinite": k,
             "last_linear": [...], "hand_goals": [[width, speed], ...], "trace": [[t, vx, vy, vz], ...],
             "holds": [t, ...]}
            (trace: the commanded linear velocity at most every 2 ms with the peer's monotonic time,
             for the last 3 s; holds: when the simulator went from following velocity commands to holding
             a joint position, as franky-sim does when a motion ends or its client's connection closes)
  reset  -> clears the statistics; answers {"event": "reset"}
"""

from __future__ import annotations

import argparse
import collections
import json
import logging
import sys
import threading
import time

import numpy as np
from franky_sim import SimulationServer
from franky_sim.mujoco_simulator import MujocoSimulator


def emit(record: dict) -> None:
    sys.stdout.write("PEER " + json.dumps(record) + "\n")
    sys.stdout.flush()


class CommandRecorder:
    """Wraps the simulated robot's Cartesian velocity controller and gripper goal to record their inputs."""

    def __init__(self, robot) -> None:
        self.lock = threading.Lock()
        self._reset()
        velocity_control, hand_goal = robot.cartesian_velocity_control, robot.set_hand_goal
        position_control = robot.joint_position_control

        def recorded_velocity_control(target_vel, *args, **kwargs):
            linear = np.asarray(target_vel, dtype=np.float64)[:3]
            with self.lock:
                self.count += 1
                if not np.all(np.isfinite(linear)):
                    self.nonfinite += 1
                else:
                    self.max_abs = np.maximum(self.max_abs, np.abs(linear))
                self.last = linear
                self._following_velocity = True
                now = time.monotonic()
                if now - self._last_trace >= 0.002:
                    self.trace.append((now, *linear.tolist()))
                    self._last_trace = now
            return velocity_control(target_vel, *args, **kwargs)

        def recorded_position_control(target_q, *args, **kwargs):
            with self.lock:
                if self._following_velocity:  # the first joint-position step after velocity commands
                    self.holds.append(time.monotonic())
                    self._following_velocity = False
            return position_control(target_q, *args, **kwargs)

        def recorded_hand_goal(width, speed, force):
            with self.lock:
                self.hand_goals.append((float(width), float(speed)))
            return hand_goal(width, speed, force)

        robot.cartesian_velocity_control = recorded_velocity_control
        robot.set_hand_goal = recorded_hand_goal
        robot.joint_position_control = recorded_position_control

    def _reset(self) -> None:
        self.count = self.nonfinite = 0
        self.max_abs = np.zeros(3)
        self.last = np.zeros(3)
        self.hand_goals: list[tuple[float, float]] = []
        self.trace: collections.deque = collections.deque(maxlen=1500)
        self._last_trace = 0.0
        self.holds: list[float] = []
        self._following_velocity = False

    def reset(self) -> None:
        with self.lock:
            self._reset()

    def stats(self) -> dict:
        with self.lock:
            return {"event": "stats", "velocity_commands": self.count, "max_abs_linear": self.max_abs.tolist(),
                    "nonfinite": self.nonfinite, "last_linear": self.last.tolist(),
                    "hand_goals": self.hand_goals, "trace": list(self.trace),
                    "holds": list(self.holds)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hostname", default="127.0.0.1")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with MujocoSimulator(enable_visualization=False) as sim:
        robot = sim.add_robot()
        recorder = CommandRecorder(robot)
        with SimulationServer(sim, hostname_candidates=[args.hostname]) as server:
            server.run_async()
            emit({"event": "ready", "hostname": robot.hostname, "t": time.monotonic()})
            for line in sys.stdin:
                command = line.strip()
                if command == "stats":
                    emit(recorder.stats())
                elif command == "reset":
                    recorder.reset()
                    emit({"event": "reset"})
                elif command == "quit":
                    break


if __name__ == "__main__":
    main()
