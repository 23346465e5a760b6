"""The spool's transition log: every transition is on disk the moment the control loop records it.

Sealed batches (`actor.spool`) are written by the sender thread, so on their own they leave a gap: the
transitions recorded but not yet sealed (up to a batch, or `flush_interval_s`) die with a killed actor.
This log closes it. The control thread appends each transition here as it is recorded, before the next
control step, with one `write()` into the kernel's page cache: a `kill -9` at any moment leaves every
recorded transition in the file (a power cut can still lose what the kernel had not written out).

Each transition gets a transition id (tid, increasing over the actor's lives). A sealed batch file
names the last tid it holds, so after a restart everything in this log beyond the newest sealed tid is
the unsealed tail: it is read back and sealed into new batches, once, before anything new.

The recorder holds the newest transition back until the next step (the episode's end can still change
its reward and end flags), and that step is logged too, at once (`hold`); a changed ending is logged as a
small finalising record when it is released (`release`). So the episode cut by a kill keeps its newest
step, and on recovery its last transition is marked truncated: the episode was cut there.

Segments `NNNNNNNNNNNN.tlog` (named by their first tid) hold records `"TLG1" | crc32 | length | payload`;
a torn or corrupt record ends the reading of its segment. An observation shared with the previous
transition's next observation (consecutive steps) is stored once. Closed segments whose transitions
are all sealed are deleted.
"""

from __future__ import annotations

import logging
import struct
import threading
import zlib
from collections import OrderedDict
from pathlib import Path

import msgpack
import numpy as np

from common.types import Observation, Transition

log = logging.getLogger(__name__)

_MAGIC = b"TLG1"
_HEAD = struct.Struct("<4sII")  # magic, crc32 of the payload, payload length
_KIND = struct.Struct("<BQI")  # kind, tid, meta length
_TRANSITION, _FINAL = 1, 2
_SUFFIX = ".tlog"
_SCALARS = ("reward", "terminated", "truncated", "episode", "step", "policy_version", "intervention", "evaluation",
            "proposal")  # fmt: skip


class TransitionLog:
    """Append-only log of recorded transitions. `hold`/`release` run in the control thread, `prune` in the
    sender thread; the segment list is shared under a lock."""

    def __init__(self, directory: str | Path, segment_bytes: int = 4 << 20) -> None:
        self.directory = Path(directory)
        self.segment_bytes = segment_bytes
        self._lock = threading.Lock()
        self._segments = sorted(self.directory.glob(f"*{_SUFFIX}"))
        self._file = None
        self._previous_next: Observation | None = None  # the last logged next observation (shared storage)
        self._open: OrderedDict[int, tuple[Transition, int, tuple]] = OrderedDict()  # held, not yet released
        self.next_tid = 1

    # ---- start-up ------------------------------------------------------------------------------
    def recover(self, sealed_tid: int) -> list[tuple[int, Transition]]:
        """(tid, transition) of every logged transition newer than `sealed_tid`, oldest first.

        The last one, when it ends no episode, is the step a kill cut its episode at: it is marked
        truncated (and that is logged, so a later recovery agrees).
        """
        found = read_log(self.directory)
        self.next_tid = max([sealed_tid, *found]) + 1
        tail = [(tid, found[tid]) for tid in sorted(found) if tid > sealed_tid]
        self._open_segment()
        if tail and not tail[-1][1].done:
            tid, cut = tail[-1]
            cut.truncated = True
            self._append(_FINAL, tid, _ending(cut), b"")
            log.info("spool: episode %d was cut at step %d by the end of the last run; marked truncated",
                     cut.episode, cut.step)  # fmt: skip
        return tail

    # ---- control thread ------------------------------------------------------------------------
    def hold(self, transition: Transition) -> None:
        """Log a just-recorded transition the recorder still holds back."""
        tid = self._log_transition(transition)
        self._open[id(transition)] = (transition, tid, _ending(transition))
        while len(self._open) > 2:  # never released (dropped, or left out of replay): forget it
            self._open.popitem(last=False)

    def release(self, transition: Transition) -> int:
        """The tid of a transition handed to the sender; logs it now if `hold` did not, or its new ending."""
        held = self._open.pop(id(transition), None)
        if held is None or held[0] is not transition:
            return self._log_transition(transition)
        _, tid, ending = held
        if _ending(transition) != ending:
            self._append(_FINAL, tid, _ending(transition), b"")
        return tid

    # ---- sender thread -------------------------------------------------------------------------
    def prune(self, sealed_tid: int) -> None:
        """Delete closed segments whose every transition is in a sealed batch."""
        with self._lock:
            while len(self._segments) > 1 and int(self._segments[1].stem) <= sealed_tid + 1:
                self._segments.pop(0).unlink(missing_ok=True)

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    # ---- files ---------------------------------------------------------------------------------
    def _log_transition(self, transition: Transition) -> int:
        tid, self.next_tid = self.next_tid, self.next_tid + 1
        if self._file is not None and self._file.tell() >= self.segment_bytes:
            self._open_segment(first_tid=tid)
        shared = transition.observation is self._previous_next
        meta, body = _encode(transition, shared)
        self._append(_TRANSITION, tid, meta, body)
        self._previous_next = transition.next_observation
        return tid

    def _open_segment(self, first_tid: int | None = None) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
            path = self.directory / f"{first_tid or self.next_tid:012d}{_SUFFIX}"
            self._file = open(path, "ab", buffering=0)  # one write() per record, nothing left in user space
            if path not in self._segments:
                self._segments.append(path)
        self._previous_next = None  # a segment never depends on an older (deletable) one

    def _append(self, kind: int, tid: int, meta: object, body: bytes) -> None:
        packed = msgpack.packb(meta)
        payload = _KIND.pack(kind, tid, len(packed)) + packed + body
        record = _HEAD.pack(_MAGIC, zlib.crc32(payload), len(payload)) + payload
        with self._lock:
            if self._file is None:  # closed: the sender has stopped, the actor is exiting
                return
            view = memoryview(record)
            while view:
                view = view[self._file.write(view):]


