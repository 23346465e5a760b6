"""A fleet of real actors through a learner kill -9 and `learner --resume`: how soon each is acked again.

    python -m benchmarks.fleet_restart                 # 1 actor, then 8, each at --time-scale 20 (~5 minutes)
    python -m benchmarks.fleet_restart --fleets 1,4,8 --time-scale 10 --down 20

For each fleet size: the real `learner` (serving only, CURVE keys as on a Ray fleet) and N real
`actor --robot fake --spool` processes run for `--warmup` seconds, the learner is killed with SIGKILL, stays
down `--down` seconds (a Ray restart plus the learner's imports took ~20 s in CI) and is started again with
--resume on its run directory. From the moment the new learner listens, each actor's spool is read (its
`acked` file, written when the learner's ack arrives) every 0.2 s for `--watch` seconds:

  first ack  seconds from "listening" to that actor's first new ack (median and worst over the fleet);
  stall      the longest time the actor's acks did not move in the window (an actor can be acked once and
             then stall: that was the failure), worst over the fleet;
  stuck      actors whose acks stood still for 10 s or more of the window;
  acked      batches acked to the actor in the window (least and most over the fleet);
  reconnects "reconnecting" lines in each actor's log from the kill on (a learner back within the actor's
             3 s liveness window is met again without one: its first batch gets a rehello).

The one-actor fleet is the baseline measured in the same run: the difference is what the fleet's load adds.
Asserts nothing; it reports. (Session 15 found with this setup, before its fixes, 3 of 8 actors stuck for
good, each reconnecting every 3 s: `actor/sender.py`'s module docstring says why.)
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from common.ports import free_port_pair
from learner.keys import create_actor_keys, create_learner_keys
from tests.faults.processes import ActorProcess, LearnerProcess, learner_command


STUCK_S = 10.0  # acks standing still this long count an actor as stuck


def acked(spool: Path) -> int:
    """The highest batch the learner acked to the actor spooling in `spool` (0 before the first)."""
    try:
        return int((spool / "acked").read_text())
    except (FileNotFoundError, ValueError):
        return 0


def restart_fleet(work: Path, size: int, args: argparse.Namespace) -> dict:
    """Run `size` actors, kill -9 and resume the learner; how each actor's acks moved afterwards."""
    port, run_dir, keys = free_port_pair(), work / "run", work / "keys"
    create_learner_keys(keys)
    names = [f"fleet-{i}" for i in range(size)]
    for name in names:
        create_actor_keys(keys, name)

    def command(port: int, run_dir: Path, resume: bool) -> list[str]:
        return [*learner_command(port, run_dir, resume), "--keys", str(keys)]

    learner = LearnerProcess(port, run_dir, command=command)
    learner.wait_listening(300)
    actors = [ActorProcess(port, name, work / f"spool-{i}", 0, work / f"actor-{i}.log", "--keys",
                           str(keys / "actors" / name), "--time-scale", str(args.time_scale), "--batch-size", "8")
              for i, name in enumerate(names)]  # fmt: skip
    try:
        time.sleep(args.warmup)  # the fleet's steady state before the kill: a duration of the scenario, not a sync
        log_sizes = [actor.log_path.stat().st_size for actor in actors]
        learner.kill()
        time.sleep(args.down)  # how long the learner stays dead: part of the scenario
        learner = LearnerProcess(port, run_dir, resume=True, command=command)
        ready = learner.wait_listening(300)
        start = [acked(work / f"spool-{i}") for i in range(size)]
        last, moved_at = list(start), [ready] * size
        first: list[float | None] = [None] * size
        stall = [0.0] * size
        while (now := time.monotonic()) - ready < args.watch:
            for i in range(size):
                seq = acked(work / f"spool-{i}")
                if seq > last[i]:
                    first[i] = now - ready if first[i] is None else first[i]
                    last[i], moved_at[i] = seq, now
                stall[i] = max(stall[i], now - moved_at[i])
            time.sleep(0.2)  # polling files another process writes
        reconnects = [actor.text()[offset:].count("reconnecting") for actor, offset in zip(actors, log_sizes)]
    finally:
        for actor in actors:
            actor.terminate()
        learner.terminate(120)
    acked_in_window = [end - begin for end, begin in zip(last, start)]
    return {"size": size, "first": first, "stall": stall, "acked": acked_in_window, "reconnects": reconnects}


def report(result: dict) -> str:
    firsts = [seconds for seconds in result["first"] if seconds is not None]
    median = f"{statistics.median(firsts):.1f}" if firsts else "-"
    worst = f"{max(firsts):.1f}" if len(firsts) == len(result["first"]) else "never"
    stuck = sum(seconds >= STUCK_S for seconds in result["stall"])
    acked, reconnects = result["acked"], result["reconnects"]
    return (f"{result['size']:>5} {median:>15} {worst:>14} {max(result['stall']):>11.1f} {stuck:>6} "
            f"{min(acked):>8}-{max(acked):<8} {min(reconnects)}-{max(reconnects)}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fleets", default="1,8", help="fleet sizes, comma-separated (the first is the baseline)")
    parser.add_argument("--warmup", type=float, default=30.0, help="seconds the fleet runs before the kill")
    parser.add_argument("--watch", type=float, default=60.0, help="seconds the acks are watched after the restart")
    parser.add_argument("--time-scale", type=float, default=20.0, help="the fake robots' speed-up")
    parser.add_argument("--down", type=float, default=10.0, help="seconds the learner stays dead")
    args = parser.parse_args()
    results = []
    for size in (int(part) for part in args.fleets.split(",")):
        with tempfile.TemporaryDirectory(prefix="tandem-fleet-restart-") as tmp:
            results.append(restart_fleet(Path(tmp), size, args))
        print(f"fleet of {size}: {results[-1]}", flush=True)
    print(f"\n{'fleet':>5} {'first ack med s':>15} {'first ack max':>14} {'max stall s':>11} {'stuck':>6} "
          f"{'acked batches':>17} reconnects")
    for result in results:
        print(report(result))
    print(f"(seconds from the resumed learner listening to each actor's first new ack; time-scale {args.time_scale},"
          f" down {args.down:.0f} s, warm-up {args.warmup:.0f} s)")


if __name__ == "__main__":
    main()
