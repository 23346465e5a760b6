"""Reading one benchmark run's directory into figures, and the CSV and plots over all runs."""

from __future__ import annotations

import csv
import json
import math
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from benchmarks.run_health import health_flags
from common.episodes import episode_bounds, load_episodes


CURVES = ("curve", "curve_updates", "second_proposal_curve")  # RunResult's lists, kept out of the CSVs


@dataclass
class RunResult:
    """The figures of one run (NaN where the run produced no such data)."""

    task: str
    algo: str
    seed: int
    variant: str
    overrides: str
    env_steps: int
    updates: int  # gradient updates done; below utd x env_steps when the learner fell behind (a loaded CPU)
    wall_s: float
    steps_to_100: float  # env steps at the start of the first all-success evaluation block; NaN = never
    train_steps_to_100: float  # the same, counting training episodes only (evaluation blocks excluded)
    train_env_steps: int  # env steps of training episodes (the rest were evaluation)
    best_success: float
    final_success: float
    completion_steps: float  # mean steps of the successful episodes in the last evaluation block
    demo_steps: float  # mean episode length of the demonstration
    q_oscillation: float  # mean over training of the windowed std of batch-mean Q
    ood_action_ratio: float  # mean over training
    curve: list[tuple[int, float]] = field(default_factory=list, repr=False)  # (env steps, block success)
    curve_updates: list[tuple[int, float]] = field(default_factory=list, repr=False)  # (updates, block success)
    updates_to_100: float = math.nan  # learner updates when the first all-success block began; NaN = never
    started_utc: str = ""  # when the run started (run_info.json; "" for runs made before it existed)
    load_start: float = math.nan  # 1-minute load average when the run started
    load_end: float = math.nan  # and when it ended
    parallel: int = 0  # runs the harness ran at a time (0: not recorded)
    second_proposal_curve: list[tuple[int, float]] = field(default_factory=list, repr=False)
    """(updates, share of a block's steps run by a gated program's second, RL, proposal); empty elsewhere."""
    operator_share: float = math.nan
    """Share of training steps the operator chose (a twin's scripted corrector: the "corrected" variant); NaN
    where episodes.csv has no `interventions` column (runs made before it existed)."""
    health: str = ""
    """What makes the run degenerate, from its train_metrics.csv ("; "-joined, benchmarks.run_health); "" = none."""
    final_ends: str = ""
    """How the last evaluation block's episodes ended, most common first ("success 12, wrong_side 8", see
    `block_ends`); "" for runs whose episodes.csv has no `end` column (made before it existed)."""

    def one_line(self) -> str:
        reached = "never" if math.isnan(self.steps_to_100) else \
            f"{int(self.steps_to_100)} steps ({int(self.train_steps_to_100)} training)"
        return (f"{self.task} {self.algo} s{self.seed} {self.variant} {self.overrides}: 100% at {reached}, "
                f"best {self.best_success:.0%}, final {self.final_success:.0%}, {self.env_steps} env steps "
                f"({self.train_env_steps} training) and "
                f"{self.updates} updates in "
                f"{self.wall_s / 60:.1f} min, completion {self.completion_steps:.1f} vs demo {self.demo_steps:.1f}, "
                f"Q osc {self.q_oscillation:.3g}, OOD {self.ood_action_ratio:.2f}"
                + (f"; FLAGGED: {self.health}" if self.health else ""))  # fmt: skip


def evaluation_blocks(episodes_csv: Path, min_episodes: int = 1) -> list[tuple[int, list[dict]]]:
    """Evaluation blocks: (env steps when the block's first episode ended, its rows)."""
    return [(start, rows) for start, _, rows in _blocks(episodes_csv, min_episodes)]


def _blocks(episodes_csv: Path, min_episodes: int = 1) -> list[tuple[int, int, list[dict]]]:
    """(env steps, training-episode steps before the block, rows) of every evaluation block.

    A block is one actor's consecutive evaluation episodes of one policy version (the actor holds a
    version for a block), so blocks of an evaluator running beside a training actor are found as well as
    blocks between training episodes. Blocks of fewer than `min_episodes` (a run cut mid-block) are left out.
    """
    blocks: list[tuple[int, int, list[dict]]] = []
    open_block: dict[str, tuple[int, int, list[dict]]] = {}  # actor -> its block in progress
    training_steps = 0
    for row in _rows(episodes_csv):
        actor = row["actor_id"]
        if row["evaluation"] != "1":
            training_steps += int(row["steps"])
            open_block.pop(actor, None)
            continue
        current = open_block.get(actor)
        if current is None or current[2][0]["policy_version"] != row["policy_version"]:
            current = open_block[actor] = (int(row["env_steps"]), training_steps, [])
            blocks.append(current)
        current[2].append(row)
    return [block for block in blocks if len(block[2]) >= min_episodes]


