"""Durable replay: accepted batches appended to checksummed segment files, read back on `--resume`.

Directory `RUN_DIR/replay/`: `spec.json` (the robot spec) and `seg-NNNNNNNN.log` files. A segment is
a sequence of records:

    "TRJ1" | crc32 (u32) | meta length (u32) | body length (u64) | meta (msgpack) | body

The CRC covers both lengths, the meta and the body. The meta says who sent the batch and its
sequence number, and describes the arrays (name, dtype, shape) in the wire layout (an observation
is stored once per step, uint8 images stay uint8); the body is their bytes, zlib-compressed when that
saves at least 10 %. A record with no arrays just moves an actor's sequence number (a batch that was
acked without being stored). Each segment starts with a record of every actor's acked sequence
number, so old segments can be deleted without forgetting where any actor stands.

The server appends before it stores in memory and `sync()`s (flush + fsync) before it acks, so an
ack always means "on disk", and the sequence numbers on disk always match the data on disk: after a
`kill -9` at any moment, the actor's resend fills exactly the gap.

Reading stops at the first damaged record of a segment (torn tail or corruption): it is reported,
counted and skipped, never loaded.
"""

from __future__ import annotations

import logging
import os
import shutil
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Mapping

import msgpack
import numpy as np

from common import metrics
from common.specs import ALLOWED_DTYPES, RobotSpec
from common.types import batch_length, unpack_transitions

log = logging.getLogger(__name__)

_MAGIC = b"TRJ1"
_PREFIX = struct.Struct("<4sIIQ")  # magic, crc, meta length, body length
_LENGTHS = struct.Struct("<IQ")
SEGMENT_GLOB = "seg-*.log"


@dataclass
class Record:
    """One journal entry: a batch (arrays) or a sequence-number move (arrays None)."""

    actor_id: str
    seq: int
    arrays: dict[str, np.ndarray] | None


@dataclass
class ReadReport:
    """What `read_journal` found: good records, damaged ones (skipped), per-actor acked seq."""

    records: int = 0
    transitions: int = 0
    damaged: list[str] = field(default_factory=list)
    acked: dict[str, int] = field(default_factory=dict)


class SegmentJournal:
    """Appends records to the current segment; rotates at `segment_bytes`; deletes segments no longer needed.

    Used from the server thread only. `keep_transitions` (the replay capacity) bounds the disk: a
    segment is deleted once the newer segments hold at least that many transitions.
    """

    def __init__(self, directory: str | Path, keep_transitions: int, segment_bytes: int = 64 << 20,
                 fsync: bool = True, acked: Mapping[str, int] | None = None) -> None:  # fmt: skip
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.keep_transitions, self.segment_bytes, self.fsync = keep_transitions, segment_bytes, fsync
        self._acked: dict[str, int] = dict(acked or {})
        # Segments from before a restart count as empty: they are kept until newer ones fill the capacity.
        self._segments: list[tuple[Path, int]] = [(p, 0) for p in segment_paths(self.directory)]
        self._file = None
        self._rows = 0
        self._dirty = False
        self._open_new_segment()

    def append(self, actor_id: str, seq: int, arrays: Mapping[str, np.ndarray] | None) -> None:
        """Append one record (not yet durable: call `sync`)."""
        if self._file.tell() >= self.segment_bytes:
            self._open_new_segment()
        self._write({"t": "batch", "actor": actor_id, "seq": seq}, arrays)
        self._acked[actor_id] = max(seq, self._acked.get(actor_id, 0))
        if arrays is not None:
            self._rows += batch_length(arrays)

    def sync(self) -> None:
        """Make every appended record durable (flush to the OS, fsync to the disk)."""
        if not self._dirty:
            return
        self._file.flush()
        if self.fsync:
            os.fsync(self._file.fileno())
        self._dirty = False
        metrics.LEARNER_REPLAY_DISK_BYTES.set(self.disk_bytes())

    def close(self) -> None:
        self.sync()
        self._file.close()

    def disk_bytes(self) -> int:
        return sum(p.stat().st_size for p, _ in self._segments if p.exists())

    # ---- internals -----------------------------------------------------------------------------
    def _open_new_segment(self) -> None:
        if self._file is not None:
            self.sync()
            self._file.close()
            self._segments[-1] = (self._segments[-1][0], self._rows)
        number = int(self._segments[-1][0].stem.split("-")[1]) + 1 if self._segments else 1
        path = self.directory / f"seg-{number:08d}.log"
        self._file = open(path, "ab")
        self._segments.append((path, 0))
        self._rows = 0
        self._write({"t": "seqs", "acked": dict(self._acked)}, None)
        self._prune()

    def _prune(self) -> None:
        """Delete the oldest segments while the newer ones (excluding the open one) hold enough rows."""
        while len(self._segments) > 2:
            newer = sum(rows for _, rows in self._segments[1:-1])
            if newer < self.keep_transitions:
                return
            path, _ = self._segments.pop(0)
            path.unlink(missing_ok=True)

    def _write(self, meta: dict, arrays: Mapping[str, np.ndarray] | None) -> None:
        body = b""
        if arrays is not None:
            contiguous = {name: np.ascontiguousarray(value) for name, value in arrays.items()}
            meta["arrays"] = [[name, value.dtype.name, list(value.shape)] for name, value in contiguous.items()]
            body = b"".join(value.tobytes() for value in contiguous.values())
            packed = zlib.compress(body, 1)
            meta["z"] = len(packed) < 0.9 * len(body)
            body = packed if meta["z"] else body
        head = msgpack.packb(meta, use_bin_type=True)
        lengths = _LENGTHS.pack(len(head), len(body))
        crc = zlib.crc32(body, zlib.crc32(head, zlib.crc32(lengths)))
        self._file.write(_PREFIX.pack(_MAGIC, crc, len(head), len(body)) + head)
        self._file.write(body)
        self._dirty = True


