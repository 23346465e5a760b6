"""The connect -> enable -> disconnect state machine shared by the fake robot and the simulated twins.

Real drivers have the same three states, so the twins enforce them too: a policy that works against a
twin but calls `send_action` before `enable()` would fail on hardware, and it should fail here first.
"""

from __future__ import annotations

import enum
import threading

from robots.base import RobotError


class LinkState(enum.Enum):
    """Where a robot is in its lifecycle."""

    DISCONNECTED = "disconnected"
    CONNECTED = "connected"  # state readable, motion disabled
    ENABLED = "enabled"  # motion allowed


class Lifecycle:
    """Thread-safe lifecycle state with checks that raise RobotError naming the state needed.

    `lock` is re-entrant and is also the lock robots hold while touching their (simulated) hardware,
    so `stop()` from a signal handler's thread never interleaves with a half-done control step.
    """

    def __init__(self, robot_name: str) -> None:
        self.robot_name = robot_name
        self.lock = threading.RLock()
        self._state = LinkState.DISCONNECTED

    @property
    def state(self) -> LinkState:
        return self._state

    def connect(self) -> bool:
        """Move to CONNECTED; returns False if already connected or enabled (connect is idempotent)."""
        with self.lock:
            if self._state is not LinkState.DISCONNECTED:
                return False
            self._state = LinkState.CONNECTED
            return True

    def enable(self) -> None:
        """Move to ENABLED; enabling a disconnected robot is an error."""
        with self.lock:
            self.require_connected("enable")
            self._state = LinkState.ENABLED

    def disconnect(self) -> bool:
        """Move to DISCONNECTED; returns False if already disconnected."""
        with self.lock:
            was_connected = self._state is not LinkState.DISCONNECTED
            self._state = LinkState.DISCONNECTED
            return was_connected

    def require_connected(self, operation: str) -> None:
        """Raise RobotError unless connected (enabled counts as connected)."""
        if self._state is LinkState.DISCONNECTED:
            raise RobotError(f"{self.robot_name}: {operation}() needs connect() first")

    def require_enabled(self, operation: str) -> None:
        """Raise RobotError unless motion is enabled."""
        if self._state is not LinkState.ENABLED:
            raise RobotError(f"{self.robot_name}: {operation}() needs enable() first (state: {self._state.value})")
