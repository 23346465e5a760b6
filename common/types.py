"""Transitions as the actor records them, and the column layout shared by the wire, replay and demo files.

A *column* is one named array per transition (`action`, `reward`, `observation/image`, ...). Replay
storage, the demo file format and the learner's decoding all use `transition_columns(spec)`, so the
layout is defined exactly once.

On the wire an observation is sent once per step: a batch carries the distinct observation rows
(`rows/<key>`) and one fixed-layout record per step (`steps`, see `step_dtype`) with its action, scalar
columns and the indexes of the rows that are its observation and next observation.
`pack_transitions` / `unpack_transitions` convert between the two layouts.
"""

from __future__ import annotations

import functools
import operator
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from common.specs import ArraySpec, RobotSpec, SpecError, check_array

Observation = dict[str, np.ndarray]

# Per-transition scalar columns: name -> dtype.
SCALAR_COLUMNS: dict[str, str] = {
    "reward": "float32",
    "terminated": "bool",  # a true end of the task (no bootstrap)
    "truncated": "bool",  # the episode was cut (step limit, operator reset): bootstrap through it
    "episode": "int64",  # the actor's episode counter
    "step": "int32",  # step index inside the episode
    "policy_version": "int32",  # weights version that chose the action; -1 = before any weights
    "intervention": "bool",  # the operator, not the policy, chose the action
    "evaluation": "bool",  # a deterministic evaluation episode
    "proposal": "int8",  # which proposal of a gated program ran: PROPOSAL_FIRST / _SECOND, else PROPOSAL_NONE
}
PROPOSAL_NONE = -1  # not a gated program's choice (a one-step, chunked or ensembled program, or the operator)
PROPOSAL_FIRST = 0  # a gated program's first proposal ran (Q2RL: the BC policy's action)
PROPOSAL_SECOND = 1  # a gated program's second proposal ran (Q2RL: the RL policy's action)
ADDED_COLUMNS: dict[str, int] = {"proposal": PROPOSAL_NONE}
"""Scalar columns added after data was first stored -> the value older data without them implies. Demo files
and durable replay journals written before a column existed keep loading (`with_added_columns`)."""
OBS_PREFIX = "observation/"
NEXT_OBS_PREFIX = "next_observation/"
ROW_PREFIX = "rows/"


@dataclass
class Transition:
    """One control step as the actor saw it. `action` is the executed action, normalised to [-1, 1]."""

    observation: Observation
    action: np.ndarray
    reward: float
    terminated: bool
    truncated: bool
    next_observation: Observation
    episode: int = 0
    step: int = 0
    policy_version: int = -1
    intervention: bool = False
    evaluation: bool = False
    proposal: int = PROPOSAL_NONE

    @property
    def done(self) -> bool:
        return self.terminated or self.truncated


@dataclass
class Batch:
    """A training batch (torch tensors or numpy arrays), built by the learner's samplers."""

    observation: dict
    action: object
    reward: object
    terminated: object
    next_observation: dict
    is_demo: object  # 1.0 for rows drawn from the demonstration buffer
    extras: dict = field(default_factory=dict)

    @property
    def size(self) -> int:
        return int(self.reward.shape[0])


def transition_columns(spec: RobotSpec) -> dict[str, ArraySpec]:
    """Every stored column for one transition of a robot with `spec`, with its per-row shape and dtype."""
    columns: dict[str, ArraySpec] = {}
    for key, obs_spec in spec.observation.items():
        for prefix in (OBS_PREFIX, NEXT_OBS_PREFIX):
            columns[prefix + key] = ArraySpec(prefix + key, obs_spec.shape, obs_spec.dtype)
    columns["action"] = ArraySpec("action", spec.action.shape, "float32")
    for name, dtype in SCALAR_COLUMNS.items():
        columns[name] = ArraySpec(name, (), dtype)
    return columns


def with_added_columns(columns: Mapping[str, np.ndarray], count: int) -> dict[str, np.ndarray]:
    """`columns` plus any `ADDED_COLUMNS` they lack, filled with the implied value for `count` rows."""
    filled = dict(columns)
    for name, default in ADDED_COLUMNS.items():
        if name not in filled:
            filled[name] = np.full(count, default, dtype=SCALAR_COLUMNS[name])
    return filled


def split_observations(columns: Mapping[str, np.ndarray], prefix: str) -> Observation:
    """The observation dict stored under `prefix` in a column mapping."""
    return {k[len(prefix):]: v for k, v in columns.items() if k.startswith(prefix)}


STEPS = "steps"
"""The wire's per-step array (protocol 5): one fixed-layout record per transition, sent as raw bytes uint8[N, size]."""


