"""Degraded demonstrations from the paper's robustness study (§5.3), made from a clean demo file.

    python -m robots.sim.demo_variants --demo robots/sim/demos/franka_push_cube.npz \\
        --variant action_noise --out /tmp/franka_push_cube_action_noise.npz [--seed 0]

Variants (all deterministic for a given seed, so they are generated when needed, not shipped):
  clean         unchanged;
  drop50        50 % of the transitions removed at random; the last transition of every episode (the one
                carrying the success reward) is always kept, so the result is still a successful demo.
                Remaining rows keep their order and their original `step` numbers; `next_observation`
                then no longer equals the following row's observation, exactly as with a lossy recorder;
  action_noise  Gaussian noise sigma = 0.2 added to the normalised actions, clipped back to [-1, 1];
  state_noise   Gaussian noise sigma = 0.2 added to every observation and next observation (float
                states in their own units; uint8 images with sigma = 0.2 x 255, rounded and clipped),
                each row drawn independently.
"""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from common.episodes import FORMAT_VERSION, episode_bounds, load_episodes
from common.specs import RobotSpec
from common.types import NEXT_OBS_PREFIX, OBS_PREFIX

VARIANTS = ("clean", "drop50", "action_noise", "state_noise")
NOISE_SIGMA = 0.2
DROP_FRACTION = 0.5


def drop_transitions(columns: dict[str, np.ndarray], rng: np.random.Generator,
                     fraction: float = DROP_FRACTION) -> dict[str, np.ndarray]:
    """Remove `fraction` of the rows at random, always keeping each episode's last row; order is kept."""
    count = len(columns["reward"])
    last_rows = [stop - 1 for _, stop in episode_bounds(columns["episode"])]
    others = np.setdiff1d(np.arange(count), last_rows)
    keep_count = max(0, int(round(count * (1.0 - fraction))) - len(last_rows))
    kept = np.sort(np.concatenate([rng.choice(others, size=min(keep_count, len(others)), replace=False), last_rows]))
    return {name: value[kept] for name, value in columns.items()}


def add_action_noise(columns: dict[str, np.ndarray], rng: np.random.Generator,
                     sigma: float = NOISE_SIGMA) -> dict[str, np.ndarray]:
    """Gaussian noise on the normalised actions, clipped back into [-1, 1]."""
    action = columns["action"]
    noisy = np.clip(action + rng.normal(0.0, sigma, size=action.shape), -1.0, 1.0).astype(action.dtype)
    return {**columns, "action": noisy}


def add_state_noise(columns: dict[str, np.ndarray], rng: np.random.Generator,
                    sigma: float = NOISE_SIGMA) -> dict[str, np.ndarray]:
    """Gaussian noise on every observation column (uint8 images: sigma x 255, rounded, clipped to 0..255)."""
    noisy = dict(columns)
    for name, value in columns.items():
        if not name.startswith((OBS_PREFIX, NEXT_OBS_PREFIX)):
            continue
        if value.dtype == np.uint8:
            shifted = value.astype(np.float64) + rng.normal(0.0, sigma * 255.0, size=value.shape)
            noisy[name] = np.clip(np.rint(shifted), 0, 255).astype(np.uint8)
        else:
            noisy[name] = (value + rng.normal(0.0, sigma, size=value.shape)).astype(value.dtype)
    return noisy


def degrade(columns: dict[str, np.ndarray], variant: str, seed: int = 0) -> dict[str, np.ndarray]:
    """The `variant` of a demo's columns (see the module docstring); deterministic for a given seed."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown demo variant {variant!r}; known: {', '.join(VARIANTS)}")
    rng = np.random.default_rng(seed)
    if variant == "drop50":
        return drop_transitions(columns, rng)
    if variant == "action_noise":
        return add_action_noise(columns, rng)
    if variant == "state_noise":
        return add_state_noise(columns, rng)
    return dict(columns)


def save_columns(path: str | Path, spec: RobotSpec, columns: dict[str, np.ndarray]) -> Path:
    """Write already-columnar episodes in the demo file format (see common/episodes.py), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(tmp, format_version=np.int64(FORMAT_VERSION), spec_json=np.str_(spec.to_json()), **columns)
    tmp.replace(path)
    return path


def write_variant(demo: str | Path, out: str | Path, variant: str, seed: int = 0) -> Path:
    """Load a demo file, degrade it, and write the result to `out` (loadable by `learner --demo`)."""
    spec, columns = load_episodes(demo)
    return save_columns(out, spec, degrade(columns, variant, seed))


@click.command(help="Write a degraded variant (paper §5.3) of a Tandem demo file.")
@click.option("--demo", required=True, type=click.Path(exists=True, dir_okay=False), help="Clean demo .npz.")
@click.option("--variant", required=True, type=click.Choice(VARIANTS), help="Which degradation to apply.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Output .npz path.")
@click.option("--seed", default=0, show_default=True, type=int, help="Noise / drop RNG seed.")
def main(demo: str, variant: str, out: str, seed: int) -> None:
    path = write_variant(demo, out, variant, seed)
    click.echo(f"wrote {variant} variant of {demo} to {path}")


if __name__ == "__main__":
    main()
