"""The demonstration files shipped in robots/sim/demos/ and the make_demo entry point."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from common.episodes import episode_bounds, load_episodes
from robots.sim import make_demo
from robots.sim.limo import make_limo_spec

DEMO_DIR = Path(make_demo.__file__).parent / "demos"
SHIPPED = {
    "limo_ball_to_goal.npz": make_limo_spec("state"),
    "limo_ball_to_goal_image64.npz": make_limo_spec("image", 64),
}


@pytest.mark.parametrize("filename", sorted(SHIPPED))
def test_shipped_demo_is_one_successful_episode(filename):
    spec, columns = load_episodes(DEMO_DIR / filename)
    assert spec.spec_hash == SHIPPED[filename].spec_hash  # still matches the twin's current spec
    assert episode_bounds(columns["episode"]) == [(0, len(columns["reward"]))]
    np.testing.assert_array_equal(columns["step"], np.arange(len(columns["reward"])))
    assert columns["reward"][-1] == 1.0 and columns["terminated"][-1]
    assert not columns["terminated"][:-1].any() and not columns["truncated"].any()
    assert np.all(columns["reward"][:-1] == 0.0)
    assert np.all(np.abs(columns["action"]) <= 1.0) and np.all(columns["policy_version"] == -1)
    assert 15 <= len(columns["reward"]) <= 60
    for key in spec.observation:  # consecutive transitions chain: next observation = following observation
        np.testing.assert_array_equal(columns["next_observation/" + key][:-1], columns["observation/" + key][1:])


def test_make_demo_writes_a_loadable_file(tmp_path):
    out = tmp_path / "demo.npz"
    make_demo.main(["--robot", "limo_sim", "--task", "ball_to_goal", "--out", str(out), "--episodes", "2",
                    "--seed", "3"], standalone_mode=False)
    spec, columns = load_episodes(out)
    bounds = episode_bounds(columns["episode"])
    assert len(bounds) == 2 and list(np.unique(columns["episode"])) == [0, 1]
    for start, stop in bounds:
        assert columns["terminated"][stop - 1] and columns["reward"][stop - 1] == 1.0
