"""A simulated actor started by a learner goes when that learner goes, even after kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest
from tests.conftest import wait_until

pytestmark = pytest.mark.timeout(120)

# A stand-in learner: starts a local fake actor the way the learner does, prints its pid, then waits.
PARENT = textwrap.dedent("""
    import signal, sys
    from pathlib import Path
    from learner.launch import ActorProcess, LocalLauncher
    actor = LocalLauncher(Path(sys.argv[2])).start(ActorProcess("orphan-check", "fake"), f"127.0.0.1:{sys.argv[1]}")
    print(actor.process.pid, flush=True)
    signal.pause()  # until the test kills this stand-in learner
""")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie is dead but still listed
        return stat.read().split()[2] != "Z"


@pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG is Linux-only")
def test_local_actor_exits_when_its_learner_is_killed(tmp_path, port):
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(port), str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    actor_pid = int(parent.stdout.readline())
    assert alive(actor_pid)
    parent.send_signal(signal.SIGKILL)  # whether or not the actor got to its prctl yet, it must go
    parent.wait()
    wait_until(lambda: not alive(actor_pid), timeout_s=60, what="the orphaned actor to exit")
