"""CSIL++ over a frozen base chunk policy loaded from a saved file: the actor's ensembled action is the mean of
both proposals (or their clipped sum), stays inside [-1, 1], and the learner optimises the executed action."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from algorithm_fixtures import random_batch, random_observation, state_spec

from actor.programs import make_program
from common.protocol import Weights
from learner.algorithms import config_to_dict, make_algorithm
from learner.best_policy import Tally, save_weights

pytestmark = pytest.mark.timeout(120)

SMALL = {"hidden_dims": "32,32", "critic_hidden_dims": "32,32", "stationary_width": 32, "batch_size": 32}


def saved_aloe_policy(path, spec, chunk_seconds: float = 0.4):
    """A trained-for-one-update ALOE chunk policy (h = 4 at 10 Hz) saved as a run's best_policy.npz would be."""
    aloe = make_algorithm("aloe", spec, {"chunk_seconds": chunk_seconds, "execute_seconds": 0.2,
                                         "hidden_dims": "32,32", "flow_steps": 2}, seed=4)  # fmt: skip
    aloe.update(random_batch(spec, 16, seed=0, horizon=aloe.sampling.horizon))
    tensors = {k: v.numpy() for k, v in aloe.named_policy_state_dict().items()}
    weights = Weights(3, "aloe", json.dumps(config_to_dict(aloe.config)), spec.spec_hash, tensors)
    save_weights(weights, path, Tally(3, 1, 1))
    return path, aloe


def ensembled(tmp_path, combine: str = "mean"):
    spec = state_spec()
    path, aloe = saved_aloe_policy(tmp_path / "base.npz", spec)
    algorithm = make_algorithm("csil_pp", spec, {**SMALL, "base_policy": str(path), "combine": combine}, seed=0)
    return algorithm, aloe


@pytest.mark.parametrize("combine", ["mean", "residual"])
def test_the_ensembled_action_combines_both_proposals_and_stays_in_bounds(tmp_path, combine):
    algorithm, aloe = ensembled(tmp_path, combine)
    program_name, settings = algorithm.policy_program()
    assert (program_name, settings) == ("ensembled", {"every": 4, "combine": combine})  # N = 10 capped at h = 4
    module = type(algorithm).make_named_policy(algorithm.config, algorithm.spec)
    module.load_state_dict(algorithm.named_policy_state_dict(), strict=True)
    if combine == "residual":  # push the learned policy's mode toward +-1 so the sum must be clipped
        with torch.no_grad():
            module.learned.loc.normal_(0.0, 30.0)
    program = make_program(program_name, module, algorithm.spec, 1, json.dumps(settings))
    rng = np.random.default_rng(1)
    observations = [{k: v[0].numpy() for k, v in random_observation(algorithm.spec, 1, rng).items()} for _ in range(5)]
    plan = aloe.nets.policy.act_chunk({k: torch.from_numpy(v)[None] for k, v in observations[0].items()}, True)[0]
    largest = 0.0
    for step, observation in enumerate(observations[:4]):  # one base plan, four learned actions
        learned = module.learned.act({k: torch.from_numpy(v)[None] for k, v in observation.items()}, True)[0]
        expected = 0.5 * (plan[step] + learned) if combine == "mean" else plan[step] + learned
        largest = max(largest, expected.abs().max().item())
        action = program.act(observation, deterministic=True)
        np.testing.assert_allclose(action, expected.clamp(-1, 1).numpy(), atol=1e-6)
        assert np.abs(action).max() <= 1.0
    if combine == "residual":
        assert largest > 1.0, "the residual sum left [-1, 1], so the clip was exercised"


def test_the_learner_scores_the_executed_action_and_never_trains_the_base(tmp_path):
    algorithm, aloe = ensembled(tmp_path)
    batch = random_batch(algorithm.spec, 32, seed=5)
    proposal = torch.rand(32, 2) * 2 - 1
    base_first = aloe.nets.policy.act_chunk(batch.observation, True)[:, 0]
    torch.testing.assert_close(algorithm.executed(batch.observation, proposal), 0.5 * (base_first + proposal))
    frozen = {k: v.clone() for k, v in algorithm.base.state_dict().items()}
    for seed in range(3):
        metrics = algorithm.update(random_batch(algorithm.spec, 32, seed=seed))
    assert all(np.isfinite(v) for v in metrics.values())
    assert all(torch.equal(frozen[k], v) for k, v in algorithm.base.state_dict().items())
    assert not any(p.requires_grad for p in algorithm.base.parameters())


def test_a_base_policy_for_another_robot_or_a_bad_file_is_refused_clearly(tmp_path):
    path, _ = saved_aloe_policy(tmp_path / "other.npz", state_spec(obs_dim=5))
    with pytest.raises(ValueError, match="spec"):
        make_algorithm("csil", state_spec(), {**SMALL, "base_policy": str(path)})
    (tmp_path / "junk.npz").write_bytes(b"not a policy")
    with pytest.raises(ValueError, match="not a saved Tandem policy"):
        make_algorithm("csil", state_spec(), {**SMALL, "base_policy": str(tmp_path / "junk.npz")})
