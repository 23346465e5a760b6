"""Tie a process's life to the process that started it (Linux), so a killed parent leaves no orphan.

Actors on robots outlive learner restarts by design; only the simulated actors a learner starts itself
(`learner --local-actor`) should go when it goes, even after `kill -9`, where nothing can clean up. The
Ray launcher's process hosts (deploy/ray) use it the same way for the learner and actor they run: a host
Ray restarts must not find its previous child still holding the ports, the spool or the run directory.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys

log = logging.getLogger(__name__)
PR_SET_PDEATHSIG = 1


def exit_with_parent(parent_pid: int) -> None:
    """Ask the kernel for SIGINT (the safe shutdown: robot stopped, or a learner checkpoint) when the parent
    dies; exit now if it already has.

    SIGINT is unblocked first: a parent may hand down a mask that blocks it (Ray blocks it in its workers'
    task threads), and then neither this death signal nor the parent's own stop would ever arrive (actors
    killed unflushed after their grace, a learner that outlives its host).
    """
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    if sys.platform != "linux":
        log.warning("--parent-pid is only enforced on Linux; this process will outlive its parent")
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGINT, 0, 0, 0) != 0:
        log.warning("prctl(PR_SET_PDEATHSIG) failed (errno %d); this process may outlive its parent",
                    ctypes.get_errno())
    if os.getppid() != parent_pid:  # the parent died before the request was in place
        sys.exit(f"the parent process {parent_pid} that started this one has exited")
