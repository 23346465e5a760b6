"""The actor's background sender: batches transitions, sends them, keeps them until acked, resends.

The control loop only calls `submit()`, which never blocks: transitions go into a bounded queue and
a full queue drops (and counts) instead of stalling the robot. One thread owns the DEALER socket and
does everything else: the handshake, batching, acks, heartbeats, reconnecting with backoff, and
resending unacked batches in order after a reconnect.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

import zmq

from common import metrics
from common.codec import DecodeError, decode, encode
from common.protocol import Ack, EpisodeSummary, Heartbeat, Hello, TransitionBatch, Weights, WeightsRequest, Welcome
from common.transport import Liveness, UnackedBatches, configure, transitions_endpoint
from common.types import Transition, pack_transitions

log = logging.getLogger(__name__)


@dataclass
class SenderConfig:
    """How the actor ships transitions."""

    batch_size: int = 32  # transitions per batch (one ack each)
    flush_interval_s: float = 0.25  # a partial batch goes out after this long
    queue_size: int = 50_000  # transitions waiting for the sender thread before drops begin
    max_unacked_batches: int = 512  # in-flight window; beyond it the sender waits for acks
    heartbeat_interval_s: float = 1.0  # silence for 3 intervals means the learner is gone
    ack_timeout_s: float = 10.0  # an unacked batch this old means the session is broken: reconnect
    reconnect_backoff_max_s: float = 5.0  # cap of the exponential backoff between Hello attempts

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.queue_size < 1 or self.max_unacked_batches < 1:
            raise ValueError("batch_size, queue_size and max_unacked_batches must be positive")


class LearnerRefused(RuntimeError):
    """The learner refused the handshake; the message says why (e.g. both spec hashes)."""


class Sender:
    """Owns the actor's link to the learner's ROUTER. Thread-safe `submit`; everything else is internal."""

    def __init__(
        self,
        host: str,
        port: int,
        hello: Hello,
        config: SenderConfig | None = None,
        on_weights: Callable[[Weights], None] | None = None,
        context: zmq.Context | None = None,
        have_version: Callable[[], int] = lambda: -1,
    ) -> None:
        self.config = config or SenderConfig()
        self._endpoint = transitions_endpoint(host, port)
        self._hello = hello
        self._on_weights = on_weights or (lambda _w: None)
        self._have_version = have_version  # the weight client's newest version, for "latest please"
        self._context = context or zmq.Context.instance()
        self._queue: queue.Queue = queue.Queue(maxsize=self.config.queue_size)
        self._unacked = UnackedBatches()
        self._sent_at: OrderedDict[int, float] = OrderedDict()  # seq -> send time, oldest first
        self._pending: list[Transition] = []
        self._pending_since = 0.0
        self._next_seq = 1
        self._liveness = Liveness(self.config.heartbeat_interval_s)
        self._backoff_s = 0.1
        self._hello_sent_at = 0.0
        self._sock: zmq.Socket | None = None
        self._stopping = threading.Event()
        self._flush_deadline = float("inf")
        self.connected = threading.Event()
        self.refused_reason: str | None = None
        self.refused = threading.Event()
        self.acked_transitions = 0
        labels = (hello.actor_id, hello.robot)
        self._m = {
            name: metric.labels(*labels)
            for name, metric in {
                "sent": metrics.ACTOR_TRANSITIONS_SENT,
                "acked": metrics.ACTOR_TRANSITIONS_ACKED,
                "dropped": metrics.ACTOR_TRANSITIONS_DROPPED,
                "bytes": metrics.ACTOR_BYTES_SENT,
                "queue": metrics.ACTOR_QUEUE_DEPTH,
                "unacked": metrics.ACTOR_UNACKED,
                "connected": metrics.ACTOR_LEARNER_CONNECTED,
                "reconnects": metrics.ACTOR_RECONNECTS,
            }.items()
        }
        self._thread = threading.Thread(target=self._run, name="tandem-sender", daemon=True)

    # ---- called from the control loop ----------------------------------------------------------
    def start(self) -> "Sender":
        self._thread.start()
        return self

    def submit(self, item: Transition | EpisodeSummary) -> bool:
        """Queue a transition or episode summary without blocking; False (and counted) if the queue is full."""
        try:
            self._queue.put_nowait(item)
            return True
        except queue.Full:
            self._m["dropped"].inc()
            return False

    def close(self, flush_timeout_s: float = 10.0) -> bool:
        """Send what is queued, wait up to `flush_timeout_s` for acks, then close. True if all were acked."""
        self._flush_deadline = time.monotonic() + flush_timeout_s
        self._stopping.set()
        self._thread.join(timeout=flush_timeout_s + 5.0)
        return self.outstanding() == 0

    def outstanding(self) -> int:
        """Transitions not yet acked: queued, pending in a batch, or in flight."""
        return self._queue.qsize() + len(self._pending) + self._unacked.transitions

    # ---- the sender thread ---------------------------------------------------------------------
    def _run(self) -> None:
        self._open_socket()
        try:
            while not self._finished():
                idle_ms = 0 if (self._queue.qsize() and self._can_send()) else 10
                if self._sock.poll(timeout=idle_ms):
                    self._receive_all()
                if self.refused_reason:
                    return
                self._collect()
                self._send_ready_batches()
                self._keep_alive(time.monotonic())
        except Exception:  # keep the reason in the log; the control loop sees connected == False
            log.exception("sender thread failed")
        finally:
            self.connected.clear()
            self._m["connected"].set(0)
            self._sock.close(linger=0)

    def _finished(self) -> bool:
        if not self._stopping.is_set():
            return False
        nothing_left = self._queue.empty() and not self._pending and not len(self._unacked)
        return nothing_left or time.monotonic() > self._flush_deadline

    def _open_socket(self) -> None:
        if self._sock is not None:
            self._sock.close(linger=0)
        self._sock = configure(self._context.socket(zmq.DEALER))
        self._sock.connect(self._endpoint)
        self._send_hello()

    def _send_hello(self) -> None:
        self._hello.first_unacked_seq = self._unacked.oldest_seq() or 0
        self._send(self._hello)
        now = time.monotonic()
        self._hello_sent_at = now
        self._liveness.heard(now)  # give the learner a full liveness window to answer

    def _send(self, message: object, frames: list | None = None) -> int:
        frames = frames if frames is not None else encode(message)
        self._sock.send_multipart(frames, copy=False)
        self._liveness.sent()
        return sum(len(f) for f in frames)

    def _receive_all(self) -> None:
        while True:
            try:
                frames = self._sock.recv_multipart(flags=zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            self._liveness.heard()
            try:
                self._handle(decode(frames))
            except DecodeError as exc:
                log.warning("dropping a malformed message from the learner: %s", exc)

    def _handle(self, message: object) -> None:
        if isinstance(message, Welcome):
            self._on_welcome(message)
        elif isinstance(message, Ack):
            released = self._unacked.ack(message.seq)
            while self._sent_at and next(iter(self._sent_at)) <= message.seq:
                self._sent_at.popitem(last=False)
            self.acked_transitions += released
            self._m["acked"].inc(released)
            self._m["unacked"].set(self._unacked.transitions)
        elif isinstance(message, Weights):
            self._on_weights(message)

    def _on_welcome(self, welcome: Welcome) -> None:
        if welcome.rehello:
            self.connected.clear()
            self._send_hello()
            return
        if not welcome.accepted:
            self.refused_reason = welcome.reason
            self.refused.set()
            log.error("learner refused this actor: %s", welcome.reason)
            return
        self._unacked.ack(welcome.acked_seq)
        self._next_seq = max(self._next_seq, welcome.acked_seq + 1)
        self._backoff_s = 0.1
        now = time.monotonic()
        for seq, frames in self._unacked.in_order():  # resend in order; the learner drops duplicates
            self._sent_at[seq] = now
            self._m["bytes"].inc(self._send(None, frames))
        self._send(WeightsRequest(have_version=self._have_version()))
        self.connected.set()
        self._m["connected"].set(1)
        log.info("connected to learner (acked up to batch %d)", welcome.acked_seq)

    def _collect(self) -> None:
        """Move queued items into batches of exactly `batch_size`, sending each as soon as the window allows.

        While nothing can be sent (no learner, or the in-flight window is full) at most one batch is
        held here; the rest stays in the bounded queue, whose overflow is counted.
        """
        while True:
            if len(self._pending) >= self.config.batch_size and not self._flush_pending():
                break
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, EpisodeSummary):
                self._flush_pending()  # the episode's transitions go first when they can
                if self.connected.is_set():
                    self._send(item)
                continue
            if not self._pending:
                self._pending_since = time.monotonic()
            self._pending.append(item)
        self._m["queue"].set(self._queue.qsize())

    def _can_send(self) -> bool:
        return self.connected.is_set() and len(self._unacked) < self.config.max_unacked_batches

    def _flush_pending(self) -> bool:
        """Send up to `batch_size` pending transitions as one batch; False if sending is not possible now."""
        if not self._pending or not self._can_send():
            return False
        batch, self._pending = self._pending[: self.config.batch_size], self._pending[self.config.batch_size :]
        self._pending_since = time.monotonic()
        seq, self._next_seq = self._next_seq, self._next_seq + 1
        frames = encode(TransitionBatch(seq=seq, arrays=pack_transitions(batch)))
        self._unacked.add(seq, frames, len(batch))
        self._sent_at[seq] = time.monotonic()
        self._m["bytes"].inc(self._send(None, frames))
        self._m["sent"].inc(len(batch))
        self._m["unacked"].set(self._unacked.transitions)
        return True

    def _send_ready_batches(self) -> None:
        stale = self._pending and time.monotonic() - self._pending_since >= self.config.flush_interval_s
        if stale or (self._stopping.is_set() and self._pending):
            self._flush_pending()

    def _keep_alive(self, now: float) -> None:
        if self._liveness.is_gone(now) and self._sock.poll(timeout=0):
            self._receive_all()  # a busy sender thread must not mistake unread replies for silence
        oldest_sent = next(iter(self._sent_at.values()), now)
        broken = now - oldest_sent > self.config.ack_timeout_s
        if self._liveness.is_gone(now) or broken:
            if self.connected.is_set() or now - self._hello_sent_at >= self._backoff_s:
                self._reconnect(now)
            return
        if self._liveness.should_beat(now):
            self._send(Heartbeat(sent_at=time.time()))

    def _reconnect(self, now: float) -> None:
        if self.connected.is_set():
            log.warning("learner silent for %.1f s; reconnecting", now - self._liveness.last_heard)
            self._m["reconnects"].inc()
        self.connected.clear()
        self._m["connected"].set(0)
        self._sent_at.clear()
        self._backoff_s = min(self._backoff_s * 2, self.config.reconnect_backoff_max_s)
        self._open_socket()
