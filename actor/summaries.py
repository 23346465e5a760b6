"""Episode summaries an actor keeps until the learner has provably received them.

A summary is not a numbered batch, so no ack names it. It is kept until an ack arrives for a batch sent after
it on the same connection (the link is ordered, so that batch's arrival proves the summary's), and after each
Welcome every one still kept is sent again in its place in the stream: right after the last batch sealed
before its episode ended. (Sending them all ahead of the batches put thousands of summaries before the first
batch after a long outage; on a loaded learner the first ack then came after the actor's liveness window, so
it reconnected and sent them all again: a livelock.) The learner drops copies it already has, by (actor,
episode).
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from typing import Callable

from common.protocol import EpisodeSummary

log = logging.getLogger(__name__)

MAX_UNCONFIRMED_SUMMARIES = 10_000  # episodes kept for resending; far beyond any outage a run survives
SUMMARY_DROP_WARN_EVERY = 1000  # a long outage past that drops one summary per episode: warn, but not each time


@dataclass
class KeptSummary:
    """A summary not yet proven received, and where it goes in the stream of batches."""

    after_seq: int  # the last batch sealed before the episode ended: the summary is sent right after it
    summary: EpisodeSummary
    proof_seq: float = float("inf")  # in this session, the first batch sent after it: its ack proves receipt


class UnconfirmedSummaries:
    """The kept summaries, oldest first; those sent in this session are a prefix of them."""

    def __init__(self) -> None:
        self._kept: deque[KeptSummary] = deque()
        self._sent = 0  # how many of them (from the left) were sent in this session
        self.dropped = 0

    def keep(self, summary: EpisodeSummary, after_seq: int) -> None:
        """Keep a summary whose episode ended after batch `after_seq`; past the limit the oldest is dropped."""
        if len(self._kept) >= MAX_UNCONFIRMED_SUMMARIES:
            self.dropped += 1
            if self.dropped % SUMMARY_DROP_WARN_EVERY == 1:  # the first, then one line per thousand
                log.warning("%d episode summaries unconfirmed; the oldest is dropped (%d dropped so far)",
                            len(self._kept), self.dropped)  # fmt: skip
            self._kept.popleft()
            self._sent = max(self._sent - 1, 0)
        self._kept.append(KeptSummary(after_seq, summary))

    def send_due(self, next_seq: int, send: Callable[[EpisodeSummary], object]) -> None:
        """Send, in order, the summaries not sent in this session whose place is before batch `next_seq`, the
        next batch to go out (its ack will prove them received)."""
        while self._sent < len(self._kept) and (kept := self._kept[self._sent]).after_seq < next_seq:
            kept.proof_seq = next_seq
            send(kept.summary)
            self._sent += 1

    def confirm(self, acked_seq: int) -> None:
        """Forget every summary a batch up to `acked_seq` (sent after it) proves received."""
        while self._kept and self._kept[0].proof_seq <= acked_seq:
            self._kept.popleft()
            self._sent -= 1

    def new_session(self) -> None:
        """A Welcome: nothing is sent in the new session yet; each goes again in its place."""
        self._sent = 0
        for kept in self._kept:
            kept.proof_seq = float("inf")
