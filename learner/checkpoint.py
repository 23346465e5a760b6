"""Checkpoints: everything needed to resume, written to a temporary directory and renamed into place.

A checkpoint directory `ckpt-<updates>` holds `state.pt` (algorithm and training-loop state) and
`config.json` (the resolved configuration). Only files this learner wrote are ever loaded, with
`weights_only=True`; nothing that came over the network is loaded this way.

Files are fsynced before the rename, so a power cut leaves either the old set or the new one; a
`kill -9` mid-save leaves a `.tmp-*` directory that the next save (or `clean_partial`) removes. A save of an
update count already saved (periodic, then on exit) moves the old one aside as `.replaced-*` before renaming the
new one in: a kill between the two renames leaves the old one there, and `clean_partial` puts it back.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import torch

from common import metrics

PREFIX = "ckpt-"
REPLACED = ".replaced-"  # a complete checkpoint moved aside while a newer save of the same update count lands


def save_checkpoint(run_dir: Path, updates: int, state: dict, config: dict, keep: int = 3) -> Path:
    """Write a checkpoint atomically and delete all but the newest `keep`."""
    started = time.perf_counter()
    root = Path(run_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    clean_partial(run_dir)
    final = root / f"{PREFIX}{updates:010d}"
    tmp = root / f".tmp-{final.name}"
    tmp.mkdir()
    torch.save(state, tmp / "state.pt")
    (tmp / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True, default=str))
    for path in (tmp / "state.pt", tmp / "config.json", tmp):
        _fsync(path)
    replaced = root / f"{REPLACED}{final.name}"
    if final.exists():  # same update count saved twice (e.g. periodic, then on exit): newest wins
        final.rename(replaced)
    tmp.rename(final)
    _fsync(root)
    shutil.rmtree(replaced, ignore_errors=True)
    for old in list_checkpoints(run_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    metrics.LEARNER_CHECKPOINT_SECONDS.observe(time.perf_counter() - started)
    return final


def clean_partial(run_dir: Path) -> None:
    """Tidy up after a save that was killed: remove its half-written directory, and put back a checkpoint it had
    moved aside to replace (unless the replacement made it into place)."""
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return
    for replaced in root.glob(f"{REPLACED}*"):
        final = root / replaced.name.removeprefix(REPLACED)
        if final.exists():
            shutil.rmtree(replaced, ignore_errors=True)
        else:
            replaced.rename(final)
    for tmp in root.glob(".tmp-*"):
        shutil.rmtree(tmp, ignore_errors=True)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoints, oldest first."""
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.name.startswith(PREFIX) and (p / "state.pt").is_file())


def load_checkpoint(path: Path) -> tuple[dict, dict]:
    """(state, config) of a checkpoint this learner wrote."""
    path = Path(path)
    state = torch.load(path / "state.pt", map_location="cpu", weights_only=True)  # our own file, tensors only
    config = json.loads((path / "config.json").read_text())
    return state, config


RESUMED_FIELDS = ("algo", "overrides", "demo", "seed", "replay_capacity", "reward")  # what defines a run's state


def saved_run_config(run_dir: Path) -> dict:
    """The fields of RUN_DIR's saved configuration that a resumed learner must keep (see RESUMED_FIELDS)."""
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise ValueError(f"--resume {run_dir}: no config.json there (not a learner run directory)")
    saved = json.loads(path.read_text())
    return {name: saved[name] for name in RESUMED_FIELDS if name in saved}


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete checkpoint, after removing any a killed save left half-written."""
    clean_partial(run_dir)
    found = list_checkpoints(run_dir)
    return found[-1] if found else None
