"""`learner pretrain`: an algorithm's offline stages on the bundled demo, saved as a policy file others load."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from actor.policy import load_saved_policy
from common.episodes import load_episodes
from learner.algorithms import make_algorithm
from learner.pretrain import pretrain_command
from benchmarks.one_demo import bundled_demo

pytestmark = pytest.mark.timeout(120)
DEMO = bundled_demo("ball_to_goal", images=False)
SMALL = ("--set", "hidden_dims=64,64", "--set", "batch_size=32")


def run(*args: str):
    return CliRunner().invoke(pretrain_command, ["--demo", str(DEMO), *args], catch_exceptions=False)


def demo_error(path, spec, columns) -> float:
    """Mean |policy action - demo action| of the saved policy's mode over the demo's observations."""
    policy, _ = load_saved_policy(str(path), spec)
    states = columns["observation/state"]
    actions = np.stack([policy.act({"state": s}, deterministic=True) for s in states])
    return float(np.abs(actions - columns["action"]).mean())


def test_the_saved_bc_policy_fits_the_demo_better_than_the_untrained_one_and_the_actor_loads_it(tmp_path):
    spec, columns = load_episodes(DEMO)
    errors = {}
    for updates in (0, 400):
        out = tmp_path / f"bc{updates}.npz"
        result = run("--algo", "q2rl", "--policy", "bc", "--out", str(out), "--set", f"bc_updates={updates}", *SMALL)
        assert result.exit_code == 0, result.output
        errors[updates] = demo_error(out, spec, columns)
    assert errors[400] < 0.5 * errors[0], errors


def test_aloes_bc_chunk_policy_becomes_csil_pp_s_frozen_base(tmp_path):
    out = tmp_path / "aloe_bc.npz"
    result = run("--algo", "aloe", "--out", str(out), "--set", "offline_updates=20", *SMALL)
    assert result.exit_code == 0, result.output
    spec, _ = load_episodes(DEMO)
    csil_pp = make_algorithm("csil_pp", spec, {"base_policy": str(out), "hidden_dims": "32,32"}, torch.device("cpu"))
    program, settings = csil_pp.policy_program()
    assert program == "ensembled" and csil_pp.base.chunk_length == 10 and settings["every"] == 10


@pytest.mark.parametrize("args, says", [
    (["--algo", "sac"], "sac has no offline stage"),
    (["--algo", "nope"], "unknown algorithm 'nope'"),
    (["--algo", "q2rl", "--policy", "nope"], "Q2RL has no policy 'nope'"),
    (["--algo", "aloe", "--set", "bogus=1"], "unknown aloe config field"),
])  # fmt: skip
def test_a_request_that_cannot_be_pretrained_is_refused_in_one_line(tmp_path, args, says):
    result = CliRunner().invoke(pretrain_command, ["--demo", str(DEMO), "--out", str(tmp_path / "x"), *args])
    assert result.exit_code == 2 and says in result.output, result.output
    assert not (tmp_path / "x").exists()
