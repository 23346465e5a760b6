"""The actor's window of sealed, unacked batches (common.transport.UnackedBatches)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from common.transport import UnackedBatches


@given(st.lists(st.integers(1, 5), min_size=0, max_size=40), st.integers(0, 60), st.integers(0, 60))
def test_after_yields_every_batch_newer_than_a_seq_oldest_first(sizes, acked_upto, after_seq):
    window = UnackedBatches()
    for seq, size in enumerate(sizes, start=1):
        window.add(seq, [b"frame"] if seq % 3 else None, size)
    window.ack(acked_upto)
    kept = [(seq, [b"frame"] if seq % 3 else None, size) for seq, size in enumerate(sizes, start=1) if seq > acked_upto]
    assert list(window.after(after_seq)) == [batch for batch in kept if batch[0] > after_seq]
    assert window.transitions == sum(size for _, _, size in kept)
