"""Checkpoints: everything needed to resume, written to a temporary directory and renamed into place.

A checkpoint directory `ckpt-<updates>` holds `state.pt` (algorithm and training-loop state) and
`config.json` (the resolved configuration). Only files this learner wrote are ever loaded, with
`weights_only=True`; nothing that came over the network is loaded this way.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

PREFIX = "ckpt-"


def save_checkpoint(run_dir: Path, updates: int, state: dict, config: dict, keep: int = 3) -> Path:
    """Write a checkpoint atomically and delete all but the newest `keep`."""
    root = Path(run_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"{PREFIX}{updates:010d}"
    tmp = root / f".tmp-{final.name}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    torch.save(state, tmp / "state.pt")
    (tmp / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True, default=str))
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    for old in list_checkpoints(run_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


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
