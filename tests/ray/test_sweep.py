"""`benchmarks.one_demo --ray`: a sweep's runs as Ray tasks on a real two-node cluster, merged into the table."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import one_demo

pytestmark = pytest.mark.timeout(240)

# Two tiny real runs: a learner with its paced LIMO training actor and evaluator, capped at 40 updates.
TINY = ["--profile", "comparison", "--tasks", "ball_to_goal", "--seeds", "1", "--max-updates", "40",
        "--final-eval", "0", "--minutes", "1"]  # fmt: skip


def sweep(cluster, out: Path, algos: str, *extra: str) -> int:
    return one_demo.main([*TINY, "--algos", algos, "--out", str(out), "--ray", cluster.address,
                          "--ray-scratch", str(out.parent / "node_scratch"), *extra])  # fmt: skip


def run_info(out: Path, algo: str) -> dict:
    return json.loads((out / f"ball_to_goal_{algo}_original_s0" / "run_info.json").read_text())


def results_algos(out: Path) -> list[str]:
    with (out / "results.csv").open() as handle:
        return [row["algo"] for row in csv.DictReader(handle)]


def test_a_sweep_runs_each_run_as_a_ray_task_and_merges_the_table(ray_cluster, tmp_path, capsys):
    import ray

    out = tmp_path / "out"
    assert sweep(ray_cluster, out, "sac,sigent_sac") == 0
    node_ids = {node["NodeID"] for node in ray.nodes() if node["Alive"]}
    for algo in ("sac", "sigent_sac"):
        run_dir = out / f"ball_to_goal_{algo}_original_s0"
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["updates"] == 40, "the run trained to its cap on its node"
        assert (run_dir / "episodes.csv").stat().st_size > 0 and (run_dir / "learner.log").exists()
        assert not (run_dir / "replay").exists() and not (run_dir / "checkpoints").exists(), "those stay on the node"
        info = run_info(out, algo)
        assert info["pid"] != os.getpid() and info["ray"]["worker_pid"] == info["pid"], "run by a Ray worker"
        assert info["ray"]["node_id"] in node_ids and info["ray"]["resources"]["CPU"] == 2.0
        assert "--parent-pid" in info["command"], "the learner dies with its task's worker"
        assert (Path(info["ray"]["scratch"]) / "replay").is_dir(), "replay kept in the node's scratch"
        assert "ignored SIGINT" not in (run_dir / "learner.log").read_text(), "its actors stopped when asked"
    assert results_algos(out) == ["sac", "sigent_sac"], "in plan order, as a local sweep"
    summary_md = (out / "summary.md").read_text()
    assert "| ball_to_goal | sac |" in summary_md and "| ball_to_goal | sigent_sac |" in summary_md
    printed = capsys.readouterr()
    assert "2/2" in printed.err, "the progress bar counted both runs"
    assert "ball_to_goal sac s0 original" in printed.out, "each run's one-line result"


def test_keep_finished_submits_only_the_missing_runs(ray_cluster, tmp_path):
    out = tmp_path / "out"
    run_dir = out / "ball_to_goal_sac_original_s0"  # finished: what --keep-finished recognises
    run_dir.mkdir(parents=True)
    rows = ["wall_s,env_steps,actor_id,evaluation,success,steps,policy_version", "0,100,t,0,0,100,1"]
    rows += ["0,130,e,1,1,30,2"] * one_demo.EVAL_EPISODES
    (run_dir / "episodes.csv").write_text("\n".join(rows) + "\n")
    (run_dir / "summary.json").write_text('{"total_time_s": 60, "interrupted": false, "updates": 40}')
    (run_dir / "run_info.json").write_text('{"made_by": "this test"}')
    # The missing run only has to be submitted: a 1 s budget (its learner still writes every file) keeps it short.
    assert sweep(ray_cluster, out, "sac,sigent_sac", "--keep-finished", "--minutes", "0.02") == 0
    assert run_info(out, "sac") == {"made_by": "this test"}, "the finished run was read, not trained again"
    assert "ray" in run_info(out, "sigent_sac"), "the missing run was submitted to the cluster"
    assert results_algos(out) == ["sac", "sigent_sac"]


def test_a_failing_task_is_reported_by_name_and_the_sweep_goes_on(ray_cluster, tmp_path, capsys):
    from deploy.ray.sweep import run_sweep

    profile = one_demo.PROFILES["comparison"]
    runs = [one_demo.RunSpec(task, "sac", 0, "original") for task in ("no_such_task", "nor_this_one")]
    assert run_sweep(runs, tmp_path, profile, ray_cluster.address, scratch=str(tmp_path / "scratch")) == {}
    printed = capsys.readouterr()
    for run in runs:
        assert f"{run.name}: failed on Ray: RayTaskError" in printed.out and f"KeyError: '{run.task}'" in printed.out
    assert "2/2" in printed.err


def blocked_in_a_child() -> tuple[list[int], list[int]]:
    """SIGINT blocked in a process started by this Ray task: (a plain child, one that called exit_with_parent)."""
    probe = "import signal; print(*map(int, signal.pthread_sigmask(signal.SIG_BLOCK, [])))"
    tied = "import os; from common.lifetime import exit_with_parent; exit_with_parent(os.getppid()); " + probe
    masks = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
             for code in (probe, tied)]  # fmt: skip
    return [int(s) for s in masks[0]], [int(s) for s in masks[1]]


def test_a_learner_or_actor_started_under_ray_can_be_interrupted(ray_cluster):
    """Ray blocks SIGINT in task threads and children inherit the mask; the learner's and actors' --parent-pid
    (exit_with_parent) unblocks it: their death signal and their stop are SIGINT."""
    import signal

    import ray

    without, tied = ray.get(ray.remote(blocked_in_a_child).remote())
    assert signal.SIGINT in without, "Ray's mask reaches a task's children (else this test checks nothing)"
    assert signal.SIGINT not in tied


def test_collect_leaves_replay_and_checkpoints_and_unpack_replaces_stale_report_files(tmp_path):
    from deploy.ray.sweep import collect, unpack

    node = tmp_path / "node"
    for name in ("summary.json", "logs/actor.log", "replay/seg_0.npz", "checkpoints/c/state.pt"):
        (node / name).parent.mkdir(parents=True, exist_ok=True)
        (node / name).write_bytes(name.encode())
    files, too_big = collect(node)
    assert files == {"summary.json": b"summary.json", "logs/actor.log": b"logs/actor.log"} and too_big == []
    driver = tmp_path / "driver"
    driver.mkdir()
    (driver / "episodes.csv").write_text("from an earlier attempt")
    (driver / "notes.txt").write_text("the user's")
    unpack(files, driver)
    assert not (driver / "episodes.csv").exists(), "a stale report file is never read as this run's"
    assert (driver / "notes.txt").exists() and (driver / "logs" / "actor.log").read_bytes() == b"logs/actor.log"
    for bad in ("../escape.txt", "/etc/escape.txt"):
        with pytest.raises(ValueError):
            unpack({bad: b""}, driver)
    assert not (tmp_path / "escape.txt").exists()


def test_gpus_default_to_one_per_run_only_on_a_cluster_with_gpus_and_a_need_no_node_meets_is_refused():
    from deploy.ray.sweep import check_fits, default_gpus_per_run

    assert default_gpus_per_run({"CPU": 8.0}) == 0 and default_gpus_per_run({"CPU": 8.0, "GPU": 2.0}) == 1
    nodes = [{"Resources": {"CPU": 4.0}}, {"Resources": {"CPU": 2.0, "GPU": 1.0}}]
    check_fits(4, 0, nodes)
    check_fits(2, 0.5, nodes)
    for cpus, gpus in ((8, 0), (4, 1)):  # more CPUs than any node; a GPU only on a node with too few CPUs
        with pytest.raises(SystemExit, match="no Ray node offers"):
            check_fits(cpus, gpus, nodes)


def test_a_local_sweep_never_imports_ray():
    """Only --ray loads deploy.ray (and ray): a local sweep runs without ray installed."""
    code = "import sys, benchmarks.one_demo; print(sorted(m for m in sys.modules if m.startswith(('ray', 'deploy'))))"
    done = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2], capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
