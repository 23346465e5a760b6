"""`learner export-lerobot RUN_DIR OUT`: a run's episodes as a LeRobot dataset, to browse what the robot did.

The episodes come from the run's durable replay (`RUN_DIR/replay`, every transition the learner acked), their
success labels from `RUN_DIR/episodes.csv` (joined on actor and episode counter). Only whole episodes are
exported: one whose start was pruned from the journal (`replay_capacity`) or that was still running when the
learner stopped is skipped and counted. Observations, executed actions (physical units), rewards, success labels,
operator interventions and the policy version of every step go into the dataset (`common.lerobot_datasets`).
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import click
import numpy as np

from common.episodes import episode_bounds
from common.lerobot_datasets import EpisodeLabel, write_dataset
from common.specs import SpecError
from common.types import unpack_transitions
from learner.replay.durable import ReadReport, read_journal, read_spec

log = logging.getLogger(__name__)
WHICH = ("all", "training", "evaluation")


def export_run(run_dir: str | Path, out: str | Path, which: str = "all", videos: bool = False,
               overwrite: bool = False) -> dict:  # fmt: skip
    """Write the run's whole episodes (`which`: all, training or evaluation) to the LeRobot dataset `out`.

    Returns counts: episodes exported, frames, episodes skipped as incomplete, damaged journal records.
    """
    run_dir = Path(run_dir)
    spec = read_spec(run_dir / "replay")
    if spec is None:
        raise SpecError(f"{run_dir}: no durable replay (replay/spec.json) to export")
    report = ReadReport()
    per_actor: dict[str, list[dict]] = {}
    for record in read_journal(run_dir / "replay", report):
        if record.arrays is not None:
            per_actor.setdefault(record.actor_id, []).append(unpack_transitions(record.arrays, spec))
    successes = read_success_labels(run_dir / "episodes.csv")
    pieces, labels, incomplete = [], [], 0
    for actor_id, batches in per_actor.items():
        columns = {name: np.concatenate([b[name] for b in batches]) for name in batches[0]}
        for start, stop in episode_bounds(columns["episode"]):
            episode = {name: values[start:stop] for name, values in columns.items()}
            if not is_whole_episode(episode):
                incomplete += 1
                continue
            if which != "all" and bool(episode["evaluation"][0]) != (which == "evaluation"):
                continue
            number = int(episode["episode"][0])
            pieces.append(episode)
            labels.append(EpisodeLabel(successes.get((actor_id, number)), actor_id, number))
    if not pieces:
        raise SpecError(f"{run_dir}: no whole {which if which != 'all' else ''} episodes to export".replace("  ", " "))
    columns = {name: np.concatenate([p[name] for p in pieces]) for name in pieces[0]}
    # Episodes of different actors may share a counter: number them anew so each stays its own episode.
    columns["episode"] = np.repeat(np.arange(len(pieces), dtype=np.int64), [len(p["reward"]) for p in pieces])
    write_dataset(out, spec, columns, labels, videos=videos, overwrite=overwrite)
    return {"episodes": len(pieces), "frames": len(columns["reward"]), "incomplete_skipped": incomplete,
            "damaged_records": len(report.damaged)}  # fmt: skip


def is_whole_episode(episode: dict[str, np.ndarray]) -> bool:
    """Steps 0, 1, ... without a gap, ending in a termination or truncation."""
    steps = episode["step"]
    ended = bool(episode["terminated"][-1] or episode["truncated"][-1])
    return ended and np.array_equal(steps, np.arange(len(steps)))


def read_success_labels(episodes_csv: Path) -> dict[tuple[str, int], bool]:
    """(actor id, episode counter) -> success, from a run's episodes.csv (empty if it has no episode column)."""
    if not episodes_csv.exists():
        return {}
    with episodes_csv.open() as handle:
        rows = list(csv.DictReader(handle))
    return {(row["actor_id"], int(row["episode"])): row["success"] == "1" for row in rows if "episode" in row}


@click.command(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("out", type=click.Path())
@click.option("--episodes", "which", type=click.Choice(WHICH), default="all", help="Which episodes to export.")
@click.option("--videos", is_flag=True, help="Store cameras as MP4 video features (LeRobot's default for sharing); "
                                             "Tandem's own loader reads image features only.")
@click.option("--overwrite", is_flag=True, help="Replace OUT if it exists.")
def export_command(run_dir: str, out: str, which: str, videos: bool, overwrite: bool) -> None:
    """Export RUN_DIR's episodes as a LeRobot dataset at OUT (open it with LeRobot's LeRobotDataset or tools)."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        counts = export_run(run_dir, out, which, videos, overwrite)
    except (SpecError, FileExistsError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"exported {counts['episodes']} episodes ({counts['frames']} frames) to {out}; skipped "
               f"{counts['incomplete_skipped']} incomplete episodes, {counts['damaged_records']} damaged records")
