"""Episode statistics from the actors: success rates, the live progress line, and the learning curve."""

from __future__ import annotations

import csv
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from common import metrics
from common.protocol import EpisodeSummary

WINDOW = 20  # episodes in a rolling success rate
VIDEOS_DIR = "videos"  # the run directory's episode videos (written by the evaluator actors, actor/videos.py)


@dataclass
class CurvePoint:
    """One finished episode, as plotted."""

    wall_s: float
    env_steps: int
    actor_id: str
    evaluation: bool
    success: bool
    steps: int
    policy_version: int
    rl_action_fraction: float = 0.0  # share of the episode's steps a gated program ran its RL proposal
    episode: int = -1  # the actor's episode counter (joins a row to the episode's transitions in replay)
    interventions: int = 0  # steps the operator (or a twin's scripted corrector) chose the action
    end: str = ""  # what ended the episode (EpisodeSummary.end_reason; "" in files written before it existed)


EPISODE_COLUMNS = ("wall_s", "env_steps", "actor_id", "evaluation", "success", "steps", "policy_version",
                   "rl_action_fraction", "episode", "interventions", "end")  # episodes.csv


def _row(p: CurvePoint) -> list:
    return [f"{p.wall_s:.2f}", p.env_steps, p.actor_id, int(p.evaluation), int(p.success), p.steps,
            p.policy_version, f"{p.rl_action_fraction:.4f}", p.episode, p.interventions, p.end]  # fmt: skip


def _point(row: dict) -> CurvePoint:
    """An episodes.csv row back as a CurvePoint (columns added later default as CurvePoint does)."""
    return CurvePoint(float(row["wall_s"]), int(row["env_steps"]), row["actor_id"], row["evaluation"] == "1",
                      row["success"] == "1", int(row["steps"]), int(row["policy_version"]),
                      float(row.get("rl_action_fraction") or 0.0), int(row.get("episode") or -1),
                      int(row.get("interventions") or 0), row.get("end") or "")  # fmt: skip


