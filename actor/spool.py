"""The actor's on-disk spool: every sealed batch is kept in a file until the learner acks it.

One file per batch, `NNNNNNNNNNNN.batch` (the sequence number), written to a temporary name and
renamed, so a killed actor leaves only whole files. A file is: magic, a CRC32 of everything after it,
transition count, frame count, the tid of its last transition (`actor.spool_log`), each frame's
length, then the frames (the encoded TransitionBatch, exactly as it goes on the wire). `acked` records
the highest acked sequence number and `acked_tid` its last tid (written first), so a restarted actor
continues numbering where it stopped, and knows which logged transitions are already sealed, even when
nothing is left unacked.

A batch is sealed from transitions already in the spool's transition log (written as they were
recorded), so nothing recorded is lost with a killed actor; with `fsync` the batch file (and its name)
reaches the disk before the batch is sent, so a power cut loses at most the unsealed transitions.

The spool is bounded (`max_bytes`); when it is full the sender stops sealing, the send queue fills,
and `PauseWhenFull` (the default policy) stops the robot until there is room again.
"""

from __future__ import annotations

import fcntl
import logging
import os
import struct
import threading
import zlib
from pathlib import Path
from typing import Callable

log = logging.getLogger(__name__)

_MAGIC = b"TSP2"
_HEAD = struct.Struct("<IIQ")  # transitions, frames, last tid
_MAGIC_V1, _HEAD_V1 = b"TSP1", struct.Struct("<II")  # before the transition log: no tid
_SUFFIX = ".batch"