def read_log(directory: str | Path) -> dict[int, Transition]:
    """Every transition in a spool's log by tid, with its final ending where one was logged."""
    found: dict[int, Transition] = {}
    for path in sorted(Path(directory).glob(f"*{_SUFFIX}")):
        previous_next = None
        for kind, tid, meta, body in _records(path):
            if kind == _TRANSITION:
                found[tid] = transition = _decode(meta, body, previous_next)
                previous_next = transition.next_observation
            elif tid in found:
                found[tid].reward, found[tid].terminated, found[tid].truncated = meta
    return found


def _ending(transition: Transition) -> tuple:
    return float(transition.reward), bool(transition.terminated), bool(transition.truncated)


def _encode(transition: Transition, shared: bool) -> tuple[dict, bytes]:
    arrays = {"a": np.asarray(transition.action, np.float32)}
    if not shared:
        arrays.update({f"o/{k}": v for k, v in transition.observation.items()})
    arrays.update({f"n/{k}": v for k, v in transition.next_observation.items()})
    arrays = {name: np.ascontiguousarray(value) for name, value in arrays.items()}
    meta = {"s": [getattr(transition, name) for name in _SCALARS],
            "arrays": [[name, value.dtype.str, list(value.shape)] for name, value in arrays.items()]}  # fmt: skip
    meta["s"] = [x.item() if isinstance(x, np.generic) else x for x in meta["s"]]
    return meta, b"".join(value.tobytes() for value in arrays.values())


def _decode(meta: dict, body: bytes, previous_next: Observation | None) -> Transition:
    arrays, offset = {}, 0
    for name, dtype, shape in meta["arrays"]:
        dtype = np.dtype(dtype)
        size = dtype.itemsize * int(np.prod(shape, dtype=np.int64))
        arrays[name] = np.frombuffer(body, dtype, count=size // dtype.itemsize, offset=offset).reshape(shape).copy()
        offset += size
    observation = {k[2:]: v for k, v in arrays.items() if k.startswith("o/")}
    if not observation:
        if previous_next is None:
            raise ValueError("a shared observation with nothing before it")
        observation = previous_next
    next_observation = {k[2:]: v for k, v in arrays.items() if k.startswith("n/")}
    scalars = dict(zip(_SCALARS, meta["s"]))
    return Transition(observation=observation, action=arrays["a"], next_observation=next_observation, **scalars)


def _records(path: Path):
    """(kind, tid, meta, body) of each intact record of a segment; a damaged one ends the segment."""
    data = path.read_bytes()
    offset = 0
    while offset < len(data):
        try:
            magic, crc, length = _HEAD.unpack_from(data, offset)
            payload = data[offset + _HEAD.size : offset + _HEAD.size + length]
            if magic != _MAGIC or len(payload) != length or zlib.crc32(payload) != crc:
                raise ValueError("torn or corrupt record")
            kind, tid, meta_length = _KIND.unpack_from(payload)
            meta = msgpack.unpackb(payload[_KIND.size : _KIND.size + meta_length])
            body = payload[_KIND.size + meta_length :]
        except (struct.error, ValueError) as exc:
            log.warning("spool log %s: %s at byte %d; the rest of this segment is skipped", path.name, exc, offset)
            return
        yield kind, tid, meta, body
        offset += _HEAD.size + length
