"""`learner --launcher ray`: what the driver passes on to the learner process, and what it refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.ray.run import check_fleet_specs, learner_argv
from learner.launch import fleet_processes, parse_fleet

LIMO_DEMO = Path(__file__).resolve().parents[2] / "robots" / "sim" / "demos" / "limo_ball_to_goal.npz"


def test_driver_options_are_dropped_and_the_demo_made_absolute():
    argv = ["--launcher", "ray", "--ray-address=10.0.0.1:6379", "--algo", "sac", "--fleet", "limo_sim=4",
            "--actor-arg=--time-scale", "--actor-arg", "4", "--run-dir", "runs/x", "--port=6000", "--demo",
            "demos/d.npz", "--set", "utd=1", "--max-restarts", "3", "--actor-cpus=0.5", "--keys", "k", "--bind",
            "0.0.0.0", "--max-updates", "100"]  # fmt: skip
    assert learner_argv(argv) == ["--algo", "sac", "--demo", str(Path("demos/d.npz").absolute()), "--set", "utd=1",
                                  "--max-updates", "100"]  # fmt: skip


@pytest.mark.parametrize("option", ["--local-actor=limo_sim", "--eval-actor", "--insecure"])
def test_options_that_do_not_go_with_ray_are_refused_by_name(option):
    with pytest.raises(ValueError, match=option.split("=")[0]):
        learner_argv(["--algo", "sac", option])


def test_one_learner_trains_one_spec():
    check_fleet_specs(["limo_sim", "limo_sim"], str(LIMO_DEMO))  # the twin and its demo agree
    with pytest.raises(ValueError, match="one learner trains one robot spec: go2_sim"):
        check_fleet_specs(["limo_sim", "go2_sim"], "")
    with pytest.raises(ValueError, match="the demo"):
        check_fleet_specs(["fake"], str(LIMO_DEMO))


def test_fleet_groups_name_their_actors_per_robot():
    names = [p.actor_id for p in fleet_processes(["fake=2", "limo_sim", "fake=1"], ["--seed", "3"])]
    assert names == ["fake-0", "fake-1", "limo_sim-0", "fake-2"]
    assert fleet_processes(["fake"], ["--seed", "3"])[0].args == ("--seed", "3")
    for bad in ("fake=0", "fake=x", "=2", "fake=-1"):
        with pytest.raises(ValueError, match="ROBOT=N"):
            parse_fleet([bad])
