"""Tie a local actor's life to the learner that started it (Linux), so a killed learner leaves no orphan.

Actors on robots outlive learner restarts by design; only the simulated actors a learner starts itself
(`learner --local-actor`) should go when it goes, even after `kill -9`, where nothing can clean up.
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
    """Ask the kernel for SIGINT (the actor's safe shutdown) when the parent dies; exit now if it already has."""
    if sys.platform != "linux":
        log.warning("--parent-pid is only enforced on Linux; this actor will outlive its learner")
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGINT, 0, 0, 0) != 0:
        log.warning("prctl(PR_SET_PDEATHSIG) failed (errno %d); this actor may outlive its learner", ctypes.get_errno())
    if os.getppid() != parent_pid:  # the learner died before the request was in place
        sys.exit("the learner that started this actor has exited")
