"""A minimal actor to kill: builds a real driver the way the `actor` CLI does (actor.app.make_robot, options
as text), connects, enables and drives one constant action at the robot's control rate until it is killed.

    python tests/robots/peers/driving_actor.py --robot limo -o port=/tmp/ttyLIMO -o watchdog_ms=30000 \
        --action 0.3,0.2

stdout: one `ACTOR {"event": "driving", "pid": ..., "deadman_pid": ... | null}` line once `--announce-after`
actions have been sent (the test then kills it with SIGKILL); it never stops the robot on its own. Its
deadman (robots/deadman.py) inherits its stderr, so the supervisor's log lines land beside the actor's.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

import numpy as np

from actor.app import make_robot
from common.timing import RateLimiter


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--robot", required=True)
    parser.add_argument("-o", dest="options", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--action", required=True, help="comma-separated action, in the robot's units")
    parser.add_argument("--announce-after", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    robot = make_robot(args.robot, dict(option.split("=", 1) for option in args.options))
    action = np.array([float(v) for v in args.action.split(",")], dtype=np.float32)
    robot.connect()
    robot.enable()
    rate = RateLimiter(robot.spec.control_hz)
    sent = 0
    while True:  # no finally, no disconnect: this process only ends by a signal
        robot.send_action(action)
        sent += 1
        if sent == args.announce_after:
            deadman = getattr(robot, "deadman", None)
            print("ACTOR " + json.dumps({"event": "driving", "pid": os.getpid(),
                                         "deadman_pid": deadman.pid if deadman else None}), flush=True)
        rate.wait()


if __name__ == "__main__":
    main()
