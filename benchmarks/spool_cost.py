"""What `--spool` costs the control loop: the recorder's hold + submit per step, with and without the spool.

    python -m benchmarks.spool_cost                    # 10 s per case at 50 Hz, state and 128x128 images
    python -m benchmarks.spool_cost --seconds 30 --hz 100

The control thread runs the real `Recorder` (hold + submit, as `actor/loop.py` does) at `--hz` against a
real `Sender` and an in-process learner server that acks, for: no spool; the spool with its transition
log (one write() per step) and no fsync; the spool with an fsync of each sealed batch (the default: in the
sender thread, before the batch is sent). The spool directory is on the same disk as the system temp dir
(`--dir` to choose another). Printed per case: the time `record()` takes in the control thread
(p50/p99/max, and how many steps took over 5 ms), the control period p99 against nominal, and the
fsyncs' own time in the sender thread.
Asserts nothing; it reports.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

import actor.spool as spool_module
from actor.recorder import Recorder
from actor.sender import Sender, SenderConfig
from common.protocol import Hello
from common.specs import ArraySpec, BoundedSpec, ImageSpec, RobotSpec
from common.timing import RateLimiter
from learner.server import LearnerServer
from common.ports import free_port_pair


def robot_spec(image: bool) -> RobotSpec:
    observation = {"state": ArraySpec("state", (8,), "float32")}
    if image:
        observation["image"] = ImageSpec("image", (128, 128, 3))
    action = BoundedSpec("action", (2,), "float32", low=(-1.0, -1.0), high=(1.0, 1.0))
    return RobotSpec(name="bench", observation=observation, action=action, control_hz=50.0)


def observe(spec: RobotSpec, rng: np.random.Generator) -> dict[str, np.ndarray]:
    obs = {"state": rng.standard_normal(8).astype(np.float32)}
    if "image" in spec.observation:
        obs["image"] = rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)  # incompressible, the worst case
    return obs


class TimedFsync:
    """Wraps os.fsync where the spool calls it, to report what the sender thread spends in it."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self._fsync = os.fsync

    def __call__(self, fd: int) -> None:
        start = time.perf_counter()
        self._fsync(fd)
        self.seconds.append(time.perf_counter() - start)


def run_case(spec: RobotSpec, spool_dir: str, fsync: bool, seconds: float, hz: float) -> dict:
    port = free_port_pair()
    server = LearnerServer("127.0.0.1", port, spec, lambda _actor, _columns: None).start()
    timed = TimedFsync()
    spool_module.os.fsync = timed  # the spool module's `os` is the os module: restored below
    try:
        hello = Hello("bench", spec.name, spec.spec_hash, spec.to_json())
        config = SenderConfig(spool_dir=spool_dir, spool_fsync=fsync)
        sender = Sender("127.0.0.1", port, hello, config).start()
        sender.connected.wait(10)
        recorder = Recorder(sender.submit, hold=sender.hold)
        rng = np.random.default_rng(0)
        record_s, periods = [], []
        rate = RateLimiter(hz)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            recorder.start_episode(evaluation=False)
            observation = observe(spec, rng)
            for step in range(50):
                next_observation = observe(spec, rng)
                start = time.perf_counter()
                recorder.record(observation, np.zeros(2, np.float32), 0.0, False, step == 49, next_observation, -1)
                record_s.append(time.perf_counter() - start)
                observation = next_observation
                rate.wait()
                periods.append(rate.last_period_s)
            recorder.finish_episode(False, "step_limit")
        sender.close(flush_timeout_s=30)
    finally:
        spool_module.os.fsync = timed._fsync
        server.close()
    record = np.array(record_s) * 1e3
    fsyncs = np.array(timed.seconds or [0.0]) * 1e3
    return {"steps": len(record_s), "record_p50_ms": np.percentile(record, 50),
            "record_p99_ms": np.percentile(record, 99), "record_max_ms": record.max(),
            "record_over_5ms": int(np.sum(record > 5.0)),
            "period_p99_ms": np.percentile(np.array(periods[1:]) * 1e3, 99),
            "fsyncs": len(timed.seconds), "fsync_p50_ms": np.percentile(fsyncs, 50),
            "fsync_p99_ms": np.percentile(fsyncs, 99)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--hz", type=float, default=50.0)
    parser.add_argument("--dir", default=tempfile.gettempdir(), help="where the spool goes (the robot's disk)")
    args = parser.parse_args()
    print(f"{args.hz:g} Hz, nominal period {1e3 / args.hz:.1f} ms, {args.seconds:g} s per case, spool under {args.dir}")
    header = ("observation", "spool", "steps", "record p50", "p99", "max", ">5ms", "period p99", "fsyncs", "fsync p50",
              "p99")  # fmt: skip
    print("{:<12} {:<14} {:>6} {:>10} {:>6} {:>6} {:>5} {:>10} {:>6} {:>9} {:>6}".format(*header))
    for image in (False, True):
        spec = robot_spec(image)
        cases = (("off", False, False), ("log, no fsync", True, False), ("log + fsync", True, True))
        for name, spooled, fsync in cases:
            with tempfile.TemporaryDirectory(dir=args.dir, prefix="tandem-spool-") as tmp:
                spool_dir = str(Path(tmp) / "spool") if spooled else ""
                r = run_case(spec, spool_dir, fsync, args.seconds, args.hz)
            print(f"{'128x128 rgb' if image else 'state':<12} {name:<14} {r['steps']:>6} "
                  f"{r['record_p50_ms']:>8.3f}ms {r['record_p99_ms']:>6.3f} {r['record_max_ms']:>6.2f} "
                  f"{r['record_over_5ms']:>5} "
                  f"{r['period_p99_ms']:>8.2f}ms {r['fsyncs']:>6} {r['fsync_p50_ms']:>7.2f}ms "
                  f"{r['fsync_p99_ms']:>6.2f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
