"""The comparison's figures per algorithm x task: success against env steps and against updates, over seeds.

Written beside one_demo's results.csv and summary: comparison.md and comparison.csv (one row per task and
configuration), comparison_curves.csv (the mean curves and their intervals, for replotting) and
comparison_curves.png (a row per task: success against env steps, and against updates).

Intervals are 95 % Student-t intervals over seeds: mean +- t(0.975, n - 1) x s / sqrt(n). With the 3-5
seeds of a comparison a percentile bootstrap is too narrow (it can never reach past the seeds' own
range); the t interval is the usual small-sample choice. It assumes roughly normal per-seed values,
which success rates near 0 or 1 are not, so the plots and the Markdown table clip it to [0, 1] (the CSVs
keep it unclipped).
One seed has no interval (NaN).

A run's success at an env step (or update count) is that of its latest evaluation block before it: 0
before its first block, and a run that ended earlier holds its last block. Env steps are the learner's
(transitions in replay: training steps only when the evaluator's data stays out, as in `comparison`);
updates at a block are interpolated from the learner's train_metrics.csv.
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from benchmarks.one_demo_report import RunResult, configuration_label, latest_block, pooled_ends

# Two-sided 95 % quantiles of Student's t, by degrees of freedom (beyond 30: the Cornish-Fisher expansion).
T_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
         11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110, 18: 2.101, 19: 2.093,
         20: 2.086, 21: 2.080, 22: 2.074, 23: 2.069, 24: 2.064, 25: 2.060, 26: 2.056, 27: 2.052, 28: 2.048,
         29: 2.045, 30: 2.042}  # fmt: skip
EARLY_SHARE = 0.25  # "the start of online training" where a dip is looked for: the first quarter of updates
AXES = (("env_steps", "env steps (learner's replay)"), ("updates", "gradient updates"))


def t_quantile(dof: int) -> float:
    """t(0.975, dof)."""
    if dof in T_975:
        return T_975[dof]
    z = 1.959964
    return z + (z**3 + z) / (4 * dof) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * dof**2)


def t_interval(values) -> tuple[float, float, float]:
    """(mean, low, high) of the finite values; the bounds are NaN for fewer than two."""
    finite = np.array([v for v in values if not math.isnan(v)], dtype=float)
    if finite.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(finite.mean())
    if finite.size < 2:
        return mean, math.nan, math.nan
    half = t_quantile(finite.size - 1) * float(finite.std(ddof=1)) / math.sqrt(finite.size)
    return mean, mean - half, mean + half


def curve_band(curves: list[list[tuple[int, float]]], points: int = 100) -> dict[str, np.ndarray]:
    """Mean and t interval over runs of their success at `points` x values from 0 to the furthest run's end."""
    curves = [c for c in curves if c]
    if not curves:
        return {name: np.zeros(0) for name in ("x", "mean", "low", "high")}
    grid = np.linspace(0, max(c[-1][0] for c in curves), points)
    values = np.array([latest_block(curve, grid) for curve in curves])
    mean, low, high = np.array([t_interval(values[:, i]) for i in range(points)]).T
    return {"x": grid, "mean": mean, "low": low, "high": high}


def _configurations(results: list[RunResult]) -> dict[tuple, list[RunResult]]:
    groups: dict[tuple, list[RunResult]] = defaultdict(list)
    for result in results:
        groups[result.task, result.variant, result.algo, result.overrides].append(result)
    return groups


