"""Each policy program run by a real actor process on the LIMO twin, against a real learner server.

The fixture algorithm (tests/algorithms/program_fixtures.py, loaded through TANDEM_PLUGINS in both
processes) names one reference network per program. The test publishes that network's weights, an
evaluation-only actor (it waits for weights, then acts deterministically) runs two episodes, and every
stored transition is checked against what the program must have done, recomputed here from the
transition's own observations with the same weights: when it re-planned, which proposal ran, the mean.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from common.protocol import Weights
from common.timing import PeriodLog
from common.types import PROPOSAL_FIRST, PROPOSAL_NONE, PROPOSAL_SECOND, split_observations
from learner.algorithms import config_from_overrides, config_to_dict
from learner.best_policy import Tally, save_weights
from learner.server import LearnerServer
from tests.algorithms.program_fixtures import PROGRAM_OF, ProgramFixture
from tests.conftest import wait_until

pytestmark = pytest.mark.timeout(240)
ROOT = Path(__file__).resolve().parents[2]
PLUGIN = "tests.algorithms.program_fixtures"
VERSION = 5


@pytest.fixture(scope="module")
def spec():
    import robots  # noqa: F401  (registers the twins)
    from robots.base import ROBOTS

    return ROBOTS.get("limo_sim")().spec


def fixture_policy(spec, policy: str) -> tuple[torch.nn.Module, Weights]:
    """The fixture's network for `policy` (seeded) and the Weights message naming its program."""
    config = config_from_overrides("program_fixture", {"hidden_dims": "32,32"})
    torch.manual_seed(3)
    module = ProgramFixture.make_named_policy(config, spec, policy).eval()
    program, settings = PROGRAM_OF[policy]
    weights = Weights(VERSION, "program_fixture", json.dumps(config_to_dict(config)), spec.spec_hash,
                      {k: v.numpy().copy() for k, v in module.state_dict().items()}, policy=policy, program=program,
                      program_config_json=json.dumps(settings))  # fmt: skip
    return module, weights


class Store:
    """Transitions the server put into replay, as concatenated columns."""

    def __init__(self) -> None:
        self.lock, self.batches = threading.Lock(), []

    def __call__(self, _actor_id: str, columns: dict) -> None:
        with self.lock:
            self.batches.append({k: np.array(v) for k, v in columns.items()})

    def columns(self) -> dict[str, np.ndarray]:
        with self.lock:
            return {k: np.concatenate([b[k] for b in self.batches]) for k in self.batches[0]} if self.batches else {}


def actor_env() -> dict[str, str]:
    paths = [str(ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {**os.environ, "TANDEM_PLUGINS": PLUGIN, "PYTHONPATH": os.pathsep.join(paths), "MUJOCO_GL": "egl"}


def run_actor(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "actor", "--robot", "limo_sim", "--episodes", "2", "--time-scale", "50",
               "--metrics-port", "0", "--no-console", *args]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=200, cwd=ROOT, env=actor_env())


def acted_episodes(spec, policy: str, port: int) -> tuple[torch.nn.Module, list[dict[str, np.ndarray]]]:
    """Run an evaluation-only actor process on the fixture's `policy`; its transitions, one dict per episode."""
    module, weights = fixture_policy(spec, policy)
    store = Store()
    server = LearnerServer("127.0.0.1", port, spec, store).start()
    try:
        server.publish(weights)
        wait_until(lambda: server.latest_version == VERSION, what="the publication")
        result = run_actor("--learner", f"127.0.0.1:{port}", "--eval-only", "--eval-episodes", "2")
        assert result.returncode == 0, result.stderr[-3000:]
        columns = wait_until(lambda: (c := store.columns()) and len(np.unique(c["episode"])) == 2 and c,
                             what="both episodes in replay")  # fmt: skip
    finally:
        server.close()
    assert np.all(columns["policy_version"] == VERSION), "every action came from the published program"
    order = np.lexsort((columns["step"], columns["episode"]))
    columns = {k: v[order] for k, v in columns.items()}
    episodes = [{k: v[columns["episode"] == e] for k, v in columns.items()} for e in np.unique(columns["episode"])]
    assert all(np.array_equal(e["step"], np.arange(len(e["step"]))) for e in episodes)
    return module, episodes


def observations(episode: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(v) for k, v in split_observations(episode, "observation/").items()}


def test_chunked_replans_every_e_steps_from_the_observation_it_replans_at(spec, port):
    module, episodes = acted_episodes(spec, "chunked", port)
    execute = PROGRAM_OF["chunked"][1]["execute"]
    for episode in episodes:
        with torch.no_grad():
            chunks = module.act_chunk(observations(episode), deterministic=True).numpy()  # one plan per step's state
        steps = np.arange(len(episode["step"]))
        expected = chunks[steps - steps % execute, steps % execute]
        assert np.allclose(episode["action"], np.clip(expected, -1, 1), atol=1e-5)
        assert not np.allclose(episode["action"], chunks[steps, 0], atol=1e-3), "re-planning every step would differ"
        assert np.all(episode["proposal"] == PROPOSAL_NONE)


def test_gated_runs_and_records_the_higher_valued_proposal(spec, port):
    module, episodes = acted_episodes(spec, "gated", port)
    ran = set()
    for episode in episodes:
        with torch.no_grad():
            observation = observations(episode)
            proposals = module.propose(observation, deterministic=True)
            values = module.value(observation, proposals).numpy()
        chosen = np.where(values[:, 1] > values[:, 0], PROPOSAL_SECOND, PROPOSAL_FIRST)
        assert np.array_equal(episode["proposal"], chosen)
        expected = proposals.numpy()[np.arange(len(chosen)), chosen]
        assert np.allclose(episode["action"], np.clip(expected, -1, 1), atol=1e-5)
        ran |= set(chosen.tolist())
    assert ran == {PROPOSAL_FIRST, PROPOSAL_SECOND}, "with these seeded weights each proposal wins somewhere"


def test_ensembled_means_the_base_chunk_replanned_every_n_steps_with_the_learned_action(spec, port):
    module, episodes = acted_episodes(spec, "ensembled", port)
    every = PROGRAM_OF["ensembled"][1]["every"]
    for episode in episodes:
        with torch.no_grad():
            observation = observations(episode)
            base_chunks = module.act_base_chunk(observation, deterministic=True).numpy()
            learned = module.act(observation, deterministic=True).numpy()
        steps = np.arange(len(episode["step"]))
        base = base_chunks[steps - steps % every, steps % every]
        assert np.allclose(episode["action"], np.clip(0.5 * (base + learned), -1, 1), atol=1e-5)
        assert np.all(episode["proposal"] == PROPOSAL_NONE)


def test_a_saved_gated_policy_runs_with_its_program_and_no_learner(spec, tmp_path):
    _, weights = fixture_policy(spec, "gated")
    save_weights(weights, tmp_path / "best_policy.npz", Tally(VERSION, 2, 2))
    result = run_actor("--policy", str(tmp_path / "best_policy.npz"), "--period-log", str(tmp_path / "ticks.f8"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 episodes" in result.stderr
    ticks = PeriodLog.read(str(tmp_path / "ticks.f8"))  # --period-log: one row per control tick, all of them
    assert len(ticks) >= 2 and np.all(ticks[:, 1] > 0) and np.all(ticks[:, 2] == VERSION)