@functools.cache
def step_dtype(action_shape: tuple[int, ...]) -> np.dtype:
    """The per-step record on the wire: the action, the two observation-row indexes and every scalar column.

    One array instead of twelve: a batch travels as three frames (header, observation rows, steps), and the
    learner checks one shape instead of twelve (at 1 transition per batch, per-array work was most of the
    receive path). Aligned (each field at a multiple of its size, so the learner's column views are aligned)
    and widest first, so padding gathers at the end. Both sides derive it from the action shape the spec
    hash covers; a change to SCALAR_COLUMNS changes it, so it takes a new PROTOCOL_VERSION.
    """
    fields: list[tuple] = [("action", np.dtype(np.float32), tuple(action_shape)),
                           ("obs_index", np.dtype(np.int32)), ("next_obs_index", np.dtype(np.int32))]
    fields += [(name, np.dtype(dtype)) for name, dtype in SCALAR_COLUMNS.items()]
    fields.sort(key=lambda field: -field[1].itemsize)  # stable: equal sizes keep their order
    return np.dtype(fields, align=True)


_scalars_of = operator.attrgetter(*SCALAR_COLUMNS)  # a Transition's scalar columns as one tuple


def pack_transitions(transitions: Sequence[Transition]) -> dict[str, np.ndarray]:
    """Wire layout: the distinct observation rows (consecutive steps share their frames) and the step records."""
    if not transitions:
        raise ValueError("cannot pack an empty batch")
    rows: list[Observation] = []
    obs_index, next_index = [], []
    for tr in transitions:
        if not rows or rows[-1] is not tr.observation:
            rows.append(tr.observation)
        obs_index.append(len(rows) - 1)
        rows.append(tr.next_observation)
        next_index.append(len(rows) - 1)
    arrays: dict[str, np.ndarray] = {ROW_PREFIX + key: _stack_rows([row[key] for row in rows])
                                      for key in transitions[0].observation}  # fmt: skip
    steps = np.zeros(len(transitions), dtype=step_dtype(np.shape(transitions[0].action)))  # padding: 0, not old memory
    steps["obs_index"], steps["next_obs_index"] = obs_index, next_index
    steps["action"] = np.array([tr.action for tr in transitions], dtype=np.float32)  # one shape, or ValueError
    for name, column in zip(SCALAR_COLUMNS, zip(*map(_scalars_of, transitions))):  # one pass over the batch
        steps[name] = column
    arrays[STEPS] = steps.view(np.uint8).reshape(len(transitions), steps.dtype.itemsize)
    return arrays


def batch_length(arrays: Mapping[str, np.ndarray]) -> int:
    """Transitions in a packed batch of either wire layout (before it is validated: for bookkeeping only)."""
    return len(arrays[STEPS] if STEPS in arrays else arrays["reward"])


def _stack_rows(rows: list[np.ndarray]) -> np.ndarray:
    """np.stack for rows of one shape and dtype: one concatenate, without stack's per-row checks and views
    (a quarter of packing 100 camera frames)."""
    first = np.asarray(rows[0])
    if first.ndim == 0 or any(getattr(row, "shape", None) != first.shape for row in rows):
        return np.stack(rows)  # scalars, or a shape mismatch np.stack reports by name
    return np.concatenate(rows).reshape((len(rows), *first.shape))


def unpack_transitions(arrays: Mapping[str, np.ndarray], spec: RobotSpec) -> dict[str, np.ndarray]:
    """Validate a packed batch against `spec` and expand it to per-transition columns.

    Raises SpecError naming the first problem (missing or extra arrays, wrong shapes or dtypes, indexes out of
    range, non-finite floats, actions outside [-1, 1]). Reads both wire layouts: step records (protocol 5) and
    the one array per column before them (protocol 4), which durable replay journals and actor spools written
    by earlier versions hold; a batch stored before an `ADDED_COLUMNS` column existed gets its implied value.
    """
    fields = _step_fields(arrays, spec) if STEPS in arrays else _column_fields(arrays, spec)
    action, reward = fields["action"], fields["reward"]
    if not (np.isfinite(action).all() and np.isfinite(reward).all()):
        raise SpecError("action or reward contains NaN or Inf")
    if np.abs(action).max() > 1.0 + 1e-6:
        raise SpecError("normalised actions must lie in [-1, 1]")
    num_rows = _validate_rows(arrays, spec)
    for name in ("obs_index", "next_obs_index"):
        # Read as uint32 a negative index is >= 2**31, so one max checks both ends (per-call cost is what a
        # one-transition batch pays for).
        if fields[name].view(np.uint32).max() >= num_rows:
            raise SpecError(f"{name} out of range [0, {num_rows})")
    columns = {name: fields[name] for name in ("action", *SCALAR_COLUMNS)}
    for key in spec.observation:
        rows = arrays[ROW_PREFIX + key]
        columns[OBS_PREFIX + key] = _rows_at(rows, fields["obs_index"])
        columns[NEXT_OBS_PREFIX + key] = _rows_at(rows, fields["next_obs_index"])
    return columns


