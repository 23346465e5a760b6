"""Preallocated ring storage: one numpy array per column, overwritten oldest-first once full."""

from __future__ import annotations

from typing import Mapping

import numpy as np

from common.specs import ArraySpec, SpecError


class RingStorage:
    """Fixed-capacity column store. Not thread-safe on its own; `ReplayBuffer` holds the lock.

    Images stay uint8 (a 128x128x3 frame costs 48 KiB, not 192 KiB as float32). Rows live at physical
    slots `0 .. size-1`; `cursor` is the slot the next row goes to, so the oldest row (once full) is at
    `cursor` and the newest at `cursor - 1`.

    Every stored row also gets a row id: the count of rows written before it, so row `i` lives in slot
    `i % capacity` and `row_id[slot]` says which row a slot holds now. A reference by row id therefore
    notices when eviction has overwritten what it pointed to (`holds`), and "the k-th oldest row" is
    `written - size + k` whatever the slot layout (a ring rebuilt from a pruned journal has the same rows
    at other slots: sampling by age keeps it drawing the same rows).
    """

    def __init__(self, columns: Mapping[str, ArraySpec], capacity: int) -> None:
        if capacity <= 0:
            raise ValueError(f"capacity must be positive, got {capacity}")
        self.specs = dict(columns)
        self.arrays = {name: np.empty((capacity,) + s.shape, dtype=s.dtype) for name, s in self.specs.items()}
        self._capacity = capacity
        self._size = 0
        self._cursor = 0
        self.total_added = 0
        self.written = 0  # rows actually stored so far (an oversized batch's head is not): the next row id
        self.row_id = np.full(capacity, -2, dtype=np.int64)  # -2: never written (-1 means "no row" elsewhere)

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def size(self) -> int:
        return self._size

    @property
    def cursor(self) -> int:
        return self._cursor

    def add(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        """Append a batch of rows (every column with the same leading length); returns the stored rows' ids.

        A batch longer than the capacity keeps only its newest `capacity` rows (the ids are theirs).
        """
        count = self._check(columns)
        start = max(0, count - self._capacity)
        written = count - start
        first = min(written, self._capacity - self._cursor)
        for name, array in self.arrays.items():
            rows = columns[name][start:]
            array[self._cursor : self._cursor + first] = rows[:first]
            array[: written - first] = rows[first:]
        ids = np.arange(self.written, self.written + written, dtype=np.int64)
        self.row_id[ids % self._capacity] = ids
        self.written += written
        self._cursor = (self._cursor + written) % self._capacity
        self._size = min(self._size + written, self._capacity)
        self.total_added += count
        return ids

    def ids_by_age(self, ages: np.ndarray) -> np.ndarray:
        """Row ids of the `ages`-th oldest stored rows (each in `[0, size)`)."""
        return self.written - self._size + np.asarray(ages, dtype=np.int64)

    def slots(self, ids: np.ndarray) -> np.ndarray:
        """Physical slots of rows `ids`."""
        return np.asarray(ids, dtype=np.int64) % self._capacity

    def holds(self, ids: np.ndarray) -> np.ndarray:
        """Per id: is that row still stored (not overwritten, not -1)? Ids may be -1 ("no row")."""
        return np.take(self.row_id, ids, mode="wrap") == ids

    def get(self, indices: np.ndarray) -> dict[str, np.ndarray]:
        """Copies of the rows at physical slots `indices` (each in `[0, size)`), per column."""
        return {name: array[indices] for name, array in self.arrays.items()}

    def _check(self, columns: Mapping[str, np.ndarray]) -> int:
        if set(columns) != set(self.specs):
            missing, extra = sorted(set(self.specs) - set(columns)), sorted(set(columns) - set(self.specs))
            raise SpecError(f"replay columns mismatch: missing {missing}, unexpected {extra}")
        counts = {len(value) for value in columns.values()}
        if len(counts) != 1:
            raise SpecError(f"replay columns have different lengths: {sorted(counts)}")
        for name, spec in self.specs.items():
            value = columns[name]
            if value.shape[1:] != spec.shape:
                raise SpecError(f"column {name}: rows are {list(value.shape[1:])}, expected {list(spec.shape)}")
            if not np.can_cast(value.dtype, spec.dtype, casting="same_kind"):
                raise SpecError(f"column {name}: cannot store {value.dtype} as {spec.dtype}")
        return counts.pop()
