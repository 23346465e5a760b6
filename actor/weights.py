"""The actor's weight client: receives versioned weights, builds a ready policy, hands it over at a step boundary.

Weights arrive on the learner's PUB socket (every new version) or through the sender (the "latest
please" answer at connect). Building and loading the network, wrapped in the policy program the
weights name (actor/programs), happens on this thread, so the control loop's swap is a reference
assignment (made at a step boundary, or at the next re-plan while a chunk is queued). Only the newest
version is kept; older ones are ignored.
With `security`, the SUB socket is a CURVE client of the learner's public key: weights signed by any
other key never arrive (CURVE authenticates the server), so a forged publisher cannot move the robot.
"""

from __future__ import annotations

import logging
import queue
import threading

import zmq

from actor.policy import ActingPolicy, WeightsSchemaError, build_policy
from common.codec import DecodeError, decode
from common.protocol import Weights
from common.specs import RobotSpec
from common.transport import LinkSecurity, configure, weights_endpoint

log = logging.getLogger(__name__)


class WeightClient:
    """Subscribes to weights; `take_newer(version)` returns a newer ready policy, or None."""

    def __init__(
        self, host: str, port: int, spec: RobotSpec, context: zmq.Context | None = None,
        security: LinkSecurity | None = None,
    ) -> None:  # fmt: skip
        self._endpoint = weights_endpoint(host, port)
        self._security = security
        self._spec = spec
        self._context = context or zmq.Context.instance()
        self._offered: queue.Queue[Weights] = queue.Queue(maxsize=4)
        self._lock = threading.Lock()
        self._ready: ActingPolicy | None = None
        self._latest_version = -1
        self._received_version = -1
        self._stopping = threading.Event()
        self.rejected = 0
        self._thread = threading.Thread(target=self._run, name="tandem-weights", daemon=True)

    def start(self) -> "WeightClient":
        self._thread.start()
        return self

    def close(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5.0)

    def offer(self, weights: Weights) -> None:
        """Hand over weights received elsewhere (the sender's "latest please" answer). Never blocks."""
        try:
            self._offered.put_nowait(weights)
        except queue.Full:
            pass  # a newer offer or publication will follow; the latest always wins

    def take_newer(self, current_version: int) -> ActingPolicy | None:
        """Called by the control loop at a step boundary: the ready policy if it is newer."""
        with self._lock:
            if self._ready is not None and self._ready.version > current_version:
                return self._ready
        return None

    @property
    def latest_version(self) -> int:
        """The newest version installed (ready to act)."""
        return self._latest_version

    @property
    def received_version(self) -> int:
        """The newest version received, installed or refused: the learner need not send it again (a refused
        version would be refused again)."""
        return self._received_version

    def _run(self) -> None:
        sock = configure(self._context.socket(zmq.SUB), hwm=4)
        sock.setsockopt(zmq.SUBSCRIBE, b"")
        if self._security is not None:
            self._security.apply_client(sock)
        sock.connect(self._endpoint)
        try:
            while not self._stopping.is_set():
                newest = self._newest_offer()
                if sock.poll(timeout=50):
                    newest = self._newer(newest, self._drain(sock))
                if newest is not None and newest.version > self._received_version:
                    self._install(newest)
        finally:
            sock.close(linger=0)

    def _newest_offer(self) -> Weights | None:
        newest = None
        while True:
            try:
                newest = self._newer(newest, self._offered.get_nowait())
            except queue.Empty:
                return newest

    def _drain(self, sock: zmq.Socket) -> Weights | None:
        newest = None
        while True:
            try:
                frames = sock.recv_multipart(flags=zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return newest
            try:
                message = decode(frames)
            except DecodeError as exc:
                self.rejected += 1
                log.warning("dropping malformed weights message: %s", exc)
                continue
            if isinstance(message, Weights):
                newest = self._newer(newest, message)

    @staticmethod
    def _newer(a: Weights | None, b: Weights | None) -> Weights | None:
        if a is None or (b is not None and b.version > a.version):
            return b
        return a

    def _install(self, weights: Weights) -> None:
        self._received_version = weights.version
        try:
            policy = build_policy(weights, self._spec)
        except (WeightsSchemaError, ValueError, KeyError) as exc:
            self.rejected += 1
            log.error("refusing weights v%d: %s", weights.version, exc)
            return
        with self._lock:
            self._ready = policy
            self._latest_version = weights.version
        log.debug("weights v%d ready", weights.version)
