"""The safe stop outside the actor: a small supervising ("deadman") process per real-robot connection.

The in-process `CommandWatchdog` (robots/watchdog.py) covers a stalled control loop, but it dies with its
actor: after `kill -9`, an OOM kill or a segfault in a native library, nothing in the actor's process can
send anything, and a base or arm keeps following its last velocity command. So a driver that cannot
count on its robot to stop by itself starts one of these when it connects:

    python -m robots.deadman --robot limo --options '{"port": "/dev/ttyTHS1"}' --lifeline-fd 5

It is started with `subprocess` (fork + exec of a fresh interpreter, never a bare fork of the multi-threaded
actor) and builds the same driver from `options`, opening only the driver's *stop path* (its own link to
the robot: `RealRobot.open_stop_path`). It then blocks on its lifeline, one end of a socketpair whose other
end only the actor holds (non-inheritable, so the actor's other children do not keep it open):

  * b"quit" from the actor (clean disconnect, the actor has stopped the robot itself): exit, sending nothing;
  * EOF without b"quit": the actor is gone. The kernel closes its end on any death, kill -9 included, so
    this is noticed at once, with no polling. The supervisor sends the robot's stop through its own link
    (`send_safe_stop`) and exits; SIGALRM ends it if the stop takes longer than STOP_BUDGET_S, so it never
    outlives its actor by more than its stop.

It runs in its own session and ignores SIGINT/SIGTERM/SIGHUP: a Ctrl-C in the actor's terminal or a
service stop is the actor's to handle (it then says quit); if the actor dies instead, the stop still goes out.

The actor side is `Deadman`: `start()` waits until the supervisor's stop path is open ("ready"), so a
connected driver is covered from its first action; a thread watches the lifeline the other way, and a
supervisor that dies under a live actor is logged loudly and reported through `on_lost` (the driver stops
the robot and refuses further actions until it is reconnected: see `RealRobot`).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

READY, QUIT, ERROR = b"ready\n", b"quit\n", b"error "
STOP_BUDGET_S = 10  # the longest a supervisor may spend stopping its robot (Unitree: 3 x 2 x rpc_timeout_s at most)
START_TIMEOUT_S = 20.0  # Python start, imports and the stop path's own connect (DDS discovery) on a loaded box
PROJECT_ROOT = Path(__file__).resolve().parents[1]


class Deadman:
    """The actor's handle on its robot's supervising process (see module docstring)."""

    def __init__(self, robot: str, options: dict, on_lost: Callable[[], None],
                 start_timeout_s: float = START_TIMEOUT_S) -> None:
        self.robot = robot
        self.options = dict(options)
        self.start_timeout_s = float(start_timeout_s)
        self.lost = False  # the supervisor died while the actor lives
        self._on_lost = on_lost
        self._closing = threading.Event()
        self._socket: socket.socket | None = None
        self.process: subprocess.Popen | None = None

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def start(self) -> Deadman:
        """Start the supervisor and wait until its stop path is open; RobotError if it cannot open it."""
        from robots.base import RobotError

        mine, theirs = socket.socketpair()  # both non-inheritable: only pass_fds hands `theirs` on
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "robots.deadman", "--robot", self.robot, "--options",
                 json.dumps(self.options), "--lifeline-fd", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, start_new_session=True, env=_child_env())
        except BaseException:
            mine.close()
            raise
        finally:
            theirs.close()  # the supervisor holds the only other copy: its death is our EOF
        self._socket = mine
        answer = _read_line(mine, self.start_timeout_s)
        if answer != READY:
            self._reap(timeout_s=STOP_BUDGET_S)
            mine.close()
            what = answer[len(ERROR):].decode(errors="replace").strip() if answer.startswith(ERROR) else \
                f"no answer within {self.start_timeout_s:g} s" if answer is None else "it exited"
            raise RobotError(f"{self.robot}: the safe-stop supervisor could not open its own link to the robot "
                             f"({what}); check the robot's options, or -o deadman=false to run without it")
        threading.Thread(target=self._watch, daemon=True, name=f"{self.robot}-deadman-watch").start()
        return self

    def close(self) -> None:
        """Clean shutdown: tell the supervisor to exit without sending anything, and reap it. Idempotent."""
        self._closing.set()
        sock, self._socket = self._socket, None
        if sock is None:
            return
        try:
            sock.sendall(QUIT)
        except OSError:
            pass  # it is already gone; _reap collects it
        self._reap(timeout_s=STOP_BUDGET_S)
        sock.close()

    def _watch(self) -> None:
        """EOF from the supervisor while we are not closing: it died (killed, crashed). Say so loudly."""
        sock = self._socket
        try:
            while sock is not None and sock.recv(64):
                pass
        except OSError:
            pass
        if self._closing.is_set():
            return
        self.lost = True
        code = self._reap(timeout_s=STOP_BUDGET_S)
        log.critical("%s: the safe-stop supervisor (pid %s) died (exit code %s): a kill -9 of this actor would "
                     "no longer stop the robot; stopping it and refusing further actions until reconnected",
                     self.robot, self.pid, code)
        self._on_lost()

    def _reap(self, timeout_s: float) -> int | None:
        """Wait for the supervisor to exit (killed after `timeout_s`), so it never lingers as a zombie."""
        process = self.process
        if process is None:
            return None
        try:
            return process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            log.error("%s: the safe-stop supervisor (pid %d) did not exit; killing it", self.robot, process.pid)
            process.kill()
            return process.wait()


def _child_env() -> dict:
    """The actor's environment, with this checkout first on the path so `-m robots.deadman` finds our code."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
    return env


