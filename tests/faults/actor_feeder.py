"""A minimal actor process for fault tests: a real Sender (with spool) fed numbered transitions.

`python -m tests.faults.actor_feeder PORT ACTOR_ID SPOOL_DIR FIRST_MARKER` prints `submitted N` as it
goes; SIGTERM stops feeding, flushes (up to 20 s) and exits 0.
"""

from __future__ import annotations

import signal
import sys
import threading

from actor.sender import Sender, SenderConfig
from tests.faults.processes import Feeder, hello


def main() -> None:
    port, actor_id, spool_dir, first = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
    config = SenderConfig(batch_size=8, flush_interval_s=0.05, spool_dir=spool_dir, heartbeat_interval_s=0.5)
    sender = Sender("127.0.0.1", port, hello(actor_id), config).start()
    feeder = Feeder(sender, start=first).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    while not stop.wait(0.005):  # progress report period (the parent reads how many were submitted)
        print(f"submitted {feeder.next}", flush=True)
    feeder.stop()
    print(f"submitted {feeder.next}", flush=True)
    print("flushed" if sender.close(flush_timeout_s=20.0) else "unflushed", flush=True)


if __name__ == "__main__":
    main()
