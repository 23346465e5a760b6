"""benchmarks/update_cost.py and benchmarks/one_demo*.py: tiny runs and the figures they read back."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from benchmarks import one_demo, update_cost
from benchmarks.one_demo_report import evaluation_blocks, read_run
from learner.algorithms import ALGORITHMS

pytestmark = pytest.mark.timeout(120)


def test_update_cost_times_algorithms_and_prints_ratios_to_sac(capsys):
    assert update_cost.main(["--rounds", "1", "--settings", "state", "--algos", "sigent_sac,iql"]) == 0
    printed = capsys.readouterr().out
    for name in ("sac", "sigent_sac", "iql"):  # SAC is always added: it is the baseline of the ratios
        assert f"\n{name} " in printed
    assert "SigEnt-SAC / SAC = " in printed


def test_every_profile_plans_runs_of_registered_algorithms_on_known_tasks():
    for profile in one_demo.PROFILES.values():
        runs = one_demo.plan(profile)
        assert runs and {r.algo for r in runs} <= set(ALGORITHMS.names()) and {r.task for r in runs} <= set(one_demo.TASKS)
        assert len({r.name for r in runs}) == len(runs), "two runs would share a directory"


def write_episodes(path: Path, rows: list[tuple[int, int, int, int]]) -> None:
    """rows: (env_steps, evaluation, success, steps)."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["wall_s", "env_steps", "actor_id", "evaluation", "success", "steps", "policy_version"])
        for env_steps, evaluation, success, steps in rows:
            writer.writerow([0, env_steps, "a", evaluation, success, steps, 1])


def test_a_run_is_read_back_into_steps_to_100_percent_and_completion_steps(tmp_path):
    rows = [(100, 0, 0, 50)] + [(150, 1, int(i < 1), 30) for i in range(2)] + [(400, 0, 1, 40)]
    rows += [(450, 1, 1, 20), (450, 1, 1, 24)] + [(600, 0, 0, 10)]
    write_episodes(tmp_path / "episodes.csv", rows)
    (tmp_path / "train_metrics.csv").write_text("updates,env_steps,q_oscillation,ood_action_ratio\n1,1,0.5,nan\n2,2,1.5,0.25\n")
    spec = one_demo.RunSpec("ball_to_goal", "sac", 0, "original", one_demo.FAST)
    demo = one_demo.bundled_demo("ball_to_goal", images=False)
    result = read_run(spec, tmp_path, demo, wall_s=60.0)
    assert [len(block) for _, block in evaluation_blocks(tmp_path / "episodes.csv")] == [2, 2]
    assert result.curve == [(150, 0.5), (450, 1.0)]
    assert result.steps_to_100 == 450 and result.completion_steps == 22.0 and result.env_steps == 600
    assert result.train_steps_to_100 == 90 and result.train_env_steps == 100, "evaluation steps not counted"
    assert result.q_oscillation == 1.0 and result.ood_action_ratio == 0.25
    assert not math.isnan(result.demo_steps)
    assert one_demo.write_results([result], tmp_path).exists()
    assert all(p.stat().st_size > 1000 for p in one_demo.write_plots([result], tmp_path))


def test_report_only_rereads_finished_runs_and_skips_missing_ones(tmp_path, capsys):
    run = one_demo.RunSpec("ball_to_goal", "sac", 0, "original", one_demo.FAST)
    (tmp_path / run.name).mkdir()
    write_episodes(tmp_path / run.name / "episodes.csv", [(100, 0, 0, 100), (130, 1, 1, 30)])
    argv = ["--profile", "learning_check", "--algos", "sac,iql", "--seeds", "1", "--out", str(tmp_path), "--report-only"]
    assert one_demo.main(argv) == 0
    assert "skip ball_to_goal_iql" in capsys.readouterr().out, "a run never made is reported, not invented"
    with (tmp_path / "results.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["algo"], r["steps_to_100"], r["train_steps_to_100"]) for r in rows] == [("sac", "130.0", "100.0")]
