"""`actor --robot NAME --check [--move]`: the first thing to run on a new robot.

Connects, prints the spec, streams N observations with their rates, read latencies and (for drivers with a
camera) frame ages, and moves only with `--move`: a small motion along the first action axis (a tenth of
its bound, half a second) and back, then a stop. No learner, no policy, no data recorded.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from robots.base import Robot, RobotError

MOVE_FRACTION = 0.1  # of the action bound
MOVE_SECONDS = 0.5  # each way


def run_check(robot: Robot, observations: int = 20, move: bool = False, out: Callable[[str], None] = print) -> int:
    """Check `robot` as described in the module docstring; returns a process exit code (0: all good)."""
    spec = robot.spec
    out(f"robot {spec.name}  spec {spec.spec_hash}  control {spec.control_hz:g} Hz")
    for key, item in spec.observation.items():
        out(f"  observation {key}: {item.dtype}{list(item.shape)}")
    action = spec.action
    out(f"  action: {action.dtype}{list(action.shape)} low {list(action.low)} high {list(action.high)}"
        f" ({spec.metadata.get('action_units', '?')})")
    try:
        robot.connect()
        try:
            _stream(robot, observations, out)
            if move:
                _move_and_back(robot, out)
            else:
                out("not moving (add --move for a small motion and back)")
        finally:
            robot.stop()
            robot.disconnect()
    except RobotError as exc:
        out(f"CHECK FAILED: {exc}")
        return 1
    out("check passed")
    return 0


def _stream(robot: Robot, count: int, out: Callable[[str], None]) -> None:
    period = 1.0 / robot.spec.control_hz
    latencies, stamps = [], []
    camera = getattr(robot, "camera", None)
    ages = []
    next_tick = time.monotonic()
    pacer = _Pacer()
    for index in range(count):
        started = time.monotonic()
        observation = robot.get_observation()
        latencies.append(time.monotonic() - started)
        stamps.append(started)
        robot.spec.validate_observation(observation)
        if camera is not None and hasattr(camera, "frame_age_s"):
            ages.append(camera.frame_age_s())
        if index < 3 or index == count - 1:
            summary = "  ".join(f"{key} {value.dtype}{list(value.shape)} [{value.min():.3g}, {value.max():.3g}]"
                                for key, value in observation.items())
            out(f"  obs {index}: {summary}")
        next_tick += period
        pacer.wait_until(next_tick)
    rate = (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 else float("nan")
    out(f"{count} observations at {rate:.1f} Hz; read latency ms median {np.median(latencies) * 1e3:.1f}"
        f" max {max(latencies) * 1e3:.1f}")
    if ages:
        out(f"camera frame age ms median {np.median(ages) * 1e3:.1f} max {max(ages) * 1e3:.1f}")


def _move_and_back(robot: Robot, out: Callable[[str], None]) -> None:
    spec = robot.spec
    robot.enable()
    steps = max(1, round(MOVE_SECONDS * spec.control_hz))
    forward = np.zeros(spec.action.shape, dtype=spec.action.dtype)
    forward[0] = MOVE_FRACTION * spec.action.high_array[0]
    pacer, next_tick = _Pacer(), time.monotonic()
    for direction, label in ((1.0, "forward"), (-1.0, "back")):
        executed = None
        for _ in range(steps):
            executed = robot.send_action(direction * forward)
            next_tick += 1.0 / spec.control_hz
            pacer.wait_until(next_tick)
        out(f"  moved {label}: {steps} steps of {np.round(executed, 4).tolist()}")
    robot.stop()
    watchdog = getattr(robot, "watchdog", None)
    trips = f", watchdog stops {watchdog.trips}" if watchdog is not None else ""
    out(f"stopped{trips}")


class _Pacer:
    """Waits until a monotonic time (an Event nobody sets: an interruptible, non-spinning wait)."""

    def __init__(self) -> None:
        import threading

        self._never = threading.Event()

    def wait_until(self, deadline: float) -> None:
        self._never.wait(max(0.0, deadline - time.monotonic()))
