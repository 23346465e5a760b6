"""The actor's background sender: its link to the learner, sending batches, resending what is not acked.

The control loop only calls `submit()` (and `hold()`), which never wait on the network; what is submitted is
numbered into batches and kept until acked by `actor.batcher` (which also says what a killed actor loses). One
thread owns the DEALER socket and does everything else: the handshake, batching, acks, heartbeats, reconnecting
with backoff, and resending unacked batches in order after a reconnect.

Episode summaries (the operator's success labels, the rollouts a stage counts) are not numbered batches, but
a learner restart must not lose them either: see `actor.summaries`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

import zmq

from actor.batcher import Batcher
from actor.summaries import UnconfirmedSummaries
from actor.wakeup import Wakeup
from common import metrics
from common.codec import DecodeError, decode, encode
from common.protocol import Ack, EpisodeSummary, Heartbeat, Hello, Weights, WeightsRequest, Welcome
from common.transport import (
    LinkSecurity,
    Liveness,
    configure,
    load_actor_security,
    recv_frames,
    require_security,
    send_frames,
    transitions_endpoint,
)
from common.types import Transition

log = logging.getLogger(__name__)

NAP_MS = 10  # the sender thread's longest wait for a reply when it has nothing to send (a submit can wake it)


@dataclass
class SenderConfig:
    """How the actor ships transitions."""

    batch_size: int = 32  # transitions per batch (one ack each)
    flush_interval_s: float = 0.25  # a partial batch goes out after this long
    queue_size: int = 50_000  # transitions waiting for the sender thread before drops begin
    max_unacked_batches: int = 512  # in-flight window and batches kept in memory; beyond it the sender waits or spools
    heartbeat_interval_s: float = 1.0  # silence for 3 intervals means the learner is gone
    ack_timeout_s: float = 10.0  # an unacked batch this old, with no ack progress this long: reconnect
    reconnect_backoff_max_s: float = 1.0  # cap of the exponential backoff between Hello attempts
    spool_dir: str = ""  # unacked batches on disk here ("": memory only; a restart then loses them)
    spool_max_bytes: int = 1 << 30  # spool limit; when full the robot is paused (see actor.spool)
    spool_fsync: bool = True  # fsync each sealed batch before sending it (power cut: only unsealed ones are lost)
    weights_catch_up_s: float = 2.0  # a version the learner names but PUB has not delivered this long is asked for

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.queue_size < 1 or self.max_unacked_batches < 1:
            raise ValueError("batch_size, queue_size and max_unacked_batches must be positive")


def link_security(host: str, keys_dir: str, insecure: bool) -> LinkSecurity | None:
    """The actor's CURVE keys for a link to `host`, or None for plaintext (loopback only; see transport)."""
    keys = load_actor_security(keys_dir) if keys_dir else None
    return require_security(host, keys, insecure, "actor")


def key_actor_id(keys_dir: str) -> str:
    """The actor name bound to the key in `keys_dir` ("" without keys): the learner knows the actor by it."""
    return load_actor_security(keys_dir).actor_id if keys_dir else ""


class LearnerRefused(RuntimeError):
    """The learner refused the handshake; the message says why (e.g. both spec hashes)."""


