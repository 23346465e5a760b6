"""The learner's network side: one thread owning the ROUTER (actors in) and the PUB (weights out).

Per message from an actor: decode (never trusting the peer) -> handshake or session lookup ->
exactly-once check by (actor_id, seq) -> validate against the spec -> replay -> ack. Anything bad is
counted by reason and dropped; the thread itself never dies of a bad message. Consecutive small batches
of one actor that queued up are validated and stored together (`BatchRun`).

Weights are handed over by the training thread through an inproc socket (`publish`), so the PUB
socket is only touched by this thread and the training thread never waits on the network.

Security: with `security` set, both sockets are CURVE servers behind a ZAP authenticator whose
allow-list holds actor public keys (`learner.keys`). An actor's identity is the name of its key
(taken from the ZMQ `User-Id` of its Hello), never the `actor_id` it writes; a Hello claiming another
name is refused. Handshakes that fail below the application (wrong mechanism, bad key) are counted too.

Durability: with a `journal`, each accepted batch (and its sequence number) is appended to the
journal before it is acked; acks of one receive round go out after one `journal.sync()`.

Pacing: with `updates` (the training loop's update count) every ack carries it in `learner_updates`,
and when the count has moved the server re-acks each session's last batch with the new count, so an
actor pacing itself on it (`actor --pace-utd`, which sends nothing while it waits) hears it advance.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import zmq
from prometheus_client import Counter, Histogram

from common import metrics
from common.codec import DecodeError, decode, encode
from common.protocol import (
    PROTOCOL_VERSION,
    Ack,
    EpisodeSummary,
    Heartbeat,
    Hello,
    TransitionBatch,
    Weights,
    WeightsRequest,
    Welcome,
)
from common.specs import RobotSpec, SpecError, spec_differences
from common.transport import (
    MAX_MESSAGE_BYTES,
    LinkSecurity,
    Liveness,
    SequenceTracker,
    configure,
    recv_frames,
    send_frames,
    tcp,
)
from common.types import concatenate_packed, unpack_transitions
from learner.batch_run import BatchRun

log = logging.getLogger(__name__)
# A receive round handles what is queued, at most 1000 messages and RECEIVE_ROUND_S, so publishing and session
# expiry get their turn (an actor hearing nothing for its liveness window, 3 s, reconnects and resends).
# Acks go out every ACK_INTERVAL_S within a round as well as at its end: acked only at the end, an actor whose
# window filled waited for the learner to drain everything sent before it could send more, and the two took
# turns idling (1 transition per batch: 55 % and 67 % of a core busy, 2.8k transitions/s).
# With a durable replay an ack waits for an fsync (2-5 ms on this box's disk), so the next in-round ack waits at
# least ACK_WAIT_PER_FLUSH times as long as the last flush took: flushing stays under a fifth of a busy round.
RECEIVE_ROUND_S = 0.1
ACK_INTERVAL_S = 0.005
ACK_WAIT_PER_FLUSH = 4
MAX_SUPERSEDED = 4096  # superseded connections remembered (5-byte ids; a fleet restarting for days stays small)
_INBOX_NUMBERS = itertools.count()


@dataclass
class Session:
    """One connected actor, keyed by its socket identity, with its labelled metrics bound once (a `labels`
    lookup takes a lock and costs more than the increment: three per batch were ~5 % of a one-transition
    batch's handling)."""

    actor_id: str
    robot: str
    liveness: Liveness
    received: Counter = field(init=False)
    received_bytes: Counter = field(init=False)
    duplicates: Counter = field(init=False)
    staleness: Histogram = field(init=False)

    def __post_init__(self) -> None:
        labels = (self.actor_id, self.robot)
        self.received = metrics.LEARNER_TRANSITIONS_RECEIVED.labels(*labels)
        self.received_bytes = metrics.LEARNER_BYTES_RECEIVED.labels(*labels)
        self.duplicates = metrics.LEARNER_DUPLICATES.labels(*labels)
        self.staleness = metrics.LEARNER_STALENESS.labels(*labels)


class Journal:
    """What the server needs from durable replay (see `learner.replay.durable.SegmentJournal`)."""

    def append(self, actor_id: str, seq: int, arrays: dict | None) -> None: ...

    def sync(self) -> None: ...


_HANDSHAKE_EVENTS = {
    zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL: "handshake_failed",
    zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL: "handshake_failed_protocol",
}


class LearnerServer:
    """Accepts actors, stores their transitions exactly once and publishes weights.

    `spec` may be None until the first actor says Hello (then that actor's spec is adopted and
    `on_spec` is called); `store(actor_id, columns)` writes a validated batch into replay;
    `on_episode(actor_id, summary)` receives episode summaries.
    """

    def __init__(
        self,
        host: str,
        port: int,
        spec: RobotSpec | None,
        store: Callable[[str, dict], None],
        on_episode: Callable[[str, EpisodeSummary], None] = lambda *_: None,
        on_spec: Callable[[RobotSpec], None] = lambda _spec: None,
        context: zmq.Context | None = None,
        security: LinkSecurity | None = None,
        journal: Journal | None = None,
        sequences: SequenceTracker | None = None,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        updates: Callable[[], int] | None = None,
    ) -> None:
        self.spec = spec
        self._updates = updates  # the learner's gradient-update count, for Ack.learner_updates (None: 0)
        self._told_updates = 0  # the count the last acks carried
        self._store, self._on_episode, self._on_spec = store, on_episode, on_spec
        self._security, self._journal = security, journal
        self._own_context = context is None and security is not None  # one ZAP handler per context
        self._context = zmq.Context() if self._own_context else (context or zmq.Context.instance())
        self.allow_list = self._authenticator = None
        if security is not None:
            from learner.keys import AllowList, start_authenticator

            self.allow_list = AllowList(security.allowed_dir)
            self._authenticator = start_authenticator(self._context, self.allow_list)
        self._router = configure(self._context.socket(zmq.ROUTER), hwm=10_000, max_message_bytes=max_message_bytes)
        self._router.setsockopt(zmq.ROUTER_MANDATORY, 0)
        self._pub = configure(self._context.socket(zmq.PUB), hwm=4)
        self._monitor = None
        if security is not None:
            security.apply_server(self._router)
            security.apply_server(self._pub)
            self._monitor = self._router.get_monitor_socket(sum(_HANDSHAKE_EVENTS))
        self.port = self._bind(self._router, host, port)
        self.weights_port = self._bind(self._pub, host, self.port + 1)
        # A counter, not id(self): ids are reused, and a closed server's inproc name can stay bound a moment.
        self._inbox_address = f"inproc://tandem-publish-{next(_INBOX_NUMBERS)}"
        self._inbox = self._context.socket(zmq.PAIR)
        self._inbox.bind(self._inbox_address)
        self._outbox = self._context.socket(zmq.PAIR)
        self._outbox.connect(self._inbox_address)
        self._outbox_lock = threading.Lock()
        self.sequences = sequences or SequenceTracker()
        self._pending_acks: list[tuple[bytes, int]] = []
        self._batch_run: BatchRun | None = None
        self.sessions: dict[bytes, Session] = {}
        # Connections whose actor id a newer Hello took over -> that id (the newest MAX_SUPERSEDED).
        self._superseded: OrderedDict[bytes, str] = OrderedDict()
        self._latest_weights: list | None = None
        self.latest_version = -1
        self._last_reject_log: dict[str, float] = {}
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tandem-server", daemon=True)

    @staticmethod
    def _bind(sock: zmq.Socket, host: str, port: int) -> int:
        if port == 0:
            return sock.bind_to_random_port(tcp(host, 0).rsplit(":", 1)[0])
        sock.bind(tcp(host, port))
        return port

    # ---- called from other threads -------------------------------------------------------------
    def start(self) -> "LearnerServer":
        self._thread.start()
        return self

    def close(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5.0)
        if self._monitor is not None:
            self._router.disable_monitor()
            self._monitor.close(linger=0)
        for sock in (self._outbox, self._inbox, self._router, self._pub):
            sock.close(linger=0)
        if self._journal is not None:
            self._journal.close()
        if self._authenticator is not None:
            self._authenticator.stop()
        if self._own_context:
            self._context.term()

    def publish(self, weights: Weights) -> None:
        """Queue `weights` for publication to every actor (latest wins). Called by the training thread."""
        frames = encode(weights)
        with self._outbox_lock:
            self._outbox.send_multipart(frames, copy=False)

    # ---- the server thread ---------------------------------------------------------------------
    def _run(self) -> None:
        poller = zmq.Poller()
        poller.register(self._router, zmq.POLLIN)
        poller.register(self._inbox, zmq.POLLIN)
        if self._monitor is not None:
            poller.register(self._monitor, zmq.POLLIN)
        while not self._stopping.is_set():
            ready = dict(poller.poll(timeout=100))
            if self._inbox in ready:
                self._publish_pending()
            if self._router in ready:
                self._receive_all()
                self._flush_acks()
            if self._monitor is not None and self._monitor in ready:
                self._count_handshake_failures()
            self._tell_updates()
            self._expire_sessions(time.monotonic())

    def _flush_acks(self) -> None:
        """Make this round's batches durable, then ack them (so an ack always means 'on disk')."""
        self._store_run()
        if not self._pending_acks:
            return
        if self._journal is not None:
            self._journal.sync()
        updates = self._told_updates = self._updates() if self._updates else 0
        # Acks are cumulative (an actor releases every batch up to the acked seq): one per actor per round,
        # for its highest batch, instead of one per batch (at 1 transition per batch, most of the traffic).
        highest: dict[bytes, int] = {}
        for identity, seq in self._pending_acks:
            highest[identity] = max(seq, highest.get(identity, seq))
        for identity, seq in highest.items():
            self._send(identity, Ack(seq, updates, self.latest_version))
        self._pending_acks.clear()

    def _tell_updates(self) -> None:
        """The update count moved since the last acks: re-ack every session's last batch with the new count."""
        updates = self._updates() if self._updates else 0
        if updates == self._told_updates:
            return
        self._told_updates = updates
        for identity, session in self.sessions.items():
            self._send(identity, Ack(self.sequences.acked(session.actor_id), updates, self.latest_version))

    def _count_handshake_failures(self) -> None:
        from zmq.utils.monitor import recv_monitor_message

        while True:
            try:
                event = recv_monitor_message(self._monitor, flags=zmq.NOBLOCK)
            except zmq.Again:
                return
            reason = _HANDSHAKE_EVENTS.get(event["event"])
            if reason:
                self._reject(reason, f"CURVE handshake failed from {event['endpoint']!r}")

    def _publish_pending(self) -> None:
        while True:
            try:
                frames = self._inbox.recv_multipart(flags=zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            self._latest_weights = frames
            header = decode(frames)
            self.latest_version = header.version
            self._pub.send_multipart(frames, copy=False)
            metrics.LEARNER_POLICY_VERSION.set(header.version)
            metrics.LEARNER_WEIGHTS_BYTES.set(sum(len(f.buffer) for f in frames))

    def _receive_all(self, budget: int = 1000, seconds: float = RECEIVE_ROUND_S) -> None:
        """One receive round: at most `budget` messages and `seconds`, so acks, publishing and expiry get
        their turn however long the queue is; acks also go out every ACK_INTERVAL_S during the round."""
        try:
            self._receive_round(budget, seconds)
        finally:
            self._store_run()

    def _receive_round(self, budget: int, seconds: float) -> None:
        now = time.monotonic()
        deadline, ack_due = now + seconds, now + ACK_INTERVAL_S
        for _ in range(budget):
            try:
                identity, *frames = recv_frames(self._router)
            except zmq.Again:
                return
            except ValueError:
                continue
            self._handle_frames(identity.bytes, frames)
            now = time.monotonic()
            if now > ack_due:
                self._flush_acks()
                flushed = time.monotonic()
                ack_due = flushed + max(ACK_INTERVAL_S, ACK_WAIT_PER_FLUSH * (flushed - now))
            if now > deadline:
                return

    def _handle_frames(self, identity: bytes, frames: list) -> None:
        try:
            message = decode(frames)
        except DecodeError as exc:
            self._reject(exc.reason, f"from {identity.hex()}: {exc}")
            return
        if not isinstance(message, TransitionBatch):
            self._store_run()  # whatever comes next (a Hello, a summary) finds the batches before it stored
        if identity in self._superseded:
            self._refuse_superseded(identity, type(message).__name__)
            return
        if isinstance(message, Hello):
            self._on_hello(identity, message, self._key_name(frames[0]))
            return
        session = self.sessions.get(identity)
        if session is None:
            self._reject("unknown_actor", f"{type(message).__name__} before Hello")
            self._send(identity, Welcome(accepted=False, reason="no session; send Hello", rehello=True))
            return
        session.liveness.heard()
        if isinstance(message, TransitionBatch):
            self._on_batch(identity, session, message, sum(map(len, frames)))  # Frame.__len__: no memoryview
        elif isinstance(message, Heartbeat):
            self._send(identity, Heartbeat(sent_at=time.time(), policy_version=self.latest_version))
        elif isinstance(message, EpisodeSummary):
            self._on_episode(session.actor_id, message)
        elif isinstance(message, WeightsRequest):
            if self._latest_weights is not None and self.latest_version > message.have_version:
                self._router.send_multipart([identity, *self._latest_weights], copy=False)
        else:
            self._reject("unexpected_kind", type(message).__name__)

    def _refuse_superseded(self, identity: bytes, kind: str) -> None:
        """A message on a connection whose actor id a newer connection took over: the old one is either a
        dead process's last messages (the refusal goes nowhere) or a second live actor with the same id,
        whose batches would carry the same sequence numbers as the first's and be dropped as duplicates
        after being acked. Newest wins; the other is told why and stops, instead of the two taking the
        id from each other by rehello and losing each other's data."""
        actor_id = self._superseded[identity]
        reason = (f"actor id {actor_id!r} was taken over by a newer connection: this actor restarted, or another "
                  f"actor runs with the same id (give each robot its own --actor-id)")  # fmt: skip
        self._reject("superseded", f"{kind} from a connection superseded as {actor_id!r}")
        self._send(identity, Welcome(accepted=False, reason=reason))

    def _key_name(self, frame: zmq.Frame) -> str | None:
        """The allow-list name of the CURVE key this frame arrived with (None without CURVE)."""
        if self.allow_list is None:
            return None
        try:
            user_id = frame.get("User-Id")
        except (zmq.ZMQError, AttributeError):
            return ""
        return self.allow_list.name_of(user_id.encode()) or ""

    def _on_hello(self, identity: bytes, hello: Hello, key_name: str | None = None) -> None:
        if key_name is not None and key_name != hello.actor_id:
            refusal = (f"identity mismatch: this actor's key is {key_name or 'revoked'!r} on the learner's "
                       f"allow-list, but its Hello says actor_id {hello.actor_id!r}")  # fmt: skip
            self._reject("identity_mismatch", refusal)
            self._send(identity, Welcome(accepted=False, reason=refusal))
            return
        refusal = self._refusal(hello)
        if refusal:
            self._reject("handshake_refused", refusal)
            learner_hash = self.spec.spec_hash if self.spec else ""
            self._send(identity, Welcome(accepted=False, reason=refusal, learner_spec_hash=learner_hash))
            return
        for other, session in list(self.sessions.items()):
            if session.actor_id == hello.actor_id and other != identity:
                del self.sessions[other]  # a restarted actor takes over its id
                self._superseded[other] = hello.actor_id
                while len(self._superseded) > MAX_SUPERSEDED:
                    self._superseded.popitem(last=False)
        self.sessions[identity] = Session(hello.actor_id, hello.robot, Liveness())
        self.sessions[identity].liveness.heard()
        if hello.first_unacked_seq > 0:
            skipped = self.sequences.resume(hello.actor_id, hello.first_unacked_seq)
            if skipped and self._journal is not None:
                self._journal.append(hello.actor_id, self.sequences.acked(hello.actor_id), None)
                self._journal.sync()
            if skipped:
                log.warning("actor %s: %d batches were never seen by this learner", hello.actor_id, skipped)
        acked = self.sequences.acked(hello.actor_id)
        self._send(identity, Welcome(True, "", acked, self.spec.spec_hash, self.latest_version))
        metrics.LEARNER_ACTORS_CONNECTED.set(len(self.sessions))
        log.info("actor %s (%s) connected; resumes after batch %d", hello.actor_id, hello.robot, acked)

    def _refusal(self, hello: Hello) -> str:
        if hello.protocol_version != PROTOCOL_VERSION:
            return f"protocol version mismatch: actor {hello.protocol_version}, learner {PROTOCOL_VERSION}"
        if self.spec is None:
            try:
                self.spec = RobotSpec.from_json(hello.spec_json)
            except (SpecError, ValueError, KeyError, TypeError) as exc:
                return f"unreadable robot spec: {exc}"
            self._on_spec(self.spec)
        if hello.spec_hash != self.spec.spec_hash:
            return (
                f"spec hash mismatch: actor {hello.robot} has {hello.spec_hash}, "
                f"learner trains {self.spec.name} with {self.spec.spec_hash}{_listed_differences(self.spec, hello)}"
            )
        return ""

    def _on_batch(self, identity: bytes, session: Session, batch: TransitionBatch, size: int) -> None:
        run = self._batch_run
        if run is not None and run.takes(identity, batch, size):
            run.add(batch, size)
            return
        self._store_run()
        verdict = self.sequences.classify(session.actor_id, batch.seq)
        if verdict == "duplicate":
            session.duplicates.inc()
            self._pending_acks.append((identity, batch.seq))
            return
        if verdict == "gap":
            self._reject("sequence_gap", f"{session.actor_id}: got {batch.seq}, "
                                         f"expected {self.sequences.acked(session.actor_id) + 1}")  # fmt: skip
            return
        self._batch_run = BatchRun(identity, session, [batch], [size])

    def _store_run(self) -> None:
        """Store the batch run gathered so far (see `BatchRun`)."""
        run, self._batch_run = self._batch_run, None
        if run is not None:
            self._store_batches(run.identity, run.session, run.batches, run.sizes)

    def _store_batches(self, identity: bytes, session: Session, batches: list, sizes: list[int]) -> None:
        """Validate consecutive new batches of one session as one, journal each, store them as one and ack the
        last. If they fail together, each half is handled alone, and so on, so only a bad batch is refused."""
        try:
            columns = unpack_transitions(concatenate_packed([b.arrays for b in batches], self.spec), self.spec)
        except SpecError as exc:
            if len(batches) > 1:  # halves, until the bad ones stand alone: a few stores, not one per batch
                half = len(batches) // 2
                self._store_batches(identity, session, batches[:half], sizes[:half])
                self._store_batches(identity, session, batches[half:], sizes[half:])
                return
            self._reject("invalid_batch", f"{session.actor_id}: {exc}")
            columns = None  # acked anyway: resending a batch that can never be valid helps nobody
        for batch in batches:
            if self._journal is not None:  # before replay: what is in memory is always on disk too
                self._journal.append(session.actor_id, batch.seq, batch.arrays if columns is not None else None)
            self.sequences.commit(session.actor_id, batch.seq)
        if columns is not None:
            self._store(session.actor_id, columns)
            session.received.inc(len(columns["reward"]))
            session.received_bytes.inc(sum(sizes))
            self._observe_staleness(session, columns["policy_version"])
        self._pending_acks.append((identity, batches[-1].seq))

    def _observe_staleness(self, session: Session, versions: np.ndarray) -> None:
        """One observation per stored run of batches: how many versions behind its oldest policy-chosen
        transition is."""
        acted = versions[versions >= 0]
        if self.latest_version >= 0 and acted.size:
            session.staleness.observe(float(self.latest_version - acted.min()))

    def _send(self, identity: bytes, message: object) -> None:
        send_frames(self._router, [identity, *encode(message)])

    def _reject(self, reason: str, detail: str) -> None:
        metrics.LEARNER_REJECTED.labels(reason).inc()
        now = time.monotonic()
        if now - self._last_reject_log.get(reason, -1e9) >= 1.0:  # a flood must not become a log flood
            self._last_reject_log[reason] = now
            log.warning("rejected message (%s): %s", reason, detail)

    def _expire_sessions(self, now: float) -> None:
        gone = [identity for identity, session in self.sessions.items() if session.liveness.is_gone(now)]
        for identity in gone:
            log.info("actor %s went silent; session closed", self.sessions.pop(identity).actor_id)
        if gone:
            metrics.LEARNER_ACTORS_CONNECTED.set(len(self.sessions))


def _listed_differences(learner_spec: RobotSpec, hello: Hello) -> str:
    """": <what differs>" between the learner's spec and the one an actor sent (empty if it is unreadable)."""
    try:
        actor_spec = RobotSpec.from_json(hello.spec_json)
    except (SpecError, ValueError, KeyError, TypeError):
        return ""
    differences = spec_differences(learner_spec, actor_spec)
    return (": " + "; ".join(differences)) if differences else ""
