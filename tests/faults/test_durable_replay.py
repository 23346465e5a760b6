"""Durable replay on real files: round trip, torn and corrupt segments reported and skipped, pruning, resume."""

from __future__ import annotations

import numpy as np
import pytest

from common.types import pack_transitions, unpack_transitions
from learner.replay.buffer import ReplayBuffer
from learner.replay.durable import SegmentJournal, read_journal, restore, segment_paths, set_aside
from learner.server import LearnerServer
from tests.conftest import metric
from tests.integration.test_transport import SPEC, Store, send_all, transitions

pytestmark = pytest.mark.timeout(30)


def write(directory, batches: int, per_batch: int = 8, **kwargs) -> SegmentJournal:
    journal = SegmentJournal(directory, keep_transitions=10**6, **kwargs)
    for seq in range(1, batches + 1):
        journal.append("a1", seq, pack_transitions(transitions((seq - 1) * per_batch, per_batch)))
    journal.sync()
    return journal


def markers(directory) -> list[int]:
    records = [r for r in read_journal(directory) if r.arrays is not None]
    return [int(x) for r in records for x in unpack_transitions(r.arrays, SPEC)["observation/state"][:, 0]]


def test_batches_come_back_exactly_with_their_sequence_numbers(tmp_path):
    write(tmp_path, 20).close()
    assert markers(tmp_path) == list(range(160))
    first = next(read_journal(tmp_path))
    original = pack_transitions(transitions(0, 8))
    assert first.seq == 1 and all(np.array_equal(first.arrays[k], v) and first.arrays[k].dtype == v.dtype
                                  for k, v in original.items())  # fmt: skip


def test_uint8_images_stay_uint8_and_compress_when_it_pays(tmp_path):
    journal = SegmentJournal(tmp_path, keep_transitions=100)
    image = np.zeros((4, 64, 64, 3), np.uint8)  # flat frames compress well
    journal.append("cam", 1, {"rows/image": image, "reward": np.zeros(4, np.float32)})
    journal.close()
    record = next(read_journal(tmp_path))
    assert record.arrays["rows/image"].dtype == np.uint8 and record.arrays["rows/image"].shape == image.shape
    assert journal.disk_bytes() < image.nbytes / 10


def test_a_torn_tail_is_reported_counted_and_skipped(tmp_path):
    write(tmp_path, 10).close()
    segment = segment_paths(tmp_path)[-1]
    segment.write_bytes(segment.read_bytes()[:-7])  # killed mid-write
    before = metric("tandem_learner_replay_corrupt_records_total")
    assert markers(tmp_path) == list(range(72))  # the 9 intact batches, nothing half-loaded
    assert metric("tandem_learner_replay_corrupt_records_total") == before + 1


def test_a_flipped_byte_is_detected_by_the_checksum(tmp_path):
    write(tmp_path, 10).close()
    segment = segment_paths(tmp_path)[-1]
    data = bytearray(segment.read_bytes())
    data[len(data) // 2] ^= 0xFF
    segment.write_bytes(bytes(data))
    found = markers(tmp_path)
    assert found == list(range(len(found))) and len(found) < 80  # a clean prefix, never a damaged record


def test_old_segments_are_pruned_but_sequence_numbers_survive(tmp_path):
    journal = SegmentJournal(tmp_path, keep_transitions=64, segment_bytes=2000)
    for seq in range(1, 60):
        journal.append("a1", seq, pack_transitions(transitions(seq * 8, 8)))
    journal.append("a2", 5, None)  # a sequence-number move without data
    journal.close()
    assert len(segment_paths(tmp_path)) < 20
    from learner.replay.durable import ReadReport

    report = ReadReport()
    kept = list(read_journal(tmp_path, report))
    assert report.acked == {"a1": 59, "a2": 5}
    assert 64 <= report.transitions < 59 * 8 and kept[-2].seq == 59


def test_restore_refills_replay_with_the_same_content(tmp_path, port):
    store = Store()
    journal = SegmentJournal(tmp_path, keep_transitions=10**6, fsync=False)
    server = LearnerServer("127.0.0.1", port, SPEC, store, journal=journal).start()
    try:
        send_all(port, "a1", transitions(0, 300))
    finally:
        server.close()
    live = ReplayBuffer(SPEC, 1000)
    for columns in store.columns["a1"]:
        live.add_online(columns, "a1")
    restored = ReplayBuffer(SPEC, 1000)
    report = restore(tmp_path, SPEC, lambda actor, columns: restored.add_online(columns, actor))
    assert report.transitions == 300 and report.acked["a1"] == server.sequences.acked("a1")
    assert replay_hash(restored) == replay_hash(live)


def replay_hash(replay: ReplayBuffer) -> str:
    import hashlib

    digest = hashlib.sha256()
    store = replay._online
    size = store.rows.size
    # The episode index too (successor links, returns-to-go): a resumed learner must draw the same sequences.
    links, returns = store.links, store.returns
    index = {"next_id": links.next_id, "next_slot": links.next_slot, "mc_return": returns.mc_return,
             "known": returns.known}  # fmt: skip
    for name, array in sorted({**store.rows.arrays, **index}.items()):
        digest.update(np.ascontiguousarray(array[:size]).tobytes())
    return digest.hexdigest()


def test_unpack_of_a_restored_batch_matches_the_wire(tmp_path):
    write(tmp_path, 1).close()
    record = next(read_journal(tmp_path))
    columns = unpack_transitions(record.arrays, SPEC)
    assert len(columns["reward"]) == 8


def test_a_fresh_run_sets_the_earlier_runs_state_aside_instead_of_mixing_with_it(tmp_path):
    for name in ("replay", "checkpoints", "videos"):  # old videos would pass for this run's latest
        (tmp_path / name).mkdir()
        (tmp_path / name / "marker").write_text(name)
    (tmp_path / "best_policy.npz").write_bytes(b"old best")
    set_aside(tmp_path)
    assert not any((tmp_path / name).exists() for name in ("replay", "checkpoints", "best_policy.npz", "videos"))
    assert (tmp_path / "previous" / "videos" / "marker").read_text() == "videos"
    assert (tmp_path / "previous" / "replay" / "marker").read_text() == "replay"
    assert (tmp_path / "previous" / "best_policy.npz").read_bytes() == b"old best"
