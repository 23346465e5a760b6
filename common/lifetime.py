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


def accept_stop_signals() -> None:
    """Make SIGINT and SIGTERM reach this process whatever it inherited: a blocked mask (Ray blocks SIGINT in
    its workers' task threads, and children inherit the mask) or SIGINT ignored (a shell's background job).
    For long-running processes whose only clean way out is the safe shutdown those signals start."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def exit_with_parent(parent_pid: int) -> None:
    """Ask the kernel for SIGINT (the safe shutdown: robot stopped, or a learner checkpoint) when the parent
    dies; exit now if it already has.

    Stop signals are accepted first (`accept_stop_signals`): with SIGINT blocked, neither this death signal
    nor the parent's own stop would ever arrive (actors killed unflushed after their grace, a learner that
    outlives its host).
    """
    accept_stop_signals()
    if sys.platform != "linux":
        log.warning("--parent-pid is only enforced on Linux; this process will outlive its parent")
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGINT, 0, 0, 0) != 0:
        log.warning("prctl(PR_SET_PDEATHSIG) failed (errno %d); this process may outlive its parent",
                    ctypes.get_errno())
    if os.getppid() != parent_pid:  # the parent died before the request was in place
        sys.exit(f"the parent process {parent_pid} that started this one has exited")
