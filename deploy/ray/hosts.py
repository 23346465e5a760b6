"""Ray actors that each run one Tandem process on their node, and live and die with it.

A host starts its process (`learner ...` or `actor ...`, the same commands a user types) as a child tied
to the host's life (`--parent-pid`: the kernel sends SIGINT, the safe shutdown, when the host dies). When
the child crashes, the host exits at once, so Ray restarts the host (`max_restarts`) and the new host
starts the process again: Ray does the restarting, the host only makes a crash visible to Ray. A clean
exit (0) is a finished process, not a crash.

A restarted host first waits for its predecessor's child (pid file) to be gone: a learner still
checkpointing holds its ports and run directory, an actor its spool lock.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import ray

from learner.keys import create_actor_keys, create_learner_keys
from learner.launch import ActorProcess

log = logging.getLogger(__name__)
PREVIOUS_GRACE_S = 30.0  # how long a predecessor's child may take to shut down safely before it is killed


class ProcessHost:
    """Runs one child process in `workdir` (its log, pid file and start count live there)."""

    def __init__(self, workdir: str, name: str) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.log_path = self.workdir / f"{name}.log"
        self.starts = self._count_start()
        self._end_previous()
        self.child: subprocess.Popen | None = None
        self.stopping = False

    def _count_start(self) -> int:
        """1 on this node's first start of the process, 2 after one restart, ..."""
        path = self.workdir / f"{self.name}.starts"
        starts = int(path.read_text()) + 1 if path.exists() else 1
        path.write_text(str(starts))
        return starts

    def _end_previous(self) -> None:
        """Wait for the child of a host that died before this one (SIGINT, then SIGKILL after a grace)."""
        path = self.workdir / f"{self.name}.pid"
        if not path.exists():
            return
        pid = int(path.read_text())
        deadline, signalled = time.monotonic() + PREVIOUS_GRACE_S, False
        while _running(pid):
            if time.monotonic() > deadline:
                log.warning("previous %s (pid %d) still running after %.0f s; killing it", self.name, pid,
                            PREVIOUS_GRACE_S)  # fmt: skip
                os.kill(pid, signal.SIGKILL)
                deadline = float("inf")
            elif not signalled:
                os.kill(pid, signal.SIGINT)  # normally already sent by the kernel (PDEATHSIG)
                signalled = True
            time.sleep(0.1)  # polling another process's exit; the deadline decides

    def spawn(self, command: list[str]) -> None:
        """Start the child (appending to the log) and watch it from a thread."""
        command = [*command, "--parent-pid", str(os.getpid())]
        with self.log_path.open("a") as out:
            out.write(f"--- start {self.starts}: {' '.join(command)}\n")
            self.child = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                          cwd=self.workdir)  # fmt: skip
        (self.workdir / f"{self.name}.pid").write_text(str(self.child.pid))
        threading.Thread(target=self._watch, name=f"watch-{self.name}", daemon=True).start()

    def _watch(self) -> None:
        code = self.child.wait()
        if code != 0 and not self.stopping:
            # Exiting (not raising) is what Ray counts as a crash and restarts; flush the log line first.
            sys.stderr.write(f"{self.name} exited with {code}: host exits for Ray to restart it\n")
            sys.stderr.flush()
            os._exit(1)

    def info(self) -> dict:
        """Where and what: node, IP, host and child pids, start count, the child's exit code (None: running)."""
        context = ray.get_runtime_context()
        return {"node_id": context.get_node_id(), "ip": ray.util.get_node_ip_address(), "host_pid": os.getpid(),
                "pid": self.child.pid if self.child else None, "starts": self.starts, "returncode": self.poll(),
                "workdir": str(self.workdir)}  # fmt: skip

    def poll(self) -> int | None:
        return None if self.child is None else self.child.poll()

    def stop(self, grace_s: float = 20.0) -> int | None:
        """SIGINT (the safe shutdown), SIGKILL after `grace_s`; returns the exit code."""
        self.stopping = True
        if self.child is None:
            return None
        if self.child.poll() is None:
            self.child.send_signal(signal.SIGINT)
            try:
                self.child.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                self.child.kill()
                self.child.wait()
        return self.child.returncode

    def tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def read(self, relative: str) -> str | None:
        """A small text file from the work directory (e.g. the learner's summary.json), None if absent."""
        path = self.workdir / relative
        return path.read_text() if path.is_file() else None


class LearnerHost(ProcessHost):
    """`learner ARGS` in RUN_DIR on this node, listening on all interfaces with CURVE keys from RUN_DIR/keys.

    The keys (the learner's pair and one per fleet actor) are made here on the first start, so the learner's
    secret key never leaves its node; a restarted host finds them, and resumes the run (`--resume`) once the
    learner has written its config there.
    """

    def __init__(self, argv: list[str], run_dir: str, port: int, actor_ids: list[str], resume: bool = False) -> None:
        super().__init__(run_dir, "learner")
        self.run_dir = Path(run_dir)
        self.keys = self.run_dir / "keys"
        create_learner_keys(self.keys)
        for actor_id in actor_ids:
            create_actor_keys(self.keys, actor_id)
        resumable = (resume or self.starts > 1) and (self.run_dir / "config.json").is_file()
        place = ["--resume", str(self.run_dir)] if resumable else ["--run-dir", str(self.run_dir)]
        self.spawn([sys.executable, "-m", "learner", *argv, *place, "--bind", "0.0.0.0", "--port", str(port),
                    "--keys", str(self.keys)])  # fmt: skip

    def actor_keys(self, actor_id: str) -> dict[str, bytes]:
        """The files of KEYS/actors/ID (`learner keys DIR --actor ID`), for its host on another node."""
        directory = self.keys / "actors" / actor_id
        return {path.name: path.read_bytes() for path in directory.iterdir() if path.is_file()}


class ActorHost(ProcessHost):
    """`actor` for one fleet member on this node, its keys and spool in NODE_DIR/ID."""

    def __init__(self, process: ActorProcess, learner_address: str, keys: dict[str, bytes], node_dir: str) -> None:
        super().__init__(str(Path(node_dir) / process.actor_id), "actor")
        key_dir = self.workdir / "keys"
        key_dir.mkdir(mode=0o700, exist_ok=True)
        for name, data in keys.items():
            path = key_dir / name
            path.write_bytes(data)
            path.chmod(0o600)
        self.spool = self.workdir / "spool"
        self.spawn(process.command(learner_address, "--keys", str(key_dir), "--spool", str(self.spool)))

    def unacked_batches(self) -> int:
        """Batches in the spool the learner has not acked yet."""
        return len(list(self.spool.glob("*.batch"))) if self.spool.is_dir() else 0

    def clean_up(self) -> bool:
        """After a stop: remove the work directory if nothing is left unacked (True if removed)."""
        if self.poll() is None or self.unacked_batches():
            return False
        shutil.rmtree(self.workdir, ignore_errors=True)
        try:
            self.workdir.parent.rmdir()  # the run's directory on this node, once its last actor is gone
        except OSError:
            pass  # another actor of the run still uses it
        return True


def _running(pid: int) -> bool:
    """Whether `pid` runs (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
