"""A learner without training, for fault tests: the real server and durable replay, none of torch's start-up.

`python -m tests.faults.serve_only PORT RUN_DIR [--resume] [--keys DIR]`. Restores sequence numbers
from RUN_DIR/replay exactly as `learner --resume` does, serves until SIGTERM, then closes cleanly.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading

from common.transport import SequenceTracker, load_learner_security
from learner.replay.durable import ReadReport, SegmentJournal, read_journal
from learner.server import LearnerServer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("run_dir")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--keys", default="")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s serve-only %(levelname)s %(message)s")
    sequences = SequenceTracker()
    directory = f"{args.run_dir}/replay"
    if args.resume:
        report = ReadReport()
        for _ in read_journal(directory, report):
            pass
        for actor_id, seq in report.acked.items():
            sequences.commit(actor_id, seq)
        logging.info("resumed: %d transitions, acked %s, %d damaged", report.transitions, report.acked,
                     len(report.damaged))  # fmt: skip
    journal = SegmentJournal(directory, 10**9, fsync=False, acked=sequences.snapshot())
    security = load_learner_security(args.keys) if args.keys else None
    server = LearnerServer("127.0.0.1", args.port, None, lambda *_: None, security=security, journal=journal,
                           sequences=sequences).start()  # fmt: skip
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    logging.info("listening on 127.0.0.1:%d", server.port)
    stop.wait()
    server.close()


if __name__ == "__main__":
    main()