def _rows(episodes_csv: Path) -> list[dict]:
    if not episodes_csv.exists():
        return []
    with episodes_csv.open() as handle:
        return list(csv.DictReader(handle))


def block_second_proposal_share(rows: list[dict]) -> float:
    """Share of a block's steps a gated program ran its second (RL) proposal: episodes weighted by their
    steps; NaN where episodes.csv has no `rl_action_fraction` column (every program but the gated one)."""
    if not rows or rows[0].get("rl_action_fraction") in (None, ""):
        return math.nan
    steps = np.array([int(r["steps"]) for r in rows], dtype=float)
    share = np.array([float(r["rl_action_fraction"]) for r in rows])
    return float((share * steps).sum() / steps.sum()) if steps.sum() else math.nan


def block_ends(rows: list[dict]) -> str:
    """How a block's episodes ended (episodes.csv's `end`: the task's word, or step_limit, operator, ...), most
    common first: "success 12, wrong_side 8"; "" if any row lacks it."""
    ends = Counter(r.get("end") or "" for r in rows)
    return "" if not ends or "" in ends else ", ".join(f"{end} {count}" for end, count in ends.most_common())


def pooled_ends(ends: list[str]) -> str:
    """Several `block_ends` strings as shares of their episodes together: "success 60%, wrong_side 40%"."""
    total: Counter = Counter()
    for part in (part for text in ends for part in text.split(", ") if part):
        end, count = part.rsplit(" ", 1)
        total[end] += int(count)
    episodes = sum(total.values())
    return ", ".join(f"{end} {count / episodes:.0%}" for end, count in total.most_common()) if episodes else ""


def training_operator_share(rows: list[dict]) -> float:
    """Intervention steps over all steps of the training episodes (NaN without an `interventions` column)."""
    training = [r for r in rows if r["evaluation"] != "1"]
    if not training or training[0].get("interventions") in (None, ""):
        return math.nan
    steps = sum(int(r["steps"]) for r in training)
    return sum(int(r["interventions"]) for r in training) / steps if steps else math.nan


def column_mean(train_csv: Path, name: str) -> float:
    if not train_csv.exists():
        return math.nan
    with train_csv.open() as handle:
        values = [float(row[name]) for row in csv.DictReader(handle) if row.get(name) not in (None, "", "nan")]
    return float(np.mean(values)) if values else math.nan


def read_updates(run_dir: Path) -> int:
    summary = run_dir / "summary.json"
    return int(json.loads(summary.read_text()).get("updates", 0)) if summary.exists() else 0


def updates_at(train_csv: Path, env_steps: list[int]) -> list[float]:
    """The learner's update count when it had received each of `env_steps` transitions, interpolated from
    train_metrics.csv (one row per weight publication); NaN without that file."""
    if not train_csv.exists():
        return [math.nan] * len(env_steps)
    with train_csv.open() as handle:
        rows = [(float(r["env_steps"]), float(r["updates"])) for r in csv.DictReader(handle)]
    if not rows:
        return [math.nan] * len(env_steps)
    steps, updates = zip(*sorted(rows))
    return [float(u) for u in np.interp(env_steps, steps, updates, left=0.0)]


def read_run_info(run_dir: Path) -> dict:
    """Date, load and parallelism of a run (run_info.json), mapped to RunResult fields."""
    path = run_dir / "run_info.json"
    if not path.exists():
        return {}
    info = json.loads(path.read_text())
    return {"started_utc": info.get("started_utc", ""), "load_start": info.get("load_start", [math.nan])[0],
            "load_end": info.get("load_end", [math.nan])[0], "parallel": int(info.get("parallel", 0))}  # fmt: skip


def run_layouts(run_dir: Path) -> str:
    """The twins' layout streams a run used (learner --layouts): "held-out", or "shared" for runs from before
    the option (their evaluators replayed the training actor's layouts)."""
    path = run_dir / "config.json"
    config = json.loads(path.read_text()) if path.exists() else {}
    return config.get("local", {}).get("layouts", "shared")


def described_overrides(run, run_dir: Path) -> str:
    """A run's overrides as its configuration is labelled and grouped by: shared layouts are named, so such
    runs never pool with held-out ones (the network sizes every comparison run shares are left out)."""
    overrides = [o for o in run.overrides if not o.startswith(("batch_size", "hidden_dims"))]
    return " ".join(overrides + (["layouts=shared"] if run_layouts(run_dir) == "shared" else []))


def demo_mean_length(demo: Path) -> float:
    _, columns = load_episodes(demo)
    lengths = [b - a for a, b in episode_bounds(columns["episode"])]
    return float(np.mean(lengths)) if lengths else math.nan