def comparison_rows(results: list[RunResult]) -> list[dict]:
    """One row per task and configuration: what was matched (env steps, updates), final success, first 100 %."""
    rows = []
    for (task, variant, algo, overrides), runs in _configurations(results).items():
        final, final_low, final_high = t_interval([r.final_success for r in runs])
        reached = [r for r in runs if not math.isnan(r.steps_to_100)]
        rows.append({
            "task": task, "configuration": configuration_label(algo, overrides, variant), "algo": algo,
            "seeds": len(runs), "env_steps_mean": _mean(r.env_steps for r in runs),
            "env_steps_min": min(r.env_steps for r in runs), "env_steps_max": max(r.env_steps for r in runs),
            "updates_mean": _mean(r.updates for r in runs), "updates_min": min(r.updates for r in runs),
            "updates_max": max(r.updates for r in runs),
            "final_success_mean": final, "final_success_low": final_low, "final_success_high": final_high,
            "start_success_mean": _mean(start_success(r) for r in runs),
            "early_low_success_mean": _mean(early_low_success(r) for r in runs),
            "best_success_mean": _mean(r.best_success for r in runs),
            "operator_share_mean": _mean(r.operator_share for r in runs),
            "final_ends": pooled_ends([r.final_ends for r in runs]),
            "second_proposal_by_quarter": " ".join(f"{q:.2f}" for q in second_proposal_by_quarter(runs)),
            "seeds_at_100": len(reached),
            "env_steps_to_100_median": _median(r.steps_to_100 for r in reached),
            "env_steps_to_100_each": " ".join(str(int(r.steps_to_100)) for r in reached),
            "updates_to_100_median": _median(r.updates_to_100 for r in reached),
            "updates_to_100_each": " ".join(_int_or_nan(r.updates_to_100) for r in reached),
            "wall_min_mean": _mean(r.wall_s / 60 for r in runs),
            "load_mean": _mean([r.load_start for r in runs] + [r.load_end for r in runs]),
            "parallel": " ".join(sorted({str(r.parallel) for r in runs if r.parallel})),
            "started_utc": " .. ".join(sorted({min(_dates(runs)), max(_dates(runs))})) if _dates(runs) else "",
            "flagged_runs": sum(1 for r in runs if r.health),
            "flags": "; ".join(f"s{r.seed}: {r.health}" for r in runs if r.health),
        })  # fmt: skip
    return rows


def start_success(run: RunResult) -> float:
    """The first evaluation block's success: the policy the online stage starts from (the pretrained one, e.g.
    Q2RL's BC policy, ALOE's BC-warm-started flow; an untrained policy for algorithms without an offline stage)."""
    return run.curve_updates[0][1] if run.curve_updates else math.nan


def early_low_success(run: RunResult, share: float = EARLY_SHARE) -> float:
    """The lowest block after the first within the first `share` of the run's updates: the unlearning dip the
    offline-to-online papers report (NaN without such a block)."""
    early = [y for x, y in run.curve_updates[1:] if x <= share * run.updates]
    return min(early) if early else math.nan


def second_proposal_by_quarter(runs: list[RunResult]) -> list[float]:
    """A gated program's RL share of evaluation steps in each quarter of the updates, mean over blocks and
    seeds (Q2RL's Fig. 5). [] where no step ran a second proposal: every program records the share (0 but for
    the gated one), so a gate that never handed over would also show [] (its start and final blocks tell)."""
    points = [(x / r.updates, f) for r in runs if r.updates for x, f in r.second_proposal_curve]
    if not any(f > 0 for _, f in points):
        return []
    return [_mean(f for x, f in points if q / 4 <= x < (q + 1) / 4 or (q == 3 and x >= 1)) for q in range(4)]


def _mean(values) -> float:
    finite = [float(v) for v in values if not math.isnan(float(v))]
    return float(np.mean(finite)) if finite else math.nan


def _median(values) -> float:
    finite = [float(v) for v in values if not math.isnan(float(v))]
    return float(np.median(finite)) if finite else math.nan


def _int_or_nan(value: float) -> str:
    return "nan" if math.isnan(value) else str(int(value))


def _dates(runs: list[RunResult]) -> list[str]:
    return [r.started_utc for r in runs if r.started_utc]


