"""Chaos soak of the actor-learner link on loopback: kills, stalls and floods, then the figures of issue 5.

    python -m benchmarks.chaos --quick                  # K=5 learner kills, 3 actor kills, ~2-3 minutes
    python -m benchmarks.chaos                          # K=20 learner kills, 5 actor kills, 10 s SIGSTOP
    python -m benchmarks.chaos --learner training --kills 3 --phases kills   # kills mid-training, mid-checkpoint

Real processes and sockets throughout. The learner is the real `learner` CLI restarted with `--resume`
(~10-20 s to start on a busy box, torch's import mostly); by default it serves and persists without
training, with `--learner training` it trains and checkpoints every 20 updates, so kills also land
mid-checkpoint. For the learner phases the actor side is an in-process `Sender` fed by a 50 Hz control
loop (`RateLimiter`) that never touches the network; its transitions carry unique markers, so lost and
duplicated are exact: lost = markers submitted but not in the learner's durable replay, duplicated =
markers stored twice. The actor phase kills the real `actor --spool` (`benchmarks/actor_kills.py`).

Figures (printed at the end):
  1. learner kill -9 at random moments (K times): lost, duplicated; reconnect time (learner ready ->
     first ack) p50/p99; control-loop period p99 while the learner was down, against nominal;
  2. learner SIGSTOP for S seconds: control-loop period p99 meanwhile, lost, duplicated afterwards;
  3. actor kill -9 (`actor --spool`) K_a times: lost (steps recorded but not stored, holes in episodes),
     duplicated, episodes whose end flag is wrong;
  4. a 10x flood with the learner stopped: actor RSS growth against the stated bound, every drop counted;
  5. replay restore: transitions and content hash of the durable replay against the actor's truth;
  6. with `--phases ...,period`: the real actor's control period on every twin through weight swaps, a
     reconnect storm, a learner outage and a full spool, beside a bare loop (benchmarks/control_period.py).
Asserts nothing about time; it reports.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import signal
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from actor.sender import Sender, SenderConfig
from benchmarks import control_period
from common.timing import RateLimiter
from common.ports import free_port_pair
from tests.faults.processes import (
    LearnerProcess,
    audit_episodes,
    hello,
    journal_columns,
    journal_markers,
    kill_actor_repeatedly,
    learner_command,
    life_ranges,
    transition,
)

CONTROL_HZ = 50.0


class ControlLoop:
    """A 50 Hz loop submitting one numbered transition per tick; records each period and when it happened."""

    def __init__(self, sender: Sender, hz: float = CONTROL_HZ) -> None:
        self.sender, self.hz = sender, hz
        self.next = 0
        self.dropped = 0
        self.periods: list[tuple[float, float]] = []  # (time, period)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "ControlLoop":
        self._thread.start()
        return self

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(timeout=5)
        return self.next

    def _run(self) -> None:
        rate = RateLimiter(self.hz)
        while not self._stop.is_set():
            if self.sender.submit(transition(self.next)):
                self.next += 1
            else:
                self.dropped += 1
            rate.wait()
            self.periods.append((time.monotonic(), rate.last_period_s))

    def period_p99(self, windows: list[tuple[float, float]]) -> float:
        inside = [p for t, p in self.periods if any(a <= t <= b for a, b in windows)]
        return float(np.percentile(inside, 99)) if inside else float("nan")


def wait_for(condition, timeout_s: float, poll_s: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(poll_s)
    return False


def loss(run_dir: Path, actor_id: str, total: int, base: int = 0) -> tuple[int, int, list[int]]:
    stored = [m for m in journal_markers(run_dir, actor_id) if base <= m < base + 10**6]
    return total - len(set(stored)), len(stored) - len(set(stored)), stored


def learner_kills(work: Path, kills: int, command, rng: random.Random) -> dict:
    port, run_dir = free_port_pair(), work / "kills"
    learner = LearnerProcess(port, run_dir, command=command)
    learner.wait_listening(300)
    sender = Sender("127.0.0.1", port, hello("chaos"), SenderConfig(batch_size=16, flush_interval_s=0.1)).start()
    loop = ControlLoop(sender).start()
    reconnects, outages, mid_checkpoint = [], [], 0
    for i in range(kills):
        acked = sender.acked_transitions
        wait_for(lambda: sender.acked_transitions > acked, 60)
        time.sleep(rng.uniform(0.2, 2.0))  # a random moment of the receive/persist/ack (or checkpoint) cycle
        down = time.monotonic()
        learner.kill()
        mid_checkpoint += any((run_dir / "checkpoints").glob(".tmp-*"))  # the kill interrupted a save
        time.sleep(rng.uniform(0.0, 1.0))  # how long the learner stays dead: part of the chaos, not a sync
        learner = LearnerProcess(port, run_dir, resume=True, command=command)
        ready = learner.wait_listening(300)
        acked = sender.acked_transitions
        if wait_for(lambda: sender.acked_transitions > acked, 30):
            reconnects.append(time.monotonic() - ready)
        outages.append((down, time.monotonic()))
        print(f"  learner kill {i + 1}/{kills}: reconnected {reconnects[-1]:.2f} s after the restart", flush=True)
    total = loop.stop()
    flushed = sender.close(flush_timeout_s=60)
    learner.terminate(120)
    lost, duplicated, stored = loss(run_dir, "chaos", total)
    digest = hashlib.sha256(np.array(sorted(set(stored)), np.int64).tobytes()).hexdigest()[:16]
    truth = hashlib.sha256(np.arange(total, dtype=np.int64).tobytes()).hexdigest()[:16]
    return {"kills": kills, "kills_mid_checkpoint": mid_checkpoint, "submitted": total, "lost": lost,
            "duplicated": duplicated, "flushed": flushed,
            "reconnect_p50_s": float(np.percentile(reconnects, 50)),
            "reconnect_p99_s": float(np.percentile(reconnects, 99)),
            "reconnect_max_s": max(reconnects), "period_p99_outage_s": loop.period_p99(outages),
            "period_p99_whole_run_s": loop.period_p99([(0.0, float("inf"))]),
            "period_nominal_s": 1 / CONTROL_HZ, "dropped_at_submit": loop.dropped,
            "restore_count": len(stored), "restore_hash": digest, "truth_hash": truth}  # fmt: skip


def learner_stall(work: Path, seconds: float) -> dict:
    port, run_dir = free_port_pair(), work / "stall"
    learner = LearnerProcess(port, run_dir)
    learner.wait_listening(300)
    sender = Sender("127.0.0.1", port, hello("stall"), SenderConfig(batch_size=16, flush_interval_s=0.1)).start()
    loop = ControlLoop(sender).start()
    wait_for(lambda: sender.acked_transitions > 50, 30)
    start = time.monotonic()
    learner.process.send_signal(signal.SIGSTOP)
    time.sleep(seconds)  # the stall being measured
    learner.process.send_signal(signal.SIGCONT)
    end = time.monotonic()
    wait_for(sender.connected.is_set, 30)
    total = loop.stop()
    sender.close(flush_timeout_s=60)
    learner.terminate(120)
    lost, duplicated, _ = loss(run_dir, "stall", total)
    return {"stop_s": seconds, "submitted": total, "lost": lost, "duplicated": duplicated,
            "period_p99_during_s": loop.period_p99([(start, end)]), "dropped_at_submit": loop.dropped}  # fmt: skip


def actor_kills(work: Path, kills: int, rng: random.Random) -> dict:
    port, run_dir = free_port_pair(), work / "actor-kills"
    learner = LearnerProcess(port, run_dir)
    learner.wait_listening(300)
    lives = kill_actor_repeatedly(port, work, kills, rng)
    learner.terminate(120)
    columns = journal_columns(run_dir, "killed", ("episode", "step", "terminated", "truncated"))
    audit = audit_episodes(columns)
    stored = [int(np.sum((columns["episode"] >= a) & (columns["episode"] < b))) for a, b in life_ranges(lives)]
    lost = [max(0, life.recorded - count) for life, count in zip(lives, stored)]
    return {"kills": kills, "lost_per_kill": lost[:-1], "lost_after_clean_stop": lost[-1],
            "holes_in_episodes": audit.missing, "duplicated": audit.duplicated,
            "bad_endings": len(audit.bad_endings)}  # fmt: skip


def flood(work: Path, seconds: float) -> dict:
    """10x the nominal rate into a sender whose learner is stopped: memory stays bounded, drops are counted."""
    port, run_dir = free_port_pair(), work / "flood"
    learner = LearnerProcess(port, run_dir)
    learner.wait_listening(300)
    config = SenderConfig(batch_size=16, queue_size=1_000, max_unacked_batches=64)
    sender = Sender("127.0.0.1", port, hello("flood"), config).start()
    wait_for(sender.connected.is_set, 30)
    learner.process.send_signal(signal.SIGSTOP)
    rss_before = _rss()
    submitted = accepted = 0
    deadline = time.monotonic() + seconds
    rate = RateLimiter(10 * CONTROL_HZ)  # 10x the nominal rate
    while time.monotonic() < deadline:
        submitted += 1
        accepted += sender.submit(transition(submitted))
        rate.wait()
    rss_after = _rss()
    dropped = submitted - accepted
    learner.process.send_signal(signal.SIGCONT)
    sender.close(flush_timeout_s=30)
    learner.terminate(60)
    bound = config.queue_size + (config.max_unacked_batches + 1) * config.batch_size
    return {"submitted": submitted, "accepted": accepted, "dropped_counted": dropped,
            "accepted_plus_dropped_equals_submitted": accepted + dropped == submitted,
            "rss_growth_mb": (rss_after - rss_before) / 2**20, "bound_transitions": bound}  # fmt: skip


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="K=5, 3 actor kills, 3 s stop, 5 s flood")
    parser.add_argument("--kills", type=int, default=None)
    parser.add_argument("--actor-kills", type=int, default=None)
    parser.add_argument("--stop-seconds", type=float, default=None)
    parser.add_argument("--learner", choices=["idle", "training"], default="idle",
                        help="the real learner CLI serving only, or training and checkpointing every 20 updates")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--phases", default="kills,stop,actor,flood",
                        help="comma-separated subset to run; 'period' adds benchmarks/control_period.py's windows")
    args = parser.parse_args()
    kills = args.kills or (5 if args.quick else 20)
    actor_kill_count = args.actor_kills if args.actor_kills is not None else (3 if args.quick else 5)
    stop_s = args.stop_seconds or (3.0 if args.quick else 10.0)
    command = learner_command if args.learner == "idle" else _training_learner
    rng = random.Random(args.seed)
    phases = set(args.phases.split(","))
    figures = {}
    with tempfile.TemporaryDirectory(prefix="tandem-chaos-") as tmp:
        work = Path(tmp)
        if "kills" in phases:
            print(f"1. learner kill -9 x{kills} ({args.learner})", flush=True)
            figures["learner_kills"] = learner_kills(work, kills, command, rng)
        if "stop" in phases:
            print(f"2. learner SIGSTOP {stop_s:.0f} s", flush=True)
            figures["learner_sigstop"] = learner_stall(work, stop_s)
        if "actor" in phases:
            print(f"3. actor kill -9 x{actor_kill_count} with a spool", flush=True)
            figures["actor_kills"] = actor_kills(work, actor_kill_count, rng)
        if "flood" in phases:
            print("4. 10x flood with the learner stopped", flush=True)
            figures["flood"] = flood(work, 5.0 if args.quick else 10.0)
        if "period" in phases:  # not in the default phases: ~4 minutes per twin
            print("5. the real actor's control period on every twin (benchmarks/control_period.py)", flush=True)
            period = control_period.measure(control_period.ROBOTS, 10.0 if args.quick else 30.0, work / "period")
    print("\n=== chaos figures ===")
    for name, values in figures.items():
        print(name)
        for key, value in values.items():
            print(f"  {key}: {value:.3f}" if isinstance(value, float) else f"  {key}: {value}")
    if "period" in phases:
        print(control_period.table(period))


def _training_learner(port: int, run_dir: Path, resume: bool) -> list[str]:
    command = learner_command(port, run_dir, resume)
    command[command.index("--learning-starts") + 1] = "64"
    command[command.index("--checkpoint-every") + 1] = "20"  # kills land mid-checkpoint too
    return command + ["--set", "hidden_dims=32,32", "--set", "batch_size=16"]


if __name__ == "__main__":
    main()