def read_run(run, run_dir: Path, demo: Path, wall_s: float, block_episodes: int = 1) -> RunResult:
    """Figures of one finished run from its episodes.csv and train_metrics.csv (blocks of >= `block_episodes`)."""
    episodes = run_dir / "episodes.csv"
    blocks = _blocks(episodes, block_episodes)
    curve = [(start, float(np.mean([r["success"] == "1" for r in rows]))) for start, _, rows in blocks]
    reached = [(start, training) for (start, training, _), (_, success) in zip(blocks, curve) if success >= 1.0]
    last = blocks[-1][2] if blocks else []
    successes = [int(r["steps"]) for r in last if r["success"] == "1"]
    train_csv = run_dir / "train_metrics.csv"
    rows = _rows(episodes)
    env_steps = max((int(r["env_steps"]) for r in rows), default=0)
    train_env_steps = sum(int(r["steps"]) for r in rows if r["evaluation"] != "1")
    block_updates = updates_at(train_csv, [x for x, _ in curve])
    curve_updates = [(int(u), y) for u, (_, y) in zip(block_updates, curve) if not math.isnan(u)]
    first = next((i for i, (_, y) in enumerate(curve) if y >= 1.0), None)
    fractions = [block_second_proposal_share(rows) for _, _, rows in blocks]
    second_proposal_curve = [(int(u), f) for u, f in zip(block_updates, fractions) if not math.isnan(u + f)]
    return RunResult(
        task=run.task, algo=run.algo, seed=run.seed, variant=run.variant,
        overrides=described_overrides(run, run_dir),
        env_steps=env_steps, updates=read_updates(run_dir), wall_s=wall_s,
        steps_to_100=float(reached[0][0]) if reached else math.nan,
        train_steps_to_100=float(reached[0][1]) if reached else math.nan,
        train_env_steps=train_env_steps,
        best_success=max((s for _, s in curve), default=0.0),
        final_success=curve[-1][1] if curve else 0.0,
        completion_steps=float(np.mean(successes)) if successes else math.nan,
        demo_steps=demo_mean_length(demo),
        q_oscillation=column_mean(train_csv, "q_oscillation"),
        ood_action_ratio=column_mean(train_csv, "ood_action_ratio"),
        curve=curve, curve_updates=curve_updates,
        updates_to_100=block_updates[first] if first is not None else math.nan, **read_run_info(run_dir),
        second_proposal_curve=second_proposal_curve, operator_share=training_operator_share(rows),
        health="; ".join(health_flags(train_csv)), final_ends=block_ends(last),
    )  # fmt: skip


def write_results(results: list[RunResult], out: Path) -> Path:
    path = out / "results.csv"
    rows = [{k: v for k, v in asdict(r).items() if k not in CURVES} for r in results]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _group_key(result: RunResult) -> tuple[str, str, str, str]:
    return result.task, result.variant, result.algo, result.overrides


def summarise(results: list[RunResult]) -> list[dict]:
    """One row per configuration (task, variant, algorithm, overrides) over its seeds."""
    groups: dict[tuple, list[RunResult]] = defaultdict(list)
    for result in results:
        groups[_group_key(result)].append(result)
    rows = []
    for (task, variant, algo, overrides), runs in groups.items():
        reached = sorted(r.train_steps_to_100 for r in runs if not math.isnan(r.train_steps_to_100))
        rows.append({
            "task": task, "variant": variant, "algo": algo, "overrides": overrides, "seeds": len(runs),
            "seeds_at_100": len(reached),
            "median_train_steps_to_100": float(np.median(reached)) if reached else math.nan,
            "train_steps_to_100_each": " ".join(str(int(s)) for s in reached),
            "best_success_mean": _mean(r.best_success for r in runs),
            "best_success_min": min(r.best_success for r in runs),
            "final_success_mean": _mean(r.final_success for r in runs),
            "completion_steps_mean": _mean(r.completion_steps for r in runs),
            "demo_steps": runs[0].demo_steps,
            "updates_mean": _mean(r.updates for r in runs),
            "q_oscillation_mean": _mean(r.q_oscillation for r in runs),
            "ood_action_ratio_mean": _mean(r.ood_action_ratio for r in runs),
        })  # fmt: skip
    return rows


def _mean(values) -> float:
    """Mean over the finite values (NaN when there are none: e.g. completion steps of runs that never succeeded)."""
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else math.nan


def write_summary(results: list[RunResult], out: Path) -> tuple[Path, str]:
    """summary.csv (per configuration over seeds) and the same as a Markdown table, also returned."""
    rows = summarise(results)
    path = out / "summary.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    table = markdown_table(rows)
    (out / "summary.md").write_text(table)
    return path, table