class Spool:
    """Unacked batches on disk, by sequence number. Used only by the sender thread."""

    def __init__(self, directory: str | Path, max_bytes: int = 1 << 30, fsync: bool = False) -> None:
        if max_bytes <= 0:
            raise ValueError("spool max_bytes must be positive")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = open(self.directory / "lock", "w")  # one actor process per spool, or batches would mix
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock.close()
            raise ValueError(f"spool {self.directory} is in use by another actor process") from None
        self.max_bytes, self.fsync = max_bytes, fsync
        self._sizes: dict[int, int] = {}  # seq -> file bytes
        self._tids: dict[int, int] = {}  # seq -> tid of the batch's last transition
        self.bytes = 0
        self.acked, self._acked_tid = self._read_acked()
        # Numbers of every batch file ever left here, damaged (.bad) ones included: never reused for other data.
        names = [*self.directory.glob(f"*{_SUFFIX}"), *self.directory.glob("*.bad")]
        self._damaged = max((int(p.stem) for p in names if p.stem.isdigit()), default=0)

    # ---- start-up ------------------------------------------------------------------------------
    def load(self) -> list[tuple[int, int]]:
        """(seq, transitions) of every intact spooled batch newer than `acked`, oldest first.

        A torn or corrupt file is reported, renamed to `.bad` and skipped.
        """
        found = []
        for path in sorted(self.directory.glob(f"*{_SUFFIX}")):
            seq = int(path.stem)
            if seq <= self.acked:
                path.unlink(missing_ok=True)
                continue
            try:
                transitions, _, self._tids[seq] = self._read(path)
            except ValueError as exc:
                log.error("spool file %s is damaged (%s); skipping it", path, exc)
                path.rename(path.with_suffix(".bad"))
                continue
            self._sizes[seq] = path.stat().st_size
            found.append((seq, transitions))
        self.bytes = sum(self._sizes.values())
        for stale in self.directory.glob("*.tmp"):
            stale.unlink(missing_ok=True)
        return found

    def close(self) -> None:
        """Release the directory for the next actor process (the files stay)."""
        self._lock.close()

    def last_seq(self) -> int:
        """The highest sequence number this actor ever sealed (0 for a new spool)."""
        return max([self.acked, self._damaged, *self._sizes])

    def sealed_tid(self) -> int:
        """The tid of the newest transition in a sealed batch (0: none): the log's tail starts after it."""
        return max([self._acked_tid, *self._tids.values()])

    # ---- sender thread -------------------------------------------------------------------------
    @property
    def full(self) -> bool:
        return self.bytes >= self.max_bytes

    def __len__(self) -> int:
        return len(self._sizes)

    def put(self, seq: int, frames: list, transitions: int, last_tid: int = 0) -> None:
        payloads = [memoryview(f).cast("B") if not isinstance(f, bytes) else f for f in frames]
        body = _HEAD.pack(transitions, len(payloads), last_tid)
        body += struct.pack(f"<{len(payloads)}Q", *map(len, payloads))
        crc = zlib.crc32(body)
        for payload in payloads:
            crc = zlib.crc32(payload, crc)
        path = self._path(seq)
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            f.write(_MAGIC + struct.pack("<I", crc) + body)
            for payload in payloads:
                f.write(payload)
            if self.fsync:
                f.flush()
                os.fsync(f.fileno())
        tmp.rename(path)
        if self.fsync:  # the new name too, or a power cut can forget the file
            directory = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        self._tids[seq] = last_tid
        self._sizes[seq] = path.stat().st_size
        self.bytes += self._sizes[seq]

    def get(self, seq: int) -> list[bytes]:
        return self._read(self._path(seq))[1]

    def ack(self, seq: int) -> None:
        """Forget every batch up to `seq` (acks are cumulative)."""
        if seq <= self.acked:
            return
        self.acked = seq
        self._acked_tid = max([self._acked_tid, *(tid for s, tid in self._tids.items() if s <= seq)])
        # The tid first: a kill between the two renames leaves it ahead of `acked`, which only keeps the
        # batches in between (their transitions are sealed either way); behind, it would resend them.
        for name, value in (("acked_tid", self._acked_tid), ("acked", seq)):
            tmp = self.directory / f"{name}.tmp"
            tmp.write_text(str(value))
            tmp.rename(self.directory / name)
        for old in [s for s in self._sizes if s <= seq]:
            self.bytes -= self._sizes.pop(old)
            self._tids.pop(old, None)
            self._path(old).unlink(missing_ok=True)

    # ---- files ---------------------------------------------------------------------------------
    def _path(self, seq: int) -> Path:
        return self.directory / f"{seq:012d}{_SUFFIX}"

    def _read_acked(self) -> tuple[int, int]:
        """(acked seq, its last tid); a spool from before the transition log has no tid (0)."""
        values = []
        for name in ("acked", "acked_tid"):
            try:
                values.append(int((self.directory / name).read_text()))
            except (OSError, ValueError):
                values.append(0)
        return values[0], values[1]

    @staticmethod
    def _read(path: Path) -> tuple[int, list[bytes], int]:
        """(transitions, frames, last tid) of a batch file."""
        data = path.read_bytes()
        head = {_MAGIC: _HEAD, _MAGIC_V1: _HEAD_V1}.get(data[:4])
        if head is None or len(data) < 8 + head.size:
            raise ValueError("bad header")
        (crc,) = struct.unpack_from("<I", data, 4)
        if zlib.crc32(data[8:]) != crc:
            raise ValueError("checksum mismatch")
        transitions, count, *last_tid = head.unpack_from(data, 8)
        offset = 8 + head.size
        lengths = struct.unpack_from(f"<{count}Q", data, offset)
        offset += 8 * count
        frames = []
        for length in lengths:
            frames.append(data[offset : offset + length])
            offset += length
        return transitions, frames, (last_tid or [0])[0]


class PauseWhenFull:
    """Wraps `submit` for the control loop: when the sender is saturated, stop the robot and wait.

    Keeps the robot safe when neither memory nor spool can take more data: the robot is stopped
    (`stop_robot`) and the loop waits until there is room or `stopping` is set. The waiting happens
    in the control thread on purpose: that *is* the pause. With `pause=False` the transition is
    dropped (and counted by the sender) while the robot keeps acting with the last policy.
    """

    def __init__(self, submit: Callable[[object], bool], room: threading.Event, stop_robot: Callable[[], None],
                 stopping: Callable[[], bool], pause: bool = True) -> None:  # fmt: skip
        self._submit, self._room, self._stop_robot = submit, room, stop_robot
        self._stopping, self.pause = stopping, pause
        self.pauses = 0

    def room_now(self) -> bool:
        return self._room.is_set()

    def __call__(self, item: object) -> bool:
        if self._submit(item):
            return True
        if not self.pause:
            return False
        self.pauses += 1
        log.error("actor saturated (spool/queue full, learner away?): robot stopped, episode paused")
        self._stop_robot()
        while not self._stopping():
            if self._submit(item):
                log.warning("room again: resuming")
                return True
            self._room.wait(timeout=0.1)  # set by the sender once the queue drains; the timeout re-checks stopping
        return False