def _read_line(sock: socket.socket, timeout_s: float | None) -> bytes | None:
    """One b"...\\n" line, or what came before EOF (b"" if nothing), or None on timeout."""
    sock.settimeout(timeout_s)
    data = b""
    try:
        while not data.endswith(b"\n"):
            chunk = sock.recv(256)
            if not chunk:
                break
            data += chunk
    except TimeoutError:
        return None
    finally:
        sock.settimeout(None)
    return data


# ---- the supervisor process ----

def supervise(robot_name: str, options: dict, lifeline: socket.socket) -> int:
    """Open the robot's stop path, say ready, wait for the actor's end; stop the robot unless it said quit."""
    import robots  # noqa: F401  (registers every robot)
    from robots.base import ROBOTS

    try:
        robot = ROBOTS.get(robot_name)(**options)
        robot.open_stop_path()
    except Exception as exc:  # noqa: BLE001 - whatever failed, the actor must hear why, in one line
        lifeline.sendall(ERROR + str(exc).replace("\n", " ").encode() + b"\n")
        return 1
    lifeline.sendall(READY)
    said = _read_line(lifeline, None)
    if said == QUIT:
        robot.close_stop_path()
        return 0
    signal.alarm(STOP_BUDGET_S)  # default action: terminate. A stop that hangs must not keep us alive.
    try:
        robot.send_safe_stop()
        log.warning("deadman: %s actor gone (pid %d); safe stop sent", robot_name, os.getppid())
        return 0
    except Exception as exc:  # noqa: BLE001 - report, and exit non-zero: nothing else is left to try
        log.critical("deadman: %s actor gone; the safe stop FAILED: %s", robot_name, exc)
        return 1
    finally:
        robot.close_stop_path()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Stop a robot when its actor process dies (robots/deadman.py).")
    parser.add_argument("--robot", required=True, help="registered robot name (a real driver)")
    parser.add_argument("--options", default="{}", help="JSON constructor options of the driver's stop path")
    parser.add_argument("--lifeline-fd", type=int, required=True, help="our end of the actor's socketpair")
    args = parser.parse_args(argv)
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):  # the actor's to handle; its death is ours (see docstring)
        signal.signal(getattr(signal, name), signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s deadman[%(process)d] %(levelname)s %(message)s")
    lifeline = socket.socket(fileno=args.lifeline_fd)
    return supervise(args.robot, json.loads(args.options), lifeline)


if __name__ == "__main__":
    sys.exit(main())
