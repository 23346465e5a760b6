"""The actor's batches: what the control loop submits, numbered into batches and kept until the learner acks them.

The control loop only calls `submit()` (and `hold()`), which never wait: transitions go into a bounded queue
(with a spool, after one append to its log) and a full queue drops (and counts) instead of stalling the robot.
The sender thread (`actor.sender`) does the rest through this class: it collects queued transitions into
batches and seals them, sends what is sealed, and releases what is acked.

Sealing a batch (giving it the next sequence number) is separate from sending it. Sealed batches wait for their
ack in memory (at most `max_unacked_batches`) and, with a spool directory, on disk: then batches keep being sealed
while the learner is away, up to the spool's byte limit, and a restarted actor resends what its previous process
left unacked, continuing its numbering.

What a killed actor process loses: with a spool, nothing it recorded. `submit` (and `hold`, for the step the
recorder still holds back) append each transition to the spool's transition log before they return, and a
restarted actor seals the logged transitions no batch holds yet (`actor.spool_log`). Without a spool: every
transition not yet acked (queued, pending, and in flight).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Callable

from common.codec import encode
from common.protocol import EpisodeSummary, TransitionBatch
from common.transport import UnackedBatches
from common.types import Transition, pack_transitions

if TYPE_CHECKING:
    from actor.sender import SenderConfig

log = logging.getLogger(__name__)

# The longest one collect() spends batching queued items before the sender thread reads replies, sends and
# beats again. Without it a producer faster than sealing (a twin at --time-scale 20, or a backlog spooled with
# an fsync per batch) kept the thread batching for tens of seconds: the learner's Welcome and acks went unread
# and the learner closed the silent session, over and over (seen in CI after a learner restart).
COLLECT_BUDGET_S = 0.02


class Batcher:
    """Submitted transitions -> numbered batches (encoded frames), kept in memory and, with a spool, on disk until
    acked. `submit` and `hold` are called from the control loop; everything else from the sender thread."""

    def __init__(self, config: SenderConfig, bound_metrics: dict) -> None:
        self.config = config
        self._m = bound_metrics
        # Submitted, not yet batched: (tid, item). A deque, not a queue.Queue: its append and popleft are atomic
        # under the GIL, and Queue's lock and condition cost more per transition than the rest of submit.
        self._queue: deque[tuple[int, Transition | EpisodeSummary]] = deque()
        self.unacked = UnackedBatches()
        self._pending: list[tuple[int, Transition]] = []  # (tid in the spool's log, or 0; transition)
        self._pending_since = 0.0
        self.next_seq = 1
        self.seq_known = False  # numbering is safe once the learner (or our own spool) said where to start
        self.room = threading.Event()  # set while submit() has room (PauseWhenFull waits on it)
        self.room.set()
        self.spool = self._log = None
        if config.spool_dir:
            self._open_spool()
        self._spool_full_logged = False

    def _open_spool(self) -> None:
        from actor.spool import Spool
        from actor.spool_log import TransitionLog

        self.spool = Spool(self.config.spool_dir, self.config.spool_max_bytes, self.config.spool_fsync)
        for seq, count in self.spool.load():  # a previous process's unacked batches: resent first
            self.unacked.add(seq, None, count)
        self.next_seq = self.spool.last_seq() + 1
        self.seq_known = self.spool.last_seq() > 0
        self._log = TransitionLog(self.config.spool_dir)
        self._pending = self._log.recover(self.spool.sealed_tid())  # recorded, never sealed: sealed next
        self._pending_since = time.monotonic()
        if len(self.unacked) or self._pending:
            log.info("spool holds %d unacked batches and %d unsealed transitions from a previous run",
                     len(self.unacked), len(self._pending))  # fmt: skip

    # ---- called from the control loop ----------------------------------------------------------
    def submit(self, item: Transition | EpisodeSummary) -> bool:
        """Queue a transition or episode summary without blocking; False (and counted) if the queue is full.

        With a spool, a transition is in the spool's log when this returns True.
        """
        if len(self._queue) >= self.config.queue_size:
            self.room.clear()
            self._m["dropped"].inc()
            return False
        tid = self._log.release(item) if self._log is not None and isinstance(item, Transition) else 0
        self._queue.append((tid, item))
        return True

    def batch_waits(self) -> bool:
        """A full batch, or an episode's end, is waiting to be sealed: the sender thread has work."""
        if len(self._queue) + len(self._pending) >= self.config.batch_size:
            return True
        try:
            return isinstance(self._queue[-1][1], EpisodeSummary)
        except IndexError:  # the sender thread took everything meanwhile
            return False

    def hold(self, transition: Transition) -> None:
        """The recorder's newest transition, not yet submitted: with a spool it is logged now, so a kill
        before the next step keeps it (as the cut episode's last, truncated step)."""
        if self._log is not None:
            self._log.hold(transition)

    def outstanding(self) -> int:
        """Transitions not yet acked: queued, pending in a batch, or in flight."""
        return len(self._queue) + len(self._pending) + self.unacked.transitions

    # ---- the sender thread ---------------------------------------------------------------------
    def can_collect(self) -> bool:
        """Something is queued and a batch could be sealed now."""
        return bool(self._queue) and self.can_seal()

    def all_sealed(self) -> bool:
        """Nothing queued or pending: every submitted transition is in a numbered batch."""
        return not self._queue and not self._pending

    def first_unacked_seq(self) -> int:
        """Where our numbering stands, for the Hello: the oldest batch held, or the next one if it is known, else 0."""
        return self.unacked.oldest_seq() or (self.next_seq if self.seq_known else 0)

    def number_after(self, acked_seq: int) -> None:
        """The learner holds every batch up to `acked_seq`: new batches are numbered after it."""
        self.next_seq = max(self.next_seq, acked_seq + 1)
        self.seq_known = True

    def collect(self, on_summary: Callable[[EpisodeSummary], None]) -> None:
        """Move queued items into batches of exactly `batch_size`, sealing each as soon as there is room; an
        episode summary goes to `on_summary` once the transitions before it are sealed (when they can be).

        While nothing can be sealed (memory window or spool full, or numbering not yet known) at most
        one batch is held here; the rest stays in the bounded queue, whose overflow is counted. One call
        takes at most about COLLECT_BUDGET_S; what is left waits for the thread's next pass.
        """
        deadline = time.monotonic() + COLLECT_BUDGET_S
        while time.monotonic() < deadline:
            if len(self._pending) >= self.config.batch_size and not self.seal():
                break
            try:
                tid, item = self._queue.popleft()
            except IndexError:
                break
            if isinstance(item, EpisodeSummary):
                self.seal()  # the episode's transitions go first when they can
                on_summary(item)
                continue
            if not self._pending:
                self._pending_since = time.monotonic()
            self._pending.append((tid, item))
        if len(self._queue) < self.config.queue_size:
            self.room.set()
        self._m["queue"].set(len(self._queue))
        self._m["unacked"].set(self.unacked.transitions)  # once a pass, not per sealed batch

    def can_seal(self) -> bool:
        if not self.seq_known:
            return False
        if self.spool is None:
            return len(self.unacked) < self.config.max_unacked_batches
        if self.spool.full:
            if not self._spool_full_logged:
                log.error("SPOOL FULL (%d batches, %d bytes in %s): no room for new transitions until the "
                          "learner acks", len(self.spool), self.spool.bytes, self.spool.directory)  # fmt: skip
                self._spool_full_logged = True
            return False
        self._spool_full_logged = False
        return True

    def seal(self) -> bool:
        """Number up to `batch_size` pending transitions as the next batch; False if there is no room now."""
        if not self._pending or not self.can_seal():
            return False
        batch, self._pending = self._pending[: self.config.batch_size], self._pending[self.config.batch_size :]
        self._pending_since = time.monotonic()
        seq, self.next_seq = self.next_seq, self.next_seq + 1
        frames = encode(TransitionBatch(seq=seq, arrays=pack_transitions([t for _, t in batch])))
        keep = frames
        if self.spool is not None:
            self.spool.put(seq, frames, len(batch), last_tid=batch[-1][0])
            self._log.prune(sealed_tid=batch[-1][0])
            self._m["spooled"].inc(len(batch))
            self._m["spool_depth"].set(self.unacked.transitions + len(batch))
            self._m["spool_bytes"].set(self.spool.bytes)
            if self.unacked.in_memory >= self.config.max_unacked_batches:
                keep = None  # on disk only; read back when its turn to be sent comes
        self.unacked.add(seq, keep, len(batch))
        return True

    def seal_partial(self, closing: bool) -> None:
        """Seal a partial batch that waited flush_interval_s, or at close, once nothing more is queued to join
        it: submits racing close() (a submit wakes the sender thread) otherwise left a partial batch and then
        another."""
        if not self._pending or self._queue:
            return
        if closing or time.monotonic() - self._pending_since >= self.config.flush_interval_s:
            self.seal()

    def frames(self, seq: int, frames: list | None) -> list:
        """A sealed batch's frames: those held in memory, or read back from the spool."""
        return frames if frames is not None else self.spool.get(seq)

    def release(self, seq: int) -> int:
        """Everything up to `seq` is in the learner's replay: forget it in memory and on disk; returns the
        transitions released."""
        released = self.unacked.ack(seq)
        if self.spool is not None:
            self.spool.ack(seq)
            self._m["spool_depth"].set(self.unacked.transitions)
            self._m["spool_bytes"].set(self.spool.bytes)
        self._m["unacked"].set(self.unacked.transitions)
        return released

    def close(self) -> None:
        """Close the spool's files (what they hold stays for the next process)."""
        if self.spool is not None:
            self._log.close()
            self.spool.close()
