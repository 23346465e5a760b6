"""kill -9 of a driving actor, N times per driver against its protocol peer: how soon the robot's stop arrives.

Each kill starts a real actor process (tests/robots/peers/driving_actor.py: the driver built as the `actor`
CLI builds it, connected, enabled, driving one action at the control rate, its in-process watchdog at 30 s),
waits until the peer sees it move, sends SIGKILL and reads the peer's arrival stamp of the first stop after
the kill (CLOCK_MONOTONIC in both processes):

  kill -> stop     LIMO: a 0x111 frame with v = w = 0 on the pty; RM65: set_arm_slow_stop on TCP; go2/g1:
                   StopMove / SetVelocity(0) at the DDS RPC server (all sent by the supervisor of
                   robots/deadman.py); franka: franky-sim holding the arm once its client's TCP closed
                   (no supervisor). Target: 200 ms (issue 21 item 4).
  kill -> gone     until the supervisor has exited and been reaped here (this process is the child subreaper);
                   held to its stop budget, robots.deadman.STOP_BUDGET_S, after which SIGALRM ends it.

Beside them (unless --no-compare), the in-process watchdog's figure from benchmarks/watchdog_latency.py for
the same driver: last action -> stop while the actor lives but its loop is silent (deadline 200 ms). After a
kill -9 that watchdog never stops anything: it died with the actor (test_safe_stop.py's control experiment).

    python -m benchmarks.safe_stop [--kills 20] [--drivers limo,rm65,go2,g1,franka] [--no-compare]
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import tempfile
import time
from pathlib import Path

from benchmarks import watchdog_latency
from benchmarks.watchdog_latency import Figure
from robots.deadman import STOP_BUDGET_S
from tests.robots.peers.killed_actor import DrivingActor, reaping_orphans, wait_exited
from tests.robots.peers.stop_probes import QUIET_WATCHDOG_MS, FrankaProbe, LeggedProbe, LimoProbe, RM65Probe

ALL = ("limo", "rm65", "go2", "g1", "franka")
TARGET_S = 0.2
WAIT_S = 30.0
NEEDS = {"go2": "unitree_sdk2py", "g1": "unitree_sdk2py", "franka": "franky_sim", "limo": "serial"}


def make_probe(name: str, workdir: Path, domain: int):
    if name == "limo":
        return LimoProbe(workdir)
    if name == "rm65":
        return RM65Probe()
    if name == "franka":
        return FrankaProbe(f"127.{1 + os.getpid() % 250}.{(os.getpid() // 250) % 250}.3")
    return LeggedProbe(name, domain)


def kill_once(probe, log_path: Path) -> tuple[float, float | None]:
    """One actor life: drive, kill -9; (kill -> first stop at the peer, kill -> supervisor reaped or None)."""
    moved = len(probe.moves())
    actor = DrivingActor(probe.robot, {**probe.options, "watchdog_ms": QUIET_WATCHDOG_MS}, probe.drive,
                         log_path).wait_driving()
    if not probe.wait_for(lambda: len(probe.moves()) >= moved + 3, WAIT_S):
        raise RuntimeError(f"{probe.robot}: the actor's motion never reached the peer")
    killed_at = actor.kill()
    if not probe.wait_for(lambda: probe.stops_after(killed_at), WAIT_S):
        raise RuntimeError(f"{probe.robot}: no stop after the kill; the actor's log:\n{actor.log()}")
    stop_s = min(probe.stops_after(killed_at)) - killed_at
    if actor.deadman_pid is None:
        return stop_s, None
    if wait_exited(actor.deadman_pid, WAIT_S) is None:
        raise RuntimeError(f"{probe.robot}: the supervisor outlived its actor by {WAIT_S:g} s")
    return stop_s, time.monotonic() - killed_at


def kill_figures(name: str, kills: int, workdir: Path, domain: int) -> list[Figure]:
    probe = make_probe(name, workdir, domain)
    stops, gone = [], []
    try:
        for kill in range(kills):
            stop_s, gone_s = kill_once(probe, workdir / f"{name}-actor-{kill}.log")
            stops.append(stop_s)
            if gone_s is not None:
                gone.append(gone_s)
    finally:
        probe.close()
    figures = [Figure(name, "kill -> stop", stops, TARGET_S)]
    if gone:
        figures.append(Figure(name, "kill -> gone", gone, STOP_BUDGET_S))
    return figures


def watchdog_figure(name: str, trials: int, workdir: Path, domain: int) -> list[Figure]:
    """The in-process watchdog's stop figure for the same driver (benchmarks/watchdog_latency.py)."""
    deadline_ms = 200.0
    if name == "limo":
        figures = watchdog_latency.limo(trials, deadline_ms, workdir)
    elif name == "rm65":
        figures = watchdog_latency.rm65(trials, deadline_ms)
    elif name == "franka":
        figures = watchdog_latency.franka(trials, deadline_ms)
    else:
        figures = watchdog_latency.unitree(name, trials, deadline_ms, domain)
    return [figure for figure in figures if figure.what == "watchdog stop"]


def load() -> str:
    with open("/proc/loadavg") as loadavg:
        return " ".join(loadavg.read().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--drivers", default=",".join(ALL), help=f"comma-separated, of {', '.join(ALL)}")
    parser.add_argument("--no-compare", action="store_true", help="skip the in-process watchdog's figures")
    args = parser.parse_args()
    logging.basicConfig(level=logging.CRITICAL)
    chosen = [name for name in args.drivers.split(",") if name]
    if sorted(set(chosen) - set(ALL)):
        parser.error(f"unknown drivers {sorted(set(chosen) - set(ALL))}")
    domain = 229 + os.getpid() % 2  # DDS domains neither the tests (1..200) nor watchdog_latency (231, 232) use
    print(f"{args.kills} kills per driver; target kill -> stop <= {TARGET_S * 1e3:.0f} ms; load {load()} at start",
          flush=True)
    with reaping_orphans(), tempfile.TemporaryDirectory(prefix="tandem-safe-stop-") as tmp:
        for name in chosen:
            if name in NEEDS and importlib.util.find_spec(NEEDS[name]) is None:
                print(f"{name:8s} skipped: {NEEDS[name]} is not installed")
                continue
            figures = kill_figures(name, args.kills, Path(tmp), domain)
            if not args.no_compare:
                figures += watchdog_figure(name, args.kills, Path(tmp), 231 + os.getpid() % 2)
            for figure in figures:
                print(figure.row(), flush=True)
    print(f"load {load()} at end")


if __name__ == "__main__":
    main()