def markdown_table(rows: list[dict]) -> str:
    """The summary as a Markdown table: what reached 100 % over 20 episodes, and after how many steps."""
    lines = ["| task | algorithm | seeds at 100 % | training env steps to 100 % (median; each) | best block "
             "(mean; worst seed) | last block | completion vs demo | updates | Q oscillation | OOD ratio |",
             "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        algo = configuration_label(r["algo"], r["overrides"], r["variant"])
        each = ", ".join(f"{int(s):,}" for s in r["train_steps_to_100_each"].split())
        steps = f"{r['median_train_steps_to_100']:,.0f}; {each}" if r["seeds_at_100"] else "never"
        completion = "–" if math.isnan(r["completion_steps_mean"]) else f"{r['completion_steps_mean']:.1f}"
        lines.append(
            f"| {r['task']} | {algo} | {r['seeds_at_100']}/{r['seeds']} | {steps} | "
            f"{r['best_success_mean']:.0%}; {r['best_success_min']:.0%} | {r['final_success_mean']:.0%} | "
            f"{completion} vs {r['demo_steps']:.1f} | {r['updates_mean']:,.0f} | "
            f"{r['q_oscillation_mean']:.2f} | {r['ood_action_ratio_mean']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def configuration_label(algo: str, overrides: str, variant: str) -> str:
    """e.g. "sigent_sac ood_batch_fraction=0.5 [drop50]" (the demo variant only when it is not the original)."""
    return " ".join(part for part in (algo, overrides, "" if variant == "original" else f"[{variant}]") if part)


def mean_curve(curves: list[list[tuple[int, float]]], points: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """Mean over seeds of each seed's latest block success at every env step, up to where the longest run ends.

    Curves are step functions between blocks; a seed's success before its first block counts as 0, and
    after its last block stays at that block's (a run the stop rule ended early holds its 100 %).
    """
    curves = [c for c in curves if c]
    if not curves:
        return np.zeros(0), np.zeros(0)
    grid = np.linspace(0, max(c[-1][0] for c in curves), points)
    return grid, np.mean([latest_block(curve, grid) for curve in curves], axis=0)


def latest_block(curve: list[tuple[int, float]], grid: np.ndarray) -> np.ndarray:
    """A run's success at each grid point: its latest block's (0 before its first, the last one after)."""
    xs, ys = np.array([x for x, _ in curve]), np.array([y for _, y in curve])
    latest = np.searchsorted(xs, grid, side="right") - 1
    return np.where(latest >= 0, ys[np.clip(latest, 0, None)], 0.0)


def write_plots(results: list[RunResult], out: Path) -> list[Path]:
    """success_curves.png (a panel per task; per configuration its seeds thin and their mean bold) and
    completion_steps.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_task: dict[str, list[RunResult]] = defaultdict(list)
    for result in results:
        by_task[result.task].append(result)
    fig, axes = plt.subplots(1, len(by_task), figsize=(6 * len(by_task), 4.2), squeeze=False)
    for ax, (task, runs) in zip(axes[0], sorted(by_task.items())):
        configurations: dict[tuple, list[RunResult]] = defaultdict(list)
        for run in runs:
            configurations[_group_key(run)].append(run)
        for index, ((_, variant, algo, overrides), seeds) in enumerate(configurations.items()):
            colour = f"C{index % 10}"
            for run in seeds:
                xs, ys = zip(*run.curve) if run.curve else ((), ())
                ax.plot(xs, ys, "-", color=colour, alpha=0.25, linewidth=0.8, drawstyle="steps-post")
            grid, mean = mean_curve([run.curve for run in seeds])
            label = configuration_label(algo, overrides, variant)
            ax.plot(grid, mean, "-", color=colour, linewidth=2, label=f"{label} (mean of {len(seeds)})")
        ax.set(title=task, xlabel="env steps (training + evaluation)", ylabel="success over a 20-episode block",
               ylim=(-0.05, 1.05))  # fmt: skip
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    curves = out / "success_curves.png"
    fig.savefig(curves, dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(max(5, 0.9 * len(results)), 3.6))
    names = [f"{r.task}\n{r.algo} s{r.seed}" for r in results]
    ax.bar(np.arange(len(results)) - 0.2, [r.demo_steps for r in results], 0.4, label="demonstration")
    ax.bar(np.arange(len(results)) + 0.2, [r.completion_steps for r in results], 0.4, label="learned policy")
    ax.set_xticks(np.arange(len(results)), names, fontsize=7)
    ax.set(ylabel="steps to complete", title="Completion steps vs the demonstration (Fig. 5b)")
    ax.legend()
    fig.tight_layout()
    steps = out / "completion_steps.png"
    fig.savefig(steps, dpi=110)
    plt.close(fig)
    return [curves, steps]
