"""kill -9 of a real `actor --spool` at random moments, K times, against the real learner: lost and duplicated.

    python -m benchmarks.actor_kills              # K=20 (tests/faults/test_actor_spool.py does 5)
    python -m benchmarks.actor_kills --kills 50 --seed 3

Each actor life (the fake robot at 10x real time, 500 steps/s, 20-step episodes) runs until it has recorded
a random number of steps (20-400, read from its /metrics), is killed with SIGKILL and restarted on the same
spool; the last life is stopped with SIGTERM and flushes. Then the learner's durable replay is read:

  lost        steps a life had recorded (its /metrics count just before the kill, a lower bound) but the
              replay lacks, plus holes inside any episode (steps 0..T-1 must all be there);
  duplicated  (episode, step) pairs stored more than once;
  bad endings episodes not ending with exactly one end flag on their last step (a cut episode ends truncated);
  cut         episodes a kill cut mid-way, closed by the next life (its log says "marked truncated").
Asserts nothing; it reports.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import numpy as np

from common.ports import free_port_pair
from tests.faults.processes import LearnerProcess, audit_episodes, journal_columns, kill_actor_repeatedly, life_ranges


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tandem-actor-kills-") as tmp:
        work, port = Path(tmp), free_port_pair()
        learner = LearnerProcess(port, work / "run")
        learner.wait_listening()
        lives = kill_actor_repeatedly(port, work, args.kills, random.Random(args.seed))
        learner.terminate()
        columns = journal_columns(work / "run", "killed", ("episode", "step", "terminated", "truncated"))
        cut = sum(path.read_text().count("marked truncated") for path in work.glob("actor-*.log"))
    audit = audit_episodes(columns)
    stored = [int(np.sum((columns["episode"] >= a) & (columns["episode"] < b))) for a, b in life_ranges(lives)]
    short = [max(0, life.recorded - count) for life, count in zip(lives, stored)]
    print(f"{'life':>4} {'recorded (>=)':>13} {'stored':>7} {'short':>6}")
    for index, (life, count, missing) in enumerate(zip(lives, stored, short)):
        ending = "SIGTERM" if index == len(lives) - 1 else "SIGKILL"
        print(f"{index:>4} {life.recorded:>13} {count:>7} {missing:>6}  {ending}")
    print(f"\nkills: {args.kills} (seed {args.seed}), wall {time.monotonic() - started:.0f} s")
    print(f"transitions stored: {audit.transitions} in {audit.episodes} episodes; cut episodes closed: {cut}")
    print(f"lost: {sum(short) + audit.missing}  duplicated: {audit.duplicated}  bad endings: {len(audit.bad_endings)}")


if __name__ == "__main__":
    main()
