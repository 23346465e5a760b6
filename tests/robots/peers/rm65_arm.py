"""A fake RealMan arm controller on loopback TCP, answering the JSON-lines commands robots/rm65.py uses.

Covered (one JSON object per "\\r\\n"-terminated line, replies keyed by "state"):
  get_current_arm_state -> {"state":"current_arm_state","arm_state":{"joint":[...],"pose":[...],"err":{...}}}
  movep_canfd           -> no reply; the pose becomes the arm's pose at once (recorded with arrival time)
  set_arm_slow_stop     -> {"state":"set_arm_slow_stop","arm_slow_stop":true}  (recorded with arrival time)
  set_arm_stop          -> {"state":"set_arm_stop","arm_stop":true}
  anything else         -> {"state":"unknown_command","command":...}
Pose units: x, y, z in 0.001 mm; rx, ry, rz in 0.001 rad. `silent` stops all replies; `close()` and
`start()` again restart the controller on the same port. Several clients may be connected at once; every
command is logged with the number of the connection it came on (`connections(name)`, 1 = the first accepted).
"""

from __future__ import annotations

import json
import socket
import threading
import time


class FakeRM65Arm:
    """The controller side of the RM65's JSON TCP protocol (see module docstring)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, pose=(390000, 0, 150000, 3142, 0, 0)) -> None:
        self.host, self.port = host, port
        self.pose = list(pose)
        self.silent = False
        self.log: list[tuple[float, dict]] = []  # (monotonic arrival time, command) of every command
        self.log_connections: list[int] = []  # the connection number of each entry of `log`
        self.accepted = 0
        self._cond = threading.Condition()
        self._listener: socket.socket | None = None
        self._clients: list[socket.socket] = []
        self._threads: list[threading.Thread] = []

    def start(self) -> FakeRM65Arm:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(4)
        self.port = listener.getsockname()[1]
        self._listener = listener
        thread = threading.Thread(target=self._accept_loop, args=(listener,), daemon=True, name="fake-rm65-accept")
        thread.start()
        self._threads = [thread]
        return self

    def close(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            try:
                listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() below; close() alone does not
            except OSError:
                pass
            listener.close()
        with self._cond:
            clients, self._clients = self._clients, []
        for client in clients:
            try:
                client.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            client.close()
        for thread in self._threads:
            thread.join(timeout=2.0)

    def restart(self) -> None:
        self.close()
        self.start()

    # ---- what the tests look at ----

    def wait_for(self, predicate, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self), timeout=timeout)

    def commands(self, name: str) -> list[tuple[float, dict]]:
        with self._cond:
            return [(t, c) for t, c in self.log if c.get("command") == name]

    def connections(self, name: str) -> list[int]:
        """The connection number each `name` command came on, in arrival order."""
        with self._cond:
            return [n for (_, c), n in zip(self.log, self.log_connections) if c.get("command") == name]

    def count(self, name: str) -> int:
        return len(self.commands(name))

    # ---- server ----

    def _accept_loop(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            with self._cond:
                self._clients.append(client)
                self.accepted += 1
                number = self.accepted
            thread = threading.Thread(target=self._serve, args=(client, number), daemon=True,
                                      name="fake-rm65-client")
            thread.start()
            self._threads.append(thread)

    def _serve(self, client: socket.socket, number: int) -> None:
        buffer = b""
        while True:
            try:
                chunk = client.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk
            while b"\r\n" in buffer:
                line, buffer = buffer.split(b"\r\n", 1)
                reply = self._handle(json.loads(line), number)
                if reply is not None and not self.silent:
                    try:
                        client.sendall((json.dumps(reply) + "\r\n").encode())
                    except OSError:
                        return

    def _handle(self, command: dict, number: int) -> dict | None:
        name = command.get("command")
        with self._cond:
            self.log.append((time.monotonic(), command))
            self.log_connections.append(number)
            if name == "movep_canfd":
                self.pose = [int(x) for x in command["pose"]]
            pose = list(self.pose)
            self._cond.notify_all()
        if name == "get_current_arm_state":
            return {"state": "current_arm_state",
                    "arm_state": {"joint": [0, 20000, 90000, 0, 70000, 0], "pose": pose, "err": {"err_len": 0}}}
        if name == "movep_canfd":
            return None
        if name == "set_arm_slow_stop":
            return {"state": "set_arm_slow_stop", "arm_slow_stop": True}
        if name == "set_arm_stop":
            return {"state": "set_arm_stop", "arm_stop": True}
        return {"state": "unknown_command", "command": name}
