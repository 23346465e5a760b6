"""`gymnasium.make("robots.sim.gym_envs:tandem/...")` works in a fresh process that never imported Tandem.

Gymnasium 1.x has no entry-point plugins; the `module:` prefix is how it registers a package's environments
on demand, so this is what another library's training script will type.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(120)
ROOT = Path(__file__).resolve().parents[2]
SCRIPT = """
import sys
import gymnasium
assert "robots" not in sys.modules, "Tandem was imported before make"
env = gymnasium.make("robots.sim.gym_envs:tandem/LimoBallToGoal-v0")
observation, _ = env.reset(seed=0)
observation, reward, terminated, truncated, info = env.step(env.action_space.sample())
env.close()
print(env.spec.id, env.spec.max_episode_steps, observation["state"].shape, sorted(info))
"""


def test_make_by_module_name_in_a_fresh_process():
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=100, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[0] == "tandem/LimoBallToGoal-v0 100 (10,) ['executed_action', 'success']"
