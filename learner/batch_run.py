"""Consecutive small batches of one actor, received in one round, validated and stored as one (`learner.server`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from common.protocol import TransitionBatch
from common.types import STEPS

if TYPE_CHECKING:
    from learner.server import Session

# Batches up to RUN_BATCH_BYTES join a BatchRun, up to RUN_BYTES in all: the extra copy of 64 KiB of rows (~6 us
# here) is a tenth of what handling a batch alone costs (~75 us at one transition per batch), so a run always pays.
RUN_BATCH_BYTES = 64 * 1024
RUN_BYTES = 1 << 20


@dataclass
class BatchRun:
    """Consecutive new batches of one session, received in one round, to be validated and stored as one.

    An actor sending small batches faster than the learner handles them one by one leaves a queue of them;
    validating, journalling and storing each alone cost ~75 us a batch at one transition per batch, mostly
    per-call overhead (numpy checks, replay's bookkeeping, metrics). A run takes small protocol-5 batches
    only: joining costs a copy of the observation rows (`concatenate_packed`), which a big batch does not
    win back. It ends at the round's end, at an ack flush, and at any other message.
    """

    identity: bytes
    session: Session
    batches: list[TransitionBatch]
    sizes: list[int]
    total_bytes: int = 0

    def __post_init__(self) -> None:
        self.total_bytes = sum(self.sizes)

    def takes(self, identity: bytes, batch: TransitionBatch, size: int) -> bool:
        last = self.batches[-1]
        return (identity == self.identity and batch.seq == last.seq + 1 and size <= RUN_BATCH_BYTES
                and self.sizes[0] <= RUN_BATCH_BYTES and self.total_bytes + size <= RUN_BYTES
                and STEPS in batch.arrays and STEPS in last.arrays)  # fmt: skip

    def add(self, batch: TransitionBatch, size: int) -> None:
        self.batches.append(batch)
        self.sizes.append(size)
        self.total_bytes += size