def _bound_metrics(actor_id: str, robot: str) -> dict:
    """The sender's metrics, labelled once for this actor (a `labels` lookup per update costs a lock)."""
    labels = (actor_id, robot)
    return {
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
            "spooled": metrics.ACTOR_SPOOLED,
            "spool_depth": metrics.ACTOR_SPOOL_DEPTH,
            "spool_bytes": metrics.ACTOR_SPOOL_BYTES,
            "resent": metrics.ACTOR_BATCHES_RESENT,
        }.items()
    }


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
        security: LinkSecurity | None = None,
        on_learner_updates: Callable[[int], None] | None = None,
    ) -> None:
        self.config = config or SenderConfig()
        self._endpoint = transitions_endpoint(host, port)
        self._security = security
        self._hello = hello
        self._on_weights = on_weights or (lambda _w: None)
        self._have_version = have_version  # the weight client's newest version, for "latest please"
        self._on_learner_updates = on_learner_updates or (lambda _n: None)  # each ack's update count (pacing)
        self._awaited: tuple[int, float] | None = None  # (weights version the learner named, when first named)
        self._context = context or zmq.Context.instance()
        self._m = _bound_metrics(hello.actor_id, hello.robot)
        self._batches = Batcher(self.config, self._m)
        self.room = self._batches.room  # set while submit() has room (PauseWhenFull waits on it)
        self._sent_at: OrderedDict[int, float] = OrderedDict()  # seq -> send time, oldest first
        self._sent_upto = 0  # every unacked batch up to this seq was sent in this session
        self._acks_progressed_at = 0.0  # when an ack last released a batch
        self._summaries = UnconfirmedSummaries()
        self._liveness = Liveness(self.config.heartbeat_interval_s)
        self._backoff_s = 0.1
        self._hello_sent_at = 0.0
        self._sock: zmq.Socket | None = None
        # Woken by a submit that completes a batch while the thread naps on its socket: napping until a reply
        # or the 10 ms timeout, it left each batch waiting for the next ack, and actor and learner took turns idling.
        self._wakeup = Wakeup()
        self._stopping = threading.Event()
        self._flush_deadline = float("inf")
        self.connected = threading.Event()
        self.refused_reason: str | None = None
        self.refused = threading.Event()
        self.acked_transitions = 0
        self._thread = threading.Thread(target=self._run, name="tandem-sender", daemon=True)

    # ---- called from the control loop ----------------------------------------------------------
    def start(self) -> "Sender":
        self._thread.start()
        return self

    def submit(self, item: Transition | EpisodeSummary) -> bool:
        """Queue a transition or episode summary without blocking; False (and counted) if the queue is full.

        With a spool, a transition is in the spool's log when this returns True.
        """
        if not self._batches.submit(item):
            return False
        if self._wakeup.napping and self._batches.batch_waits():
            self._wakeup.wake()
        return True

    def hold(self, transition: Transition) -> None:
        """The recorder's newest transition, not yet submitted: with a spool it is logged now, so a kill
        before the next step keeps it (as the cut episode's last, truncated step)."""
        self._batches.hold(transition)

    def close(self, flush_timeout_s: float = 10.0) -> bool:
        """Send what is queued, wait up to `flush_timeout_s` for acks, then close. True if all were acked."""
        self._flush_deadline = time.monotonic() + flush_timeout_s
        self._stopping.set()
        self._wakeup.wake()
        self._thread.join(timeout=flush_timeout_s + 5.0)
        return self.outstanding() == 0

    def outstanding(self) -> int:
        """Transitions not yet acked: queued, pending in a batch, or in flight."""
        return self._batches.outstanding()

    # ---- the sender thread ---------------------------------------------------------------------
    def _run(self) -> None:
        self._wakeup.open()
        self._open_socket()
        try:
            while not self._finished():
                if self._wait_for_work():
                    self._receive_all()
                if self.refused_reason:
                    return
                self._batches.collect(self._on_summary)
                self._batches.seal_partial(closing=self._stopping.is_set())
                self._send_unsent()
                self._keep_alive(time.monotonic())
        except Exception:  # keep the reason in the log; the control loop sees connected == False
            log.exception("sender thread failed")
        finally:
            self.connected.clear()
            self._m["connected"].set(0)
            self._sock.close(linger=0)
            self._wakeup.close()
            self._batches.close()

    def _wait_for_work(self) -> bool:
        """Wait up to NAP_MS for a reply or for a batch's worth to be submitted (not at all if there is work
        to do); True if a reply is waiting."""
        idle_ms = 0 if self._batches.can_collect() else NAP_MS
        if idle_ms:
            self._wakeup.napping = True  # set before looking again: a submit after this sees it and wakes us
            if self._batches.can_collect():
                idle_ms = 0
            if self._stopping.is_set():  # closing: never nap past the flush deadline
                idle_ms = min(idle_ms, max(0, int(1000 * (self._flush_deadline - time.monotonic())) + 1))
        ready = dict(self._poller.poll(timeout=idle_ms))
        self._wakeup.napping = False
        if self._wakeup.fileno in ready:
            self._wakeup.drain()
        return self._sock in ready

    def _finished(self) -> bool:
        if not self._stopping.is_set():
            return False
        all_sealed = self._batches.all_sealed()
        if all_sealed and not len(self._batches.unacked):
            return True
        if all_sealed and self._batches.spool is not None and self._liveness.is_gone(time.monotonic()):
            return True  # the learner is away and everything unacked is on disk: the next start resends it
        return time.monotonic() > self._flush_deadline

    def _open_socket(self) -> None:
        if self._sock is not None:
            self._sock.close(linger=0)
        self._sock = configure(self._context.socket(zmq.DEALER))
        self._poller = zmq.Poller()
        self._poller.register(self._sock, zmq.POLLIN)
        self._poller.register(self._wakeup.fileno, zmq.POLLIN)
        if self._security is not None:
            self._security.apply_client(self._sock)
        self._sock.connect(self._endpoint)
        self._send_hello()

    def _send_hello(self) -> None:
        self._hello.first_unacked_seq = self._batches.first_unacked_seq()
        self._send(self._hello)
        now = time.monotonic()
        self._hello_sent_at = now
        self._liveness.heard(now)  # give the learner a full liveness window to answer

    def _send(self, message: object, frames: list | None = None) -> int:
        frames = frames if frames is not None else encode(message)
        send_frames(self._sock, frames)
        self._liveness.sent()
        return sum(len(f) for f in frames)

    def _receive_all(self) -> None:
        while True:
            try:
                frames = recv_frames(self._sock)
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
            self._release(message.seq)
            self._on_learner_updates(message.learner_updates)
            self._catch_up_weights(message.policy_version)
        elif isinstance(message, Heartbeat):
            self._catch_up_weights(message.policy_version)
        elif isinstance(message, Weights):
            self._on_weights(message)

    def _catch_up_weights(self, learner_version: int) -> None:
        """Ask for the newest weights when the learner names a version PUB has not delivered for a while.

        PUB drops what a subscriber is not yet (or no longer) subscribed for, and the learner publishes
        rarely in some stages (once for a whole rollouts stage): an actor that missed that one version
        would act with the old policy forever while the learner waited for episodes of the new one.
        """
        now, have = time.monotonic(), self._have_version()
        if learner_version <= have:
            self._awaited = None
        elif self._awaited is None or self._awaited[0] <= have:  # nothing awaited yet, or it came and a newer is named
            self._awaited = (learner_version, now)
        elif now - self._awaited[1] >= self.config.weights_catch_up_s:
            log.info("weights v%d never arrived by PUB; asking the learner for them", self._awaited[0])
            self._send(WeightsRequest(have_version=have))
            self._awaited = (learner_version, now)

    def _on_welcome(self, welcome: Welcome) -> None:
        if welcome.rehello:
            # A restarted learner answers each batch still in flight from the lost session with a rehello. One
            # Hello answers them all: a Hello per rehello made the learner accept each, and every acceptance
            # resent the whole in-flight window again (a resend storm that kept 512-batch backlogs from
            # ever draining after a learner restart).
            if self.connected.is_set():
                self.connected.clear()
                self._send_hello()
            return
        if not welcome.accepted:
            self.refused_reason = welcome.reason
            self.refused.set()
            log.error("learner refused this actor: %s", welcome.reason)
            return
        self._release(welcome.acked_seq)
        self._batches.number_after(welcome.acked_seq)
        self._backoff_s = 0.1
        sent_before = self._sent_upto
        self._sent_upto = welcome.acked_seq  # everything after it goes (again) in order; the learner drops duplicates
        self._sent_at.clear()
        resent = self._batches.unacked.after(welcome.acked_seq)
        self._m["resent"].inc(sum(1 for seq, *_ in resent if seq <= sent_before))
        self._send(WeightsRequest(have_version=self._have_version()))
        self.connected.set()
        self._summaries.new_session()
        self._send_unsent()
        self._m["connected"].set(1)
        log.info("connected to learner (acked up to batch %d)", welcome.acked_seq)

    def _release(self, seq: int) -> None:
        """Everything up to `seq` is in the learner's replay: forget it in memory and on disk."""
        released = self._batches.release(seq)
        if released:
            self._acks_progressed_at = time.monotonic()
        while self._sent_at and next(iter(self._sent_at)) <= seq:
            self._sent_at.popitem(last=False)
        self._summaries.confirm(seq)
        self.acked_transitions += released
        self._m["acked"].inc(released)

    def _on_summary(self, summary: EpisodeSummary) -> None:
        """An episode's end reached the batcher, its transitions sealed before it: send them, then keep the
        summary until it is proven received, sent now if its place has come."""
        self._send_unsent()
        self._summaries.keep(summary, after_seq=self._batches.next_seq - 1)
        self._send_summaries(next_seq=self._sent_upto + 1)

    def _send_summaries(self, next_seq: int) -> None:
        if self.connected.is_set():
            self._summaries.send_due(next_seq, self._send)

    def _send_unsent(self) -> None:
        """Send sealed batches not yet sent in this session, in order, within the in-flight window, each kept
        summary in its place among them."""
        if not self.connected.is_set():
            return
        sent_bytes = sent = 0  # counted once a call: a metric's lock costs about what a small batch's send does
        try:
            for seq, frames, count in self._batches.unacked.after(self._sent_upto):
                if len(self._sent_at) >= self.config.max_unacked_batches:
                    return
                self._send_summaries(next_seq=seq)
                frames = self._batches.frames(seq, frames)
                self._sent_at[seq] = time.monotonic()
                self._sent_upto = seq
                sent_bytes += self._send(None, frames)
                sent += count
            self._send_summaries(next_seq=self._sent_upto + 1)
        finally:
            if sent:
                self._m["bytes"].inc(sent_bytes)
                self._m["sent"].inc(sent)

    def _keep_alive(self, now: float) -> None:
        if self._liveness.is_gone(now) and self._sock.poll(timeout=0):
            self._receive_all()  # a busy sender thread must not mistake unread replies for silence
        # Broken: the oldest batch in flight and the last ack that released anything are both older than the
        # timeout. A learner that acks steadily but is more than the timeout behind (8 twins at --time-scale
        # 20 on 2 cores) is slow, not broken: reconnecting then only sent the window again, every 10 s.
        oldest_sent = next(iter(self._sent_at.values()), now)
        broken = now - max(oldest_sent, self._acks_progressed_at) > self.config.ack_timeout_s
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