class EpisodeStats:
    """Thread-safe record of every finished episode (the receive thread adds, the main thread reads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._start = time.monotonic()
        self.points: list[CurvePoint] = []
        self._recent: dict[tuple[str, bool], deque] = {}
        self.env_steps = 0  # filled in by the caller from the replay counter
        self._episode_added = threading.Condition(self._lock)
        self._log = None  # episodes.csv, appended as episodes arrive (open_log)
        self._seen: set[tuple[str, int]] = set()  # (actor, episode): an actor resends what it is unsure of

    def open_log(self, path: Path, resume: bool = False) -> None:
        """Append every episode to `path` (episodes.csv) as it arrives, so a learner killed at any moment keeps
        its learning curve; with `resume` the episodes already there are read back first and wall time goes on
        from the last one (the time the learner was down is not counted)."""
        with self._lock:
            if resume and path.exists():
                with path.open(newline="") as handle:
                    self.points = [_point(row) for row in csv.DictReader(handle)] + self.points
                self._seen.update((p.actor_id, p.episode) for p in self.points)
                for p in self.points:
                    self._recent.setdefault((p.actor_id, p.evaluation), deque(maxlen=WINDOW)).append(p.success)
                self._start = time.monotonic() - (self.points[-1].wall_s if self.points else 0.0)
            self._log = path.open("w", newline="")
            self._writer = csv.writer(self._log)
            self._writer.writerow(EPISODE_COLUMNS)
            self._writer.writerows(_row(p) for p in self.points)
            self._log.flush()

    def close_log(self) -> None:
        with self._lock:
            if self._log is not None:
                self._log.close()
                self._log = None

    def add(self, actor_id: str, summary: EpisodeSummary, robot: str = "") -> bool:
        """Record a finished episode; False (and nothing recorded) if this actor's episode is already here."""
        with self._lock:
            if (actor_id, summary.episode) in self._seen:
                return False
            self._seen.add((actor_id, summary.episode))
            point = CurvePoint(
                time.monotonic() - self._start, self.env_steps, actor_id, summary.evaluation,
                summary.success, summary.steps, summary.policy_version, summary.rl_action_fraction, summary.episode,
                summary.interventions, summary.end_reason,
            )  # fmt: skip
            self.points.append(point)
            if self._log is not None:
                self._writer.writerow(_row(point))
                self._log.flush()
            recent = self._recent.setdefault((actor_id, summary.evaluation), deque(maxlen=WINDOW))
            recent.append(summary.success)
            mode = "eval" if summary.evaluation else "train"
            metrics.LEARNER_EPISODE_SUCCESS.labels(actor_id, robot, mode).set(sum(recent) / len(recent))
            self._episode_added.notify_all()
            return True

    def success_rate(self, evaluation: bool, last: int = WINDOW, actor_id: str | None = None) -> float | None:
        """Success over the last `last` episodes of that mode (None before the first one)."""
        with self._lock:
            chosen = [p.success for p in self.points if p.evaluation == evaluation and actor_id in (None, p.actor_id)]
        chosen = chosen[-last:]
        return sum(chosen) / len(chosen) if chosen else None

    def episodes(self, evaluation: bool | None = None, actor_id: str | None = None) -> list[CurvePoint]:
        with self._lock:
            return [
                p
                for p in self.points
                if evaluation in (None, p.evaluation) and actor_id in (None, p.actor_id)
            ]

    def wait_for_episodes(self, count: int, actor_id: str, timeout_s: float) -> bool:
        """Block until `actor_id` has finished `count` episodes (or the timeout passes)."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while sum(p.actor_id == actor_id for p in self.points) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._episode_added.wait(timeout=remaining):
                    return sum(p.actor_id == actor_id for p in self.points) >= count
        return True


def live_line(stats: EpisodeStats, updates: int, version: int, replay_size: int, stage: str = "") -> str:
    """One-line progress summary for the terminal; `stage` (e.g. "stage 2/3 rollouts 3/10 episodes") leads."""
    train = stats.success_rate(evaluation=False)
    evaluation = stats.success_rate(evaluation=True)

    def pct(value: float | None) -> str:
        return "  - " if value is None else f"{100 * value:3.0f}%"

    line = (
        f"env steps {stats.env_steps:>7} | updates {updates:>7} | success train {pct(train)} "
        f"eval {pct(evaluation)} | policy v{version} | replay {replay_size}"
    )
    return f"{stage} | {line}" if stage else line


def write_curve(stats: EpisodeStats, run_dir: Path, title: str) -> tuple[Path, Path]:
    """Write every episode to episodes.csv and the success curves to learning_curve.png."""
    run_dir.mkdir(parents=True, exist_ok=True)
    csv_path, png_path = run_dir / "episodes.csv", run_dir / "learning_curve.png"
    stats.close_log()
    points = stats.episodes()
    with csv_path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(EPISODE_COLUMNS)
        writer.writerows(_row(p) for p in points)
    _plot(points, png_path, title)
    return csv_path, png_path


def _plot(points: list[CurvePoint], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for evaluation, label, style in ((False, "training episodes", "-"), (True, "evaluation episodes", "o-")):
        chosen = [p for p in points if p.evaluation == evaluation]
        if not chosen:
            continue
        window: deque = deque(maxlen=WINDOW)
        xs, ys = [], []
        for p in chosen:
            window.append(p.success)
            xs.append(p.env_steps)
            ys.append(100.0 * sum(window) / len(window))
        ax.plot(xs, ys, style, label=f"{label} (rolling {WINDOW})", markersize=3)
    ax.set_xlabel("environment steps received by the learner")
    ax.set_ylabel("success rate (%)")
    ax.set_ylim(-5, 105)
    ax.grid(alpha=0.3)
    ax.set_title(title)
    if ax.get_legend_handles_labels()[0]:  # a run stopped before any episode has no curve to name
        ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def latest_video(directory: Path) -> Path | None:
    """The newest finished episode video in `directory` (temporary `.partial` files are not videos)."""
    videos = list(directory.glob("*.mp4")) if directory.is_dir() else []
    return max(videos, key=lambda path: (path.stat().st_mtime_ns, path.name), default=None)


def write_train_metrics(history: list[tuple[int, int, dict[str, float]]], run_dir: Path) -> Path:
    """train_metrics.csv: one row per weight publish (updates, env steps, every algorithm metric)."""
    path = run_dir / "train_metrics.csv"
    names = sorted({name for _, _, values in history for name in values})
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["updates", "env_steps", *names])
        for updates, env_steps, values in history:
            writer.writerow([updates, env_steps, *(f"{values.get(n, float('nan')):.6g}" for n in names)])
    return path