def set_aside(run_dir: str | Path) -> None:
    """A fresh run in an old run directory: move its replay, checkpoints, best policy and videos to
    RUN_DIR/previous/."""
    run_dir = Path(run_dir)
    names = ("replay", "checkpoints", "best_policy.npz", "videos")
    old = [run_dir / name for name in names if (run_dir / name).exists()]
    if not old:
        return
    previous = run_dir / "previous"
    shutil.rmtree(previous, ignore_errors=True)
    previous.mkdir(parents=True)
    for path in old:
        path.rename(previous / path.name)
    log.warning("fresh run in %s: moved the earlier run's %s to %s (use --resume to continue a run)",
                run_dir, " and ".join(p.name for p in old), previous)  # fmt: skip


def write_spec(directory: str | Path, spec: RobotSpec) -> None:
    """Keep the robot spec beside the segments (a resumed learner needs it before any actor says Hello)."""
    path = Path(directory) / "spec.json"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(spec.to_json())
        tmp.rename(path)


def read_spec(directory: str | Path) -> RobotSpec | None:
    path = Path(directory) / "spec.json"
    return RobotSpec.from_json(path.read_text()) if path.is_file() else None


def restore(directory: str | Path, spec: RobotSpec, store: Callable[[str, dict], None]) -> ReadReport:
    """Feed every intact stored batch to `store(actor_id, columns)`, oldest first; returns what was found.

    Batches come back in the order they were stored and with their actor ids, so replay's (actor,
    episode, step) index rebuilds as it was: the same successor links and returns-to-go.
    """
    report = ReadReport()
    for record in read_journal(directory, report):
        if record.arrays is not None:
            store(record.actor_id, unpack_transitions(record.arrays, spec))
    return report


def segment_paths(directory: Path) -> list[Path]:
    return sorted(Path(directory).glob(SEGMENT_GLOB))


def read_journal(directory: str | Path, report: ReadReport | None = None) -> Iterator[Record]:
    """Every intact batch record, oldest first; damaged records are reported in `report` and skipped."""
    report = report if report is not None else ReadReport()
    for path in segment_paths(Path(directory)):
        for record in _read_segment(path, report):
            if record.arrays is not None:
                report.records += 1
                report.transitions += batch_length(record.arrays)
            if record.seq > report.acked.get(record.actor_id, 0):
                report.acked[record.actor_id] = record.seq
            yield record


def _read_segment(path: Path, report: ReadReport) -> Iterator[Record]:
    data = path.read_bytes()
    offset = 0
    while offset < len(data):
        try:
            record, offset = _parse(data, offset)
        except ValueError as exc:
            message = f"{path.name} at byte {offset}: {exc}; {len(data) - offset} bytes skipped"
            log.error("damaged replay record in %s", message)
            report.damaged.append(message)
            metrics.LEARNER_REPLAY_CORRUPT.inc()
            return
        if isinstance(record, dict):  # a segment's opening snapshot of acked sequence numbers
            for actor_id, seq in record.items():
                if isinstance(actor_id, str) and isinstance(seq, int) and seq > report.acked.get(actor_id, 0):
                    report.acked[actor_id] = seq
            continue
        yield record


def _parse(data: bytes, offset: int) -> tuple[Record | dict, int]:
    if len(data) - offset < _PREFIX.size:
        raise ValueError("torn record header")
    magic, crc, head_len, body_len = _PREFIX.unpack_from(data, offset)
    if magic != _MAGIC:
        raise ValueError("bad magic")
    start = offset + _PREFIX.size
    end = start + head_len + body_len
    if end > len(data):
        raise ValueError("torn record (file ends inside it)")
    head, body = data[start : start + head_len], data[start + head_len : end]
    if zlib.crc32(body, zlib.crc32(head, zlib.crc32(_LENGTHS.pack(head_len, body_len)))) != crc:
        raise ValueError("checksum mismatch")
    try:
        meta = msgpack.unpackb(head, raw=False)
        if meta["t"] == "seqs":
            return dict(meta["acked"]), end
        arrays = _arrays(meta, zlib.decompress(body) if meta.get("z") else body) if "arrays" in meta else None
        return Record(str(meta["actor"]), int(meta["seq"]), arrays), end
    except (KeyError, TypeError, ValueError, zlib.error, msgpack.UnpackException) as exc:
        raise ValueError(f"unreadable record ({type(exc).__name__})") from None


def _arrays(meta: dict, body: bytes) -> dict[str, np.ndarray]:
    arrays, offset = {}, 0
    for name, dtype, shape in meta["arrays"]:
        if dtype not in ALLOWED_DTYPES:
            raise ValueError(f"dtype {dtype!r}")
        size = int(np.prod(shape)) * np.dtype(dtype).itemsize
        arrays[name] = np.frombuffer(body, dtype=dtype, count=int(np.prod(shape)), offset=offset).reshape(shape)
        offset += size
    if offset != len(body):
        raise ValueError("body length does not match the arrays")
    return arrays
