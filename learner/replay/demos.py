"""Loading demonstration files into replay columns."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from common.episodes import load_episodes
from common.specs import RobotSpec, SpecError


def load_demo_columns(path: str | Path, spec: RobotSpec) -> dict[str, np.ndarray]:
    """Columns of a demo file recorded for `spec`; SpecError (naming both hashes) for another robot spec."""
    file_spec, columns = load_episodes(path, spec)  # a LeRobot dataset from elsewhere is read against `spec`
    if file_spec.spec_hash != spec.spec_hash:
        raise SpecError(
            f"{path}: demonstrations were recorded for robot {file_spec.name!r} with spec_hash "
            f"{file_spec.spec_hash}, but the learner's robot {spec.name!r} has spec_hash {spec.spec_hash}"
        )
    return columns
