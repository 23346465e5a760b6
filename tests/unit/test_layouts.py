"""Episode layouts of simulated robots (learner --layouts): each training actor of a run draws its own, and the
evaluators score layouts no training actor draws."""

from __future__ import annotations

import json

import numpy as np
import pytest

from actor.app import make_robot, with_layout_seed
from benchmarks import one_demo
from benchmarks.one_demo_report import described_overrides, run_layouts
from learner.app import Learner, LearnerConfig, LocalRunConfig
from learner.launch import ActorProcess, check_layouts

LAYOUTS_DRAWN = 8


def built_robot(process: ActorProcess):
    """The robot the actor command builds: its `-o KEY=VALUE` options (the last one wins) and `--layout-seed`."""
    args = process.args
    options = dict(value.split("=", 1) for flag, value in zip(args, args[1:]) if flag == "-o")
    seed = int(args[args.index("--layout-seed") + 1]) if "--layout-seed" in args else None
    return make_robot(process.robot, with_layout_seed(process.robot, options, seed))


def start_positions(process: ActorProcess) -> set[tuple[float, ...]]:
    """The first observations of the first episodes the process's robot would run (their layouts)."""
    robot = built_robot(process)
    robot.connect()
    try:
        return {tuple(np.round(robot.task.reset(robot)["state"], 6)) for _ in range(LAYOUTS_DRAWN)}
    finally:
        robot.disconnect()


def run_processes(tmp_path, layouts: str, seed: int = 3, robot: str = "fake") -> list[ActorProcess]:
    local = LocalRunConfig(robot, ["--time-scale", "25"], fleet=[f"{robot}=2"], eval_actor=True, layouts=layouts,
                           video_every=0)  # fmt: skip
    learner = Learner(LearnerConfig(algo="sac", run_dir=str(tmp_path), seed=seed, device="cpu", local=local))
    return [*learner.local_processes(), learner.final_evaluator(20)]


@pytest.mark.parametrize("robot", ["fake", "limo_sim", "franka_sim"])  # a robot class, twin class, twin factory
def test_every_actor_of_a_run_draws_its_own_layouts_and_the_evaluators_draw_held_out_ones(tmp_path, robot):
    processes = run_processes(tmp_path, "held-out", robot=robot)
    assert [p.actor_id for p in processes] == ["train", "eval", f"{robot}-0", f"{robot}-1", "final-eval"]
    drawn = {p.actor_id: start_positions(p) for p in processes}
    for first in drawn:
        for second in drawn:
            if first < second:
                assert not drawn[first] & drawn[second], f"{first} and {second} start episodes alike"


def test_evaluators_score_the_same_layouts_in_every_run_and_training_differs_by_seed(tmp_path):
    one, other = run_processes(tmp_path / "a", "held-out", seed=0), run_processes(tmp_path / "b", "held-out", seed=1)
    by_id = [{p.actor_id: start_positions(p) for p in run} for run in (one, other)]
    assert by_id[0]["eval"] == by_id[1]["eval"] and by_id[0]["final-eval"] == by_id[1]["final-eval"]
    assert not by_id[0]["train"] & by_id[1]["train"]


def test_shared_layouts_replay_one_stream_in_every_actor(tmp_path):
    processes = run_processes(tmp_path, "shared")
    drawn = [start_positions(p) for p in processes]
    assert all(d == drawn[0] for d in drawn)  # what runs before --layouts did: evaluation on training's layouts


def test_a_real_robot_ignores_the_layout_seed_and_an_explicit_seed_option_wins():
    assert with_layout_seed("go2", {"network_interface": "eth0"}, 7) == {"network_interface": "eth0"}
    assert with_layout_seed("limo_sim", {}, 7) == {"seed": "7"}
    assert with_layout_seed("limo_sim", {"seed": "3"}, 7) == {"seed": "3"}
    assert with_layout_seed("limo_sim", {}, None) == {}


@pytest.mark.parametrize("args", [["-o", "seed=5"], ["--robot-option", "seed=5"], ["--robot-option=seed=5"]])
def test_a_seed_option_for_every_actor_is_refused_with_held_out_layouts(args):
    with pytest.raises(ValueError, match="--layouts shared"):
        LocalRunConfig("limo_sim", args)
    LocalRunConfig("limo_sim", args, layouts="shared")
    with pytest.raises(ValueError, match="--layouts is one of"):
        check_layouts("fresh", [])


def test_the_harness_passes_its_layouts_and_will_not_mix_them_in_one_sweep(tmp_path):
    run = one_demo.RunSpec("ball_to_goal", "sac", 0, "original", ())
    profile = one_demo.Profile(("ball_to_goal",), ("sac",), seeds=1, minutes=1)
    args = one_demo.command(run, tmp_path / "demo.npz", tmp_path, 1, False, profile)
    assert args[args.index("--layouts") + 1] == "held-out"
    run_dir = tmp_path / run.name
    run_dir.mkdir()
    (run_dir / "config.json").write_text(json.dumps({"local": {"robot": "limo_sim"}}))  # a run from before
    assert run_layouts(run_dir) == "shared" and described_overrides(run, run_dir) == "layouts=shared"
    with pytest.raises(SystemExit, match="--layouts shared"):
        one_demo.check_layouts_match([run], tmp_path, "held-out")
    one_demo.check_layouts_match([run], tmp_path, "shared")
    (run_dir / "config.json").write_text(json.dumps({"local": {"layouts": "held-out"}}))
    assert described_overrides(run, run_dir) == ""
