"""The matched comparison: the profile's run list and commands, the report's intervals, and a tiny real run."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import replace
from pathlib import Path

import pytest

from benchmarks import one_demo
from benchmarks.comparison_report import (comparison_rows, curve_band, early_low_success, second_proposal_by_quarter,
                                          start_success, t_interval, write_comparison)
from benchmarks.one_demo_report import (RunResult, block_ends, block_second_proposal_share, read_run,
                                        training_operator_share)
from learner.algorithms import ALGORITHMS

pytestmark = pytest.mark.timeout(120)

COMPARISON = one_demo.PROFILES["comparison"]


def test_the_comparison_runs_every_registered_algorithm_on_limo_5_seeds_and_go2_3_seeds():
    runs = one_demo.plan(COMPARISON)
    algos = set(ALGORITHMS.names())
    assert {"sac", "rlpd", "sigent_sac", "cql", "cal_ql", "awac", "iql"} <= algos
    for task, seeds in (("ball_to_goal", 5), ("slalom_go2", 3)):
        planned = {(r.algo, r.seed) for r in runs if r.task == task}
        assert planned == {(algo, seed) for algo in algos for seed in range(seeds)}
    assert len(runs) == 8 * len(algos) and len({r.name for r in runs}) == len(runs)


def test_an_algorithm_registered_later_joins_the_comparison(monkeypatch):
    monkeypatch.setattr(ALGORITHMS, "names", lambda: ["q2rl", "sac"])  # as when q2rl registers
    assert {r.algo for r in one_demo.plan(COMPARISON)} == {"q2rl", "sac"}


def test_a_comparison_run_is_capped_by_updates_paced_and_not_stopped_at_100_percent(tmp_path):
    run = one_demo.plan(COMPARISON)[0]
    args = one_demo.command(run, Path("demo.npz"), tmp_path, COMPARISON.minutes, False, COMPARISON)
    flags = ("--max-updates", "--utd", "--stop-at-success", "--final-eval", "--final-policy", "--checkpoint-every")
    value = {flag: args[args.index(flag) + 1] for flag in flags}
    assert value == {"--max-updates": str(one_demo.COMPARISON_UPDATES), "--utd": "2", "--stop-at-success": "0",
                     "--final-eval": "20", "--final-policy": "latest",  # the final success is the last policy's
                     "--checkpoint-every": "1000"}  # a resumed run repeats at most 1000 updates on new env steps
    assert "--actor-arg=--pace-utd=2" in args and "--actor-arg=--no-eval-data" in args
    assert "--actor-arg=--eval-every-updates=2000" in args, "every algorithm evaluated on the same update grid"
    quick = one_demo.command(run, Path("demo.npz"), tmp_path, 8, False, one_demo.PROFILES["quick"])
    assert "--max-updates" not in quick and not any("pace-utd" in a for a in quick), "other profiles unchanged"


def test_the_t_interval_of_known_values():
    mean, low, high = t_interval([0.2, 0.4, 0.6, math.nan])  # NaN (no such figure) is left out
    half = 4.303 * 0.2 / math.sqrt(3)  # t(0.975, 2) x s / sqrt(n)
    assert mean == pytest.approx(0.4) and (low, high) == (pytest.approx(0.4 - half), pytest.approx(0.4 + half))
    assert t_interval([0.5])[0] == 0.5 and math.isnan(t_interval([0.5])[1]), "one seed has no interval"
    many = t_interval([0.0, 1.0] * 20)  # 40 values: beyond the table, t(0.975, 39) = 2.0227
    assert many[2] - many[0] == pytest.approx(2.0227 * math.sqrt(40 / 39 * 0.25) / math.sqrt(40), rel=1e-3)


def synthetic(algo: str, seed: int, final: float, reached_at: float = math.nan) -> RunResult:
    """A run whose blocks are at env steps 100 and 200 (updates 200 and 400): success final/2, then final."""
    return RunResult(task="ball_to_goal", algo=algo, seed=seed, variant="original", overrides="", env_steps=200 + seed,
                     updates=400, wall_s=120.0, steps_to_100=reached_at, train_steps_to_100=reached_at,
                     train_env_steps=200, best_success=final, final_success=final, completion_steps=30.0,
                     demo_steps=39.0, q_oscillation=0.1, ood_action_ratio=0.3, curve=[(100, final / 2), (200, final)],
                     curve_updates=[(200, final / 2), (400, final)], updates_to_100=2 * reached_at,
                     started_utc=f"2026-12-0{seed + 1}T10:00:00+00:00", load_start=2.0, load_end=4.0,
                     parallel=2)  # fmt: skip


def test_the_report_gives_final_success_and_curves_with_their_intervals_and_the_first_100_percent(tmp_path):
    results = [synthetic("sigent_sac", 0, 1.0, 200), synthetic("sigent_sac", 1, 0.6),
               synthetic("sigent_sac", 2, 0.8), synthetic("sac", 0, 0.0)]  # fmt: skip
    rows = {r["algo"]: r for r in comparison_rows(results)}
    sigent = rows["sigent_sac"]
    half = 4.303 * 0.2 / math.sqrt(3)  # finals 1.0, 0.6, 0.8: mean 0.8, s 0.2
    assert sigent["final_success_mean"] == pytest.approx(0.8)
    assert sigent["final_success_high"] == pytest.approx(0.8 + half)
    assert (sigent["env_steps_min"], sigent["env_steps_max"], sigent["updates_mean"]) == (200, 202, 400)
    assert sigent["seeds_at_100"] == 1 and sigent["env_steps_to_100_each"] == "200"
    assert sigent["updates_to_100_median"] == 400 and sigent["load_mean"] == 3.0 and sigent["parallel"] == "2"
    assert sigent["started_utc"] == "2026-12-01T10:00:00+00:00 .. 2026-12-03T10:00:00+00:00"
    band = curve_band([r.curve_updates for r in results[:3]], points=5)  # x = 0, 100, 200, 300, 400
    assert band["mean"].tolist() == pytest.approx([0.0, 0.0, 0.4, 0.4, 0.8])
    assert band["high"][4] == pytest.approx(0.8 + half) and band["high"][2] == pytest.approx(0.4 + half / 2)
    paths, table = write_comparison(results, tmp_path)
    assert "| ball_to_goal | sigent_sac | 3 |" in table
    assert f"80% [{0.8 - half:.0%}, 100%]" in table and "| sac | 1 |" in table, "clipped to [0, 1] in the table"
    assert "| ball_to_goal | sigent_sac | 40% | – | 80% | 80% | – |" in table, "start, dip, best, final, no gate"
    with (tmp_path / "comparison_curves.csv").open() as handle:
        curves = list(csv.DictReader(handle))
    assert {(r["configuration"], r["axis"]) for r in curves} == {
        (a, x) for a in ("sigent_sac", "sac") for x in ("env_steps", "updates")}
    assert all(p.exists() and p.stat().st_size > 100 for p in paths)


def test_the_comparison_counts_and_names_the_flagged_runs(tmp_path):
    results = [synthetic("csil_pp", 0, 0.3), synthetic("csil_pp", 1, 0.3), synthetic("sac", 0, 0.5)]
    results[1].health = "critic flat at Q = -8; reward runaway (batch mean down to -1e+06)"
    rows = {r["algo"]: r for r in comparison_rows(results)}
    assert (rows["csil_pp"]["flagged_runs"], rows["sac"]["flagged_runs"]) == (1, 0)
    _, table = write_comparison(results, tmp_path)
    assert "| 1/2 |" in table and "| 0/1 |" in table
    assert "- ball_to_goal csil_pp: s1: critic flat at Q = -8; reward runaway" in table


def test_the_start_block_the_early_dip_and_a_gates_rl_share_by_quarter():
    run = synthetic("q2rl", 0, 0.9)
    run.curve_updates = [(10, 0.4), (50, 0.1), (90, 0.3), (300, 0.9)]  # 400 updates: the first quarter ends at 100
    run.second_proposal_curve = [(10, 0.0), (90, 0.2), (150, 0.4), (390, 0.8), (400, 1.0)]
    assert start_success(run) == 0.4 and early_low_success(run) == 0.1, "the dip excludes the starting block"
    assert second_proposal_by_quarter([run]) == pytest.approx([0.1, 0.4, math.nan, 0.9], nan_ok=True)
    plain = synthetic("sac", 0, 1.0)  # blocks at 200 and 400 updates: none early but the first
    plain.second_proposal_curve = [(200, 0.0), (400, 0.0)]  # one program: its share is recorded as 0
    assert math.isnan(early_low_success(plain)) and second_proposal_by_quarter([plain]) == []
    row = {r["algo"]: r for r in comparison_rows([run, plain])}
    assert row["q2rl"]["start_success_mean"] == 0.4
    assert row["q2rl"]["second_proposal_by_quarter"] == "0.10 0.40 nan 0.90"
    assert row["sac"]["second_proposal_by_quarter"] == ""


def test_how_the_final_blocks_episodes_ended_is_counted_per_run_and_pooled_per_configuration(tmp_path):
    ends = ("wrong_side", "success", "success", "success")
    assert block_ends([{"end": end} for end in ends]) == "success 3, wrong_side 1"
    assert block_ends([{"end": "success"}, {"steps": "9"}]) == "", "episodes files written before the column"
    runs = [synthetic("sac", 0, 0.75), synthetic("sac", 1, 0.25)]
    runs[0].final_ends, runs[1].final_ends = "success 3, wrong_side 1", "wrong_side 2, step_limit 1, success 1"
    (row,) = comparison_rows(runs)
    assert row["final_ends"] == "success 50%, wrong_side 38%, step_limit 12%"  # of the 8 episodes together
    assert "| success 50%, wrong_side 38%, step_limit 12% |" in write_comparison(runs, tmp_path)[1]


def test_a_blocks_rl_share_is_weighted_by_episode_steps():
    rows = [{"steps": "30", "rl_action_fraction": "1.0"}, {"steps": "90", "rl_action_fraction": "0.0"}]
    assert block_second_proposal_share(rows) == pytest.approx(0.25)
    assert math.isnan(block_second_proposal_share([{"steps": "30"}])), "no gate, no share"


def test_the_operator_share_counts_training_steps_only_and_shows_in_the_start_table(tmp_path):
    rows = [{"evaluation": "0", "steps": "60", "interventions": "20"}, {"evaluation": "0", "steps": "40",
            "interventions": "0"}, {"evaluation": "1", "steps": "50", "interventions": "50"}]  # fmt: skip
    assert training_operator_share(rows) == pytest.approx(0.2)
    assert math.isnan(training_operator_share([{"evaluation": "0", "steps": "10"}])), "older episodes files"
    corrected = RunResult("ball_to_goal", "aloe", 0, "corrected", "", 100, 200, 60.0, math.nan, math.nan, 100, 0.5,
                          0.5, 30.0, 39.0, 1.0, 0.1, curve_updates=[(0, 0.4)], operator_share=0.2)  # fmt: skip
    table = write_comparison([corrected], tmp_path)[1]
    assert "| aloe [corrected] | 40% | – | 50% | 50% | – | 20.0% |" in table


def test_configurations_side_by_side_plan_each_profile_run_once_per_configuration():
    profile = replace(one_demo.PROFILES["comparison"], tasks=("ball_to_goal",), algos=("aloe",), seeds=2, task_seeds={})
    runs = one_demo.plan_configs(profile, ("batch_size=64",), ["", "chunk_seconds=0.1,execute_seconds=0.1", "clip=0"])
    assert len(runs) == 6 and len({run.name for run in runs}) == 6
    assert [run.overrides[-2:] for run in runs[2:4]] == [("chunk_seconds=0.1", "execute_seconds=0.1")] * 2
    assert all("batch_size=64" in run.overrides for run in runs) and runs[4].overrides[-1] == "clip=0"
    assert one_demo.plan_configs(profile, (), []) == one_demo.plan(profile)


def test_a_run_is_read_with_its_updates_curve_and_run_info(tmp_path):
    with (tmp_path / "episodes.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["wall_s", "env_steps", "actor_id", "evaluation", "success", "steps", "policy_version"])
        writer.writerows([(0, 100, "t", 0, 0, 100, 1), (0, 150, "e", 1, 1, 30, 2), (0, 150, "e", 1, 1, 30, 2)])
    (tmp_path / "train_metrics.csv").write_text("updates,env_steps,q_oscillation\n50,0,1\n250,100,1\n450,200,1\n")
    (tmp_path / "run_info.json").write_text(json.dumps({"started_utc": "2026-12-04T17:00:00+00:00",
                                                        "load_start": [1.5, 1, 1], "load_end": [2.5, 2, 2],
                                                        "parallel": 2}))  # fmt: skip
    spec = one_demo.RunSpec("ball_to_goal", "sac", 0, "original", one_demo.FAST)
    result = read_run(spec, tmp_path, one_demo.bundled_demo("ball_to_goal", images=False), 60.0, block_episodes=2)
    assert result.curve == [(150, 1.0)] and result.curve_updates == [(350, 1.0)], "interpolated at 150 env steps"
    assert result.updates_to_100 == 350 and (result.load_start, result.load_end, result.parallel) == (1.5, 2.5, 2)


def test_a_tiny_paced_comparison_run_through_the_harness(tmp_path, capsys):
    """One real learner + paced LIMO twin actor + evaluator, capped at 40 updates: matched, recorded, reported."""
    argv = ["--profile", "comparison", "--tasks", "ball_to_goal", "--algos", "sac", "--seeds", "1",
            "--max-updates", "40", "--final-eval", "0", "--minutes", "1", "--out", str(tmp_path)]  # fmt: skip
    assert one_demo.main(argv) == 0
    run_dir = tmp_path / "ball_to_goal_sac_original_s0"
    summary = json.loads((run_dir / "summary.json").read_text())
    slack = 2 * (200 + 100 + 32)  # the actor's default: learning_starts + a LIMO episode + a batch, x R
    assert summary["updates"] == 40 and 200 <= summary["env_steps"] <= (40 + slack) / 2 + 2
    info = json.loads((run_dir / "run_info.json").read_text())
    assert info["parallel"] == 1 and len(info["load_start"]) == 3 and "--max-updates" in info["command"]
    assert (tmp_path / "comparison.md").exists() and "ball_to_goal | sac | 1 |" in capsys.readouterr().out


def test_a_run_the_harness_never_finished_resumes_from_its_checkpoint_and_keeps_its_episodes(tmp_path, capsys):
    """A killed harness leaves a run without run_info.json: --keep-finished resumes it (learner --resume from
    its last checkpoint), and the episodes it had come first in the resumed run's episodes.csv."""
    argv = ["--profile", "comparison", "--tasks", "ball_to_goal", "--algos", "sac", "--seeds", "1",
            "--final-eval", "0", "--minutes", "1", "--out", str(tmp_path), "--keep-finished"]  # fmt: skip
    assert one_demo.main([*argv, "--max-updates", "40"]) == 0
    run_dir = tmp_path / "ball_to_goal_sac_original_s0"
    before = (run_dir / "episodes.csv").read_text().splitlines()
    (run_dir / "run_info.json").unlink()  # what a harness killed while its learner ran leaves behind
    assert one_demo.main([*argv, "--max-updates", "80"]) == 0
    assert "resuming from its checkpoint" in capsys.readouterr().out
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["updates"] == 80, "the cap counts the updates made before the interruption"
    info = json.loads((run_dir / "run_info.json").read_text())
    assert info["resumed_from"] and "--resume" in info["command"]
    assert (run_dir / "episodes.csv").read_text().splitlines()[: len(before)] == before
