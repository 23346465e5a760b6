"""benchmarks/update_cost.py and benchmarks/one_demo*.py: tiny runs and the figures they read back."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from benchmarks import one_demo, update_cost
from benchmarks.one_demo_report import RunResult, evaluation_blocks, markdown_table, mean_curve, read_run, summarise
from learner.algorithms import ALGORITHMS

pytestmark = pytest.mark.timeout(120)


def test_update_cost_times_algorithms_and_prints_ratios_to_sac(capsys):
    assert update_cost.main(["--rounds", "1", "--settings", "state", "--algos", "sigent_sac,iql,aloe"]) == 0
    printed = capsys.readouterr().out
    for name in ("sac", "sigent_sac", "iql", "aloe"):  # SAC is always added: it is the baseline of the ratios
        assert f"\n{name} " in printed
    assert "SigEnt-SAC / SAC = " in printed


def test_update_cost_times_a_config_variant_beside_the_default_and_refuses_a_malformed_one(capsys):
    argv = ["--rounds", "1", "--settings", "state", "--algos", "sigent_sac,sigent_sac:ood_batch_fraction=0.5"]
    assert update_cost.main(argv) == 0
    assert "\nsigent_sac:ood_batch_fraction=0.5 " in capsys.readouterr().out
    with pytest.raises(SystemExit, match="NAME:KEY=VALUE"):
        update_cost.main(["--rounds", "1", "--settings", "state", "--algos", "sigent_sac:ood_batch_fraction"])
    with pytest.raises(ValueError, match="unknown sigent_sac config field"):
        update_cost.main(["--rounds", "1", "--settings", "state", "--algos", "sigent_sac:no_such_field=1"])


def test_update_cost_keeps_a_tuple_values_commas_inside_its_entry():
    assert update_cost.algo_entries("sac,sigent_sac:image_strides=2,2,1,1,rlpd") == [
        "sac", "sigent_sac:image_strides=2,2,1,1", "rlpd"]  # fmt: skip


def test_every_profile_plans_runs_of_registered_algorithms_on_known_tasks():
    for profile in one_demo.PROFILES.values():
        runs = one_demo.plan(profile)
        assert runs and {r.algo for r in runs} <= set(ALGORITHMS.names())
        assert {r.task for r in runs} <= set(one_demo.TASKS)
        assert len({r.name for r in runs}) == len(runs), "two runs would share a directory"


def test_a_file_valued_override_names_its_run_by_the_files_stem_not_its_path():
    run = one_demo.RunSpec("ball_to_goal", "csil_pp", 0, "original", ("base_policy=/some/dir/aloe_bc.npz", "x=1,2"))
    assert run.name == "ball_to_goal_csil_pp_original_s0_base_policyaloe_bc_x1-2"


def test_a_robot_option_reaches_every_local_actor_as_a_task_option_not_the_learners_config(tmp_path):
    run = one_demo.RunSpec("slalom_go2", "sigent_sac", 0, "original", ("robot.stall_steps=30",))
    args = one_demo.command(run, Path("demo.npz"), tmp_path, 1.0, images=False)
    assert args[args.index("--actor-arg=stall_steps=30") - 1] == "--actor-arg=-o"
    assert "robot.stall_steps=30" not in args and run.name.endswith("_robot.stall_steps30")
    one_demo.check_overrides([run])  # not an algorithm field, and not refused as one


def test_a_degraded_variant_run_trains_on_its_own_degraded_copy_of_the_demo(tmp_path):
    from common.episodes import load_episodes

    run = one_demo.RunSpec("ball_to_goal", "sigent_sac", 0, "drop50", one_demo.FAST)
    clean = one_demo.bundled_demo("ball_to_goal", images=False)
    degraded = one_demo.demo_for(run, tmp_path, images=False)
    assert degraded.parent == tmp_path and degraded != clean
    kept, full = len(load_episodes(degraded)[1]["reward"]), len(load_episodes(clean)[1]["reward"])
    assert 0 < kept < full, "half the transitions dropped"


def test_a_corrected_run_keeps_the_demo_and_gives_its_actors_the_corrector_scaled_by_the_demo_length(tmp_path):
    run = one_demo.RunSpec("ball_to_goal", "aloe", 0, "corrected")
    clean = one_demo.bundled_demo("ball_to_goal", images=False)
    assert one_demo.demo_for(run, tmp_path, images=False) == clean
    args = one_demo.command(run, clean, tmp_path, 1.0, images=False)
    demo_steps = 39  # the bundled LIMO demonstration's one episode
    assert "--actor-arg=--correct-after=58" in args and f"--actor-arg=--correct-for={round(demo_steps / 2)}" in args
    plain = one_demo.command(one_demo.RunSpec("ball_to_goal", "aloe", 0, "original"), clean, tmp_path, 1.0, False)
    assert not [a for a in plain if "--correct-" in a]


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
    (tmp_path / "train_metrics.csv").write_text(
        "updates,env_steps,q_oscillation,ood_action_ratio\n"
        "1,1,0.5,nan\n"
        "2,2,1.5,0.25\n"
    )
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


def test_blocks_of_an_evaluator_beside_training_are_found_per_actor_and_version(tmp_path):
    header = ["wall_s", "env_steps", "actor_id", "evaluation", "success", "steps", "policy_version"]
    rows = [  # (env_steps, actor, evaluation, success, steps, version): the evaluator's rows interleave
        (100, "train", 0, 0, 100, 1), (130, "eval", 1, 0, 30, 1), (230, "train", 0, 0, 100, 2),
        (260, "eval", 1, 1, 30, 1), (290, "eval", 1, 1, 30, 5), (390, "train", 0, 1, 100, 6),
        (420, "eval", 1, 1, 30, 5), (450, "eval", 1, 1, 30, 7),  # the last block was cut after one episode
    ]
    with (tmp_path / "episodes.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows([(0, *row) for row in rows])
    blocks = evaluation_blocks(tmp_path / "episodes.csv", min_episodes=2)
    assert [(start, [r["env_steps"] for r in block]) for start, block in blocks] == [
        (130, ["130", "260"]), (290, ["290", "420"])]
    spec = one_demo.RunSpec("ball_to_goal", "sac", 0, "original", one_demo.FAST)
    result = read_run(spec, tmp_path, one_demo.bundled_demo("ball_to_goal", images=False), 60.0, block_episodes=2)
    assert result.curve == [(130, 0.5), (290, 1.0)]
    assert (result.steps_to_100, result.train_steps_to_100) == (290, 200)


def test_report_only_rereads_finished_runs_and_skips_missing_ones(tmp_path, capsys):
    run = one_demo.RunSpec("ball_to_goal", "sac", 0, "original", one_demo.FAST)
    (tmp_path / run.name).mkdir()
    block = [(130, 1, 1, 30)] * one_demo.EVAL_EPISODES  # the harness counts full blocks only
    write_episodes(tmp_path / run.name / "episodes.csv", [(100, 0, 0, 100), *block])
    argv = ["--profile", "learning_check", "--algos", "sac,iql", "--seeds", "1", "--out", str(tmp_path),
            "--report-only", "--parallel", "2"]
    assert one_demo.main(argv) == 0
    assert "skip ball_to_goal_iql" in capsys.readouterr().out, "a run never made is reported, not invented"
    with (tmp_path / "results.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["algo"], r["steps_to_100"], r["train_steps_to_100"]) for r in rows] == [("sac", "130.0", "100.0")]


def test_keep_finished_rereads_finished_runs_and_trains_only_the_missing_ones(tmp_path, monkeypatch):
    finished = one_demo.RunSpec("ball_to_goal", "sac", 0, "original", one_demo.FAST)
    (tmp_path / finished.name).mkdir()
    write_episodes(tmp_path / finished.name / "episodes.csv", [(100, 0, 0, 100)] + [(130, 1, 1, 30)] * 20)
    (tmp_path / finished.name / "summary.json").write_text('{"total_time_s": 60, "interrupted": false}')
    (tmp_path / finished.name / "run_info.json").write_text("{}")
    # A learner stopped by a signal (a session's end) writes a summary too: such a run must be trained again.
    stopped = one_demo.RunSpec("ball_to_goal", "awac", 0, "original", one_demo.FAST)
    (tmp_path / stopped.name).mkdir()
    write_episodes(tmp_path / stopped.name / "episodes.csv", [(100, 0, 0, 100)])
    (tmp_path / stopped.name / "summary.json").write_text('{"total_time_s": 60, "interrupted": true}')
    (tmp_path / stopped.name / "run_info.json").write_text("{}")
    trained = []
    monkeypatch.setattr(one_demo, "execute", lambda run, out, profile, parallel: trained.append(run.algo))
    argv = ["--profile", "learning_check", "--algos", "sac,iql,awac", "--seeds", "1", "--out", str(tmp_path),
            "--keep-finished"]
    assert one_demo.main(argv) == 0
    assert sorted(trained) == ["awac", "iql"], "the interrupted run and the missing one are trained"
    with (tmp_path / "results.csv").open() as handle:
        assert [r["algo"] for r in csv.DictReader(handle)] == ["sac"]


def result_of(algo: str, seed: int, steps_to_100: float, best: float, overrides: str = "") -> RunResult:
    return RunResult(task="ball_to_goal", algo=algo, seed=seed, variant="original", overrides=overrides,
                     env_steps=1000, updates=100 * (seed + 1), wall_s=60.0, steps_to_100=steps_to_100,
                     train_steps_to_100=steps_to_100 / 2, train_env_steps=500, best_success=best,
                     final_success=best, completion_steps=math.nan if best == 0 else 20.0 + seed, demo_steps=39.0,
                     q_oscillation=0.1, ood_action_ratio=0.3, curve=[(100, best / 2), (300, best)])  # fmt: skip


def test_the_summary_counts_seeds_at_100_percent_per_configuration_and_keeps_overrides_apart():
    results = [result_of("sigent_sac", 0, 400.0, 1.0), result_of("sigent_sac", 1, math.nan, 0.6),
               result_of("sigent_sac", 2, 800.0, 1.0), result_of("sac", 0, math.nan, 0.0),
               result_of("sigent_sac", 0, math.nan, 0.5, overrides="ood_batch_fraction=0.5")]  # fmt: skip
    rows = {(r["algo"], r["overrides"]): r for r in summarise(results)}
    sigent = rows["sigent_sac", ""]
    assert (sigent["seeds"], sigent["seeds_at_100"]) == (3, 2)
    assert sigent["median_train_steps_to_100"] == 300.0 and sigent["train_steps_to_100_each"] == "200 400"
    assert sigent["best_success_min"] == 0.6 and sigent["completion_steps_mean"] == 21.0
    assert rows["sac", ""]["seeds_at_100"] == 0 and math.isnan(rows["sac", ""]["completion_steps_mean"])
    assert rows["sigent_sac", "ood_batch_fraction=0.5"]["seeds"] == 1
    table = markdown_table(summarise(results))
    assert "| ball_to_goal | sigent_sac | 2/3 | 300; 200, 400 |" in table and "| sac | 0/1 | never |" in table


def test_the_mean_curve_holds_each_seeds_latest_block_until_the_longest_run_ends():
    grid, mean = mean_curve([[(100, 0.5), (500, 0.0)], [(200, 0.5), (250, 1.0)]], points=6)
    at = dict(zip(grid.tolist(), mean.tolist()))
    assert list(at) == [0, 100, 200, 300, 400, 500]
    assert at[0] == 0.0 and at[100] == 0.25 and at[200] == 0.5
    assert at[300] == 0.75 and at[500] == 0.5, "a seed stopped early holds its last block"


def test_set_overrides_reach_every_run_and_its_name_and_bad_ones_are_refused_before_training(tmp_path):
    profile = one_demo.Profile(("ball_to_goal",), ("sigent_sac",), seeds=2, minutes=1)
    runs = one_demo.plan(profile, ("ood_batch_fraction=0.5",))
    assert all(r.overrides[-1] == "ood_batch_fraction=0.5" and r.name.endswith("_ood_batch_fraction0.5")
               for r in runs)  # fmt: skip
    assert "--set" in (cmd := one_demo.command(runs[0], Path("demo.npz"), tmp_path, 1, images=False))
    assert cmd[cmd.index("ood_batch_fraction=0.5") - 1] == "--set"
    one_demo.check_overrides(runs)
    for bad in ("no_such_field=1", "ood_batch_fraction", "ood_batch_fraction=lots"):
        with pytest.raises(SystemExit):
            one_demo.check_overrides(one_demo.plan(profile, (bad,)))
