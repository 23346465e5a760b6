"""The demonstration file format: one `.npz` (no pickle) holding whole episodes and the robot spec.

Layout (version 1):
  format_version   int64 scalar, = 1
  spec_json        str scalar, RobotSpec.to_json() of the robot that produced the data
  <column>         one array per column of `common.types.transition_columns(spec)`, all with the
                   same leading length N (transitions of every episode, in order)

Episodes are told apart by the `episode` column; actions are the executed actions normalised to
[-1, 1]. Both `actor --record-demo` and the simulated experts write this format; `learner --demo`
reads it. A path that is not a `.npz` file is a LeRobot dataset directory instead
(`common.lerobot_datasets`): `save_episodes` and `load_episodes` take either. Scalar columns added to the
layout later (`common.types.ADDED_COLUMNS`) may be absent from older files: the loader fills them with the
value those files imply (e.g. `proposal` = -1: no gated program ran), so demos recorded before a column
existed keep loading. Loading never unpickles (`allow_pickle=False`) and validates every column against the spec.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from common.specs import RobotSpec, SpecError
from common.types import ADDED_COLUMNS, Transition, transition_columns, with_added_columns

FORMAT_VERSION = 1


def transitions_to_columns(transitions: Sequence[Transition], spec: RobotSpec) -> dict[str, np.ndarray]:
    """Stack transitions into columns matching `transition_columns(spec)`."""
    columns: dict[str, np.ndarray] = {}
    for name, column_spec in transition_columns(spec).items():
        if name.startswith("observation/"):
            values = [tr.observation[name.split("/", 1)[1]] for tr in transitions]
        elif name.startswith("next_observation/"):
            values = [tr.next_observation[name.split("/", 1)[1]] for tr in transitions]
        else:
            values = [getattr(tr, name) for tr in transitions]
        columns[name] = np.asarray(values, dtype=column_spec.dtype).reshape((len(transitions),) + column_spec.shape)
    return columns


def is_npz_path(path: str | Path) -> bool:
    """True for a demo `.npz` file's path; anything else names a LeRobot dataset directory."""
    return Path(path).suffix == ".npz"


def save_episodes(path: str | Path, spec: RobotSpec, transitions: Sequence[Transition]) -> Path:
    """Write transitions (whole episodes, in order) to `path` atomically: a `.npz` file or a LeRobot dataset."""
    if not transitions:
        raise ValueError("refusing to write an empty demonstration file")
    path = Path(path)
    columns = transitions_to_columns(transitions, spec)
    if not is_npz_path(path):
        from common.lerobot_datasets import write_dataset  # an optional extra; imported only when asked for

        return write_dataset(path, spec, columns, overwrite=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(tmp, format_version=np.int64(FORMAT_VERSION), spec_json=np.str_(spec.to_json()), **columns)
    tmp.replace(path)
    return path


def load_episodes(path: str | Path, spec: RobotSpec | None = None) -> tuple[RobotSpec, dict[str, np.ndarray]]:
    """Read a demonstration file or LeRobot dataset; returns its spec and validated columns.

    A LeRobot dataset written elsewhere carries no spec: pass the robot's `spec` to read it against. Raises
    SpecError if malformed.
    """
    if Path(path).is_dir():
        from common.lerobot_datasets import read_dataset  # an optional extra; imported only when asked for

        return read_dataset(path, spec)
    with np.load(Path(path), allow_pickle=False) as data:
        if "format_version" not in data or int(data["format_version"]) != FORMAT_VERSION:
            raise SpecError(f"{path}: not a Tandem demo file of format version {FORMAT_VERSION}")
        spec = RobotSpec.from_json(str(data["spec_json"]))
        expected = transition_columns(spec)
        missing = set(expected) - set(data.files) - set(ADDED_COLUMNS)
        if missing:
            raise SpecError(f"{path}: missing columns {sorted(missing)}")
        columns = {name: data[name] for name in expected if name in data.files}
    count = len(columns["reward"])
    columns = with_added_columns(columns, count)  # a file from before a column existed
    for name, column_spec in expected.items():
        value = columns[name]
        if value.shape != (count,) + column_spec.shape or value.dtype != np.dtype(column_spec.dtype):
            raise SpecError(f"{path}: column {name} is {value.dtype}{list(value.shape)}")
    return spec, columns


def demo_spec(path: str | Path) -> RobotSpec | None:
    """The robot spec a demo carries; None for a LeRobot dataset written elsewhere (read it against the robot's)."""
    if Path(path).is_dir():
        from common.lerobot_datasets import dataset_spec

        return dataset_spec(path)
    return load_episodes(path)[0]


def episode_bounds(episode_column: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) index pairs of each run of equal episode ids, in order."""
    if len(episode_column) == 0:
        return []
    change = np.flatnonzero(np.diff(episode_column)) + 1
    starts = np.concatenate([[0], change])
    stops = np.concatenate([change, [len(episode_column)]])
    return [(int(a), int(b)) for a, b in zip(starts, stops)]