def markdown(rows: list[dict]) -> str:
    """The comparison table: matched budget, final success with its interval, and when 100 % first came."""
    lines = ["| task | algorithm | seeds | env steps (mean; min–max) | updates (mean; min–max) | final success, "
             "mean [95 % t interval] | seeds at 100 % | env steps to 100 % (median; each) | updates to 100 % "
             "(median) | min per run | load | parallel | degenerate runs |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        interval = "" if math.isnan(r["final_success_low"]) else \
            f" [{max(r['final_success_low'], 0):.0%}, {min(r['final_success_high'], 1):.0%}]"
        each = ", ".join(f"{int(s):,}" for s in r["env_steps_to_100_each"].split())
        to_100 = f"{r['env_steps_to_100_median']:,.0f}; {each}" if r["seeds_at_100"] else "never"
        updates_100 = f"{r['updates_to_100_median']:,.0f}" if r["seeds_at_100"] else "–"
        lines.append(
            f"| {r['task']} | {r['configuration']} | {r['seeds']} | {r['env_steps_mean']:,.0f}; "
            f"{r['env_steps_min']:,}–{r['env_steps_max']:,} | {r['updates_mean']:,.0f}; {r['updates_min']:,}–"
            f"{r['updates_max']:,} | {r['final_success_mean']:.0%}{interval} | {r['seeds_at_100']}/{r['seeds']} | "
            f"{to_100} | {updates_100} | {r['wall_min_mean']:.0f} | {r['load_mean']:.1f} | {r['parallel'] or '–'} | "
            f"{r['flagged_runs']}/{r['seeds']} |"
        )  # fmt: skip
    return "\n".join(lines) + "\n\n" + markdown_start(rows) + markdown_flags(rows)


def markdown_flags(rows: list[dict]) -> str:
    """What makes each flagged run degenerate (benchmarks.run_health): its success figures above do not show it."""
    flagged = [f"- {r['task']} {r['configuration']}: {r['flags']}" for r in rows if r["flags"]]
    if not flagged:
        return ""
    return "\nDegenerate runs (from their train_metrics.csv; `benchmarks/run_health.py`):\n" + "\n".join(flagged) + "\n"


def markdown_start(rows: list[dict]) -> str:
    """Where each configuration starts, whether it dips, its best and final block, and a gate's RL share."""
    lines = [f"| task | algorithm | first block (the starting policy) | lowest block in the first "
             f"{EARLY_SHARE:.0%} of updates | best block | final | RL share of gated steps by quarter | "
             "operator share of training steps | how the final blocks' episodes ended |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        low = "–" if math.isnan(r["early_low_success_mean"]) else f"{r['early_low_success_mean']:.0%}"
        operator = r["operator_share_mean"]
        lines.append(f"| {r['task']} | {r['configuration']} | {r['start_success_mean']:.0%} | {low} | "
                     f"{r['best_success_mean']:.0%} | {r['final_success_mean']:.0%} | "
                     f"{r['second_proposal_by_quarter'] or '–'} | "
                     f"{'–' if math.isnan(operator) or not operator else f'{operator:.1%}'} | "
                     f"{r['final_ends'] or '–'} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def curve_rows(results: list[RunResult]) -> list[dict]:
    """Every configuration's mean curve and interval, against env steps and against updates."""
    rows = []
    for (task, variant, algo, overrides), runs in _configurations(results).items():
        label = configuration_label(algo, overrides, variant)
        for axis, curves in (("env_steps", [r.curve for r in runs]), ("updates", [r.curve_updates for r in runs])):
            band = curve_band(curves)
            for x, mean, low, high in zip(band["x"], band["mean"], band["low"], band["high"]):
                rows.append({"task": task, "configuration": label, "axis": axis, "x": round(float(x)),
                             "success_mean": mean, "success_low": low, "success_high": high, "seeds": len(runs)})
    return rows


def write_comparison(results: list[RunResult], out: Path) -> tuple[list[Path], str]:
    """comparison.csv, comparison.md, comparison_curves.csv and comparison_curves.png; returns them and the table."""
    rows = comparison_rows(results)
    table = markdown(rows)
    paths = [_write_csv(rows, out / "comparison.csv"), out / "comparison.md"]
    paths[1].write_text(table)
    paths.append(_write_csv(curve_rows(results), out / "comparison_curves.csv"))
    paths.append(plot_comparison(results, out / "comparison_curves.png"))
    return paths, table


def _write_csv(rows: list[dict], path: Path) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["empty"])
        writer.writeheader()
        writer.writerows(rows)
    return path


def plot_comparison(results: list[RunResult], path: Path) -> Path:
    """A row per task: success against env steps (left) and against updates (right), mean and t band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = sorted({r.task for r in results})
    fig, axes = plt.subplots(len(tasks), 2, figsize=(12, 4.2 * len(tasks)), squeeze=False)
    for row, task in zip(axes, tasks):
        configurations = {k: v for k, v in _configurations(results).items() if k[0] == task}
        for index, ((_, variant, algo, overrides), runs) in enumerate(configurations.items()):
            label = f"{configuration_label(algo, overrides, variant)} ({len(runs)} seeds)"
            for ax, curves in zip(row, ([r.curve for r in runs], [r.curve_updates for r in runs])):
                band = curve_band(curves)
                ax.plot(band["x"], band["mean"], color=f"C{index % 10}", linewidth=1.8, label=label)
                ax.fill_between(band["x"], np.clip(band["low"], 0, 1), np.clip(band["high"], 0, 1),
                                color=f"C{index % 10}", alpha=0.15, linewidth=0)  # fmt: skip
        for ax, (_, xlabel) in zip(row, AXES):
            ax.set(title=task, xlabel=xlabel, ylabel="success over a 20-episode block", ylim=(-0.05, 1.05))
            ax.grid(alpha=0.3)
        row[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