def concatenate_packed(batches: Sequence[Mapping[str, np.ndarray]], spec: RobotSpec) -> dict[str, np.ndarray]:
    """Several packed batches (protocol 5) as one, for `unpack_transitions` to validate and expand once: the
    observation rows concatenated, and each step's row indexes shifted past the rows of the batches before it.

    An index outside its own batch's rows would land in a neighbour's once shifted, so each is checked against
    its own batch here; every other check is left to `unpack_transitions`. Raises SpecError. One batch comes
    back as it is. Costs a copy of the rows, so it pays for small batches only (see `learner.server`).
    """
    if len(batches) == 1:
        return dict(batches[0])
    names = set(batches[0])
    layout = step_dtype(spec.action.shape)
    for arrays in batches:
        if set(arrays) != names or STEPS not in arrays:
            raise SpecError("batches to concatenate differ in their arrays or hold no step records")
        _check_step_records(arrays[STEPS], layout)
    try:
        merged = {name: np.concatenate([arrays[name] for arrays in batches]) for name in names}
    except (ValueError, TypeError) as exc:
        raise SpecError(f"batches to concatenate differ in shape: {exc}") from exc
    steps = merged[STEPS].reshape(-1).view(layout)  # a view: shifting its indexes shifts the merged records
    row_name = next((name for name in names if name.startswith(ROW_PREFIX)), None)
    if row_name is None:
        raise SpecError("batches to concatenate carry no observation rows")
    own_rows = np.array([len(arrays[row_name]) for arrays in batches])
    per_batch = np.array([len(arrays[STEPS]) for arrays in batches])
    bound = np.repeat(own_rows, per_batch)
    shift = np.repeat((np.cumsum(own_rows) - own_rows).astype(np.int32), per_batch)
    for name in ("obs_index", "next_obs_index"):
        if (steps[name].view(np.uint32) >= bound).any():  # negatives read as uint32 are >= 2**31
            raise SpecError(f"{name} out of range of its own batch's rows")
        steps[name] += shift
    return merged


def _rows_at(rows: np.ndarray, index: np.ndarray) -> np.ndarray:
    """rows[index] for in-range indexes: a view when they are one consecutive run, as a batch of one episode's
    steps is (observations 0..n-1, next observations 1..n), a gathered copy only across an episode's end. The
    store copies the view once, into replay; a gather first copied every camera frame twice (a sixth of the
    learner's receive path at one transition per batch)."""
    first, count = int(index[0]), len(index)
    if int(index[-1]) - first == count - 1 and (count < 3 or bool((np.diff(index) == 1).all())):
        return rows[first : first + count]
    return rows[index]


def _step_fields(arrays: Mapping[str, np.ndarray], spec: RobotSpec) -> dict[str, np.ndarray]:
    """Protocol 5: the step records' fields as column views (strided, aligned, no copy)."""
    expected = {ROW_PREFIX + key for key in spec.observation} | {STEPS}
    if set(arrays) != expected:
        raise SpecError(f"batch arrays {sorted(arrays)} != expected {sorted(expected)}")
    layout, raw = step_dtype(spec.action.shape), arrays[STEPS]
    _check_step_records(raw, layout)
    if raw.shape[0] == 0:
        raise SpecError("empty batch")
    steps = np.ascontiguousarray(raw).reshape(-1).view(layout)
    return {name: steps[name] for name in layout.names}


def _check_step_records(raw: object, layout: np.dtype) -> None:
    """SpecError unless `raw` is uint8[N, layout.itemsize]: step records of this spec's layout, as bytes."""
    if not isinstance(raw, np.ndarray) or raw.dtype != np.uint8 or raw.shape[1:] != (layout.itemsize,):
        raise SpecError(f"{STEPS}: expected uint8[N, {layout.itemsize}] step records, got "
                        f"{getattr(raw, 'dtype', type(raw).__name__)}{list(np.shape(raw))}")  # fmt: skip


def _column_fields(arrays: Mapping[str, np.ndarray], spec: RobotSpec) -> dict[str, np.ndarray]:
    """Protocol 4 and the journals written under it: one array per column, each checked."""
    expected = {ROW_PREFIX + key for key in spec.observation} | {"obs_index", "next_obs_index", "action"}
    expected |= set(SCALAR_COLUMNS)
    if not set(arrays) <= expected or expected - set(arrays) - set(ADDED_COLUMNS):
        raise SpecError(f"batch arrays {sorted(arrays)} != expected {sorted(expected)}")
    count = arrays["action"].shape[0] if arrays["action"].ndim else 0
    if count == 0:
        raise SpecError("empty batch")
    fields = with_added_columns(arrays, count)
    check_array("action", fields["action"], (count,) + spec.action.shape, "float32")
    for name, dtype in {**SCALAR_COLUMNS, "obs_index": "int32", "next_obs_index": "int32"}.items():
        check_array(name, fields[name], (count,), dtype)
    return {name: fields[name] for name in ("action", "obs_index", "next_obs_index", *SCALAR_COLUMNS)}


def _validate_rows(arrays: Mapping[str, np.ndarray], spec: RobotSpec) -> int:
    num_rows = None
    for key, obs_spec in spec.observation.items():
        rows = arrays[ROW_PREFIX + key]
        if num_rows is None:
            num_rows = rows.shape[0] if rows.ndim else 0
        check_array(key, rows, (max(num_rows, 1),) + obs_spec.shape, obs_spec.dtype)
    return int(num_rows or 0)
