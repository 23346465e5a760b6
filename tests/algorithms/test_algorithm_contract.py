"""The Algorithm contract, checked for every registered algorithm on state and image observations."""

from __future__ import annotations

import copy
import dataclasses
import io
import json
import math

import numpy as np
import pytest
import torch
from algorithm_fixtures import demo_batch, image_spec, random_batch, random_observation, state_spec

import tests.stage_fixture  # noqa: F401 - registers an algorithm with offline, rollouts and online stages
from learner.algorithms import ALGORITHMS, Algorithm, SamplingSpec, config_docs, make_algorithm
from learner.algorithms.base import STAGE_KINDS
from learner.stages import check_stages

NAMES = ALGORITHMS.names()


def flat_tensors(state, prefix: str = "") -> dict[str, torch.Tensor]:
    """Every tensor inside a nested state dict, keyed by its path."""
    found = {}
    if isinstance(state, torch.Tensor):
        found[prefix] = state
    elif isinstance(state, dict):
        for key, value in state.items():
            found.update(flat_tensors(value, f"{prefix}/{key}"))
    elif isinstance(state, (list, tuple)):
        for index, value in enumerate(state):
            found.update(flat_tensors(value, f"{prefix}/{index}"))
    return found


@pytest.fixture(params=NAMES)
def name(request) -> str:
    return request.param


def test_at_least_sac_is_registered():
    assert "sac" in NAMES


def test_every_config_field_has_a_one_line_doc(name):
    config_cls = ALGORITHMS.get(name).Config
    docs = config_docs(config_cls)
    for field in dataclasses.fields(config_cls):
        assert docs.get(field.name), f"{name}.{field.name} has no docstring"
        assert "\n" not in docs[field.name]


def batch_for(algorithm: Algorithm, size: int = 32, seed: int = 0):
    """A random batch shaped as the algorithm samples: transitions, or h-step sequences (e.g. ALOE's chunks)."""
    return random_batch(algorithm.spec, size, seed, algorithm.sampling.horizon)


def test_sampling_is_a_valid_spec(name, spec):
    sampling = make_algorithm(name, spec).sampling
    assert isinstance(sampling, SamplingSpec) and sampling.batch_size > 0 and sampling.horizon >= 1


def test_update_returns_finite_floats_and_changes_parameters(name, spec):
    algorithm = make_algorithm(name, spec, device="cpu", seed=0)
    before = {k: v.clone() for k, v in flat_tensors(algorithm.state_dict()).items()}
    policy_before = algorithm.policy_state_dict()
    metrics = algorithm.update(batch_for(algorithm))
    assert metrics and all(isinstance(v, float) and math.isfinite(v) for v in metrics.values()), metrics
    after = flat_tensors(algorithm.state_dict())
    changed = [k for k in before if k in after and not torch.equal(before[k], after[k])]
    # Something beyond the policy (critics, encoder, temperature, optimiser moments) must move too.
    assert any("policy" not in k for k in changed), changed
    policy_after = algorithm.policy_state_dict()
    assert any(not torch.equal(policy_before[k], policy_after[k]) for k in policy_before)


def test_policy_state_dict_loads_strictly_into_make_policy_and_acts_in_range(name, spec):
    algorithm = make_algorithm(name, spec, device="cpu", seed=0)
    algorithm.update(batch_for(algorithm))
    weights = algorithm.policy_state_dict()
    policy = type(algorithm).make_policy(algorithm.config, spec)
    policy.load_state_dict(weights, strict=True)
    observation = random_observation(spec, 16, np.random.default_rng(5))
    deterministic = policy.act(observation, deterministic=True)
    stochastic = policy.act(observation, deterministic=False)
    assert deterministic.shape == stochastic.shape == (16, spec.action_dim)
    assert deterministic.abs().max() <= 1 and stochastic.abs().max() <= 1
    torch.testing.assert_close(policy.act(observation, deterministic=True), deterministic, rtol=0, atol=0)
    # A copy: further updates must not reach into weights already handed to an actor.
    snapshot = {k: v.clone() for k, v in weights.items()}
    algorithm.update(batch_for(algorithm, seed=1))
    assert all(torch.equal(weights[k], snapshot[k]) for k in weights)


def test_state_dict_round_trip_resumes_bit_identically(name, spec):
    original = make_algorithm(name, spec, device="cpu", seed=0)
    for seed in range(2):
        original.update(batch_for(original, seed=seed))
    # Through bytes, as a checkpoint would go; weights_only proves no pickled objects are needed.
    buffer = io.BytesIO()
    torch.save(original.state_dict(), buffer)
    buffer.seek(0)
    resumed: Algorithm = make_algorithm(name, spec, device="cpu", seed=123)
    resumed.load_state_dict(torch.load(buffer, weights_only=True))
    for seed in (7, 8):
        batch = batch_for(original, seed=seed)
        assert original.update(batch) == resumed.update(copy.deepcopy(batch))
    a, b = flat_tensors(original.state_dict()), flat_tensors(resumed.state_dict())
    assert a.keys() == b.keys()
    assert [k for k in a if not torch.equal(a[k], b[k])] == []


def test_same_seed_same_initial_policy_different_seed_different(name):
    from algorithm_fixtures import state_spec

    spec = state_spec()
    first, second, other = (make_algorithm(name, spec, seed=s).policy_state_dict() for s in (0, 0, 1))
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert any(not torch.equal(first[k], other[k]) for k in first)


def test_building_an_algorithm_leaves_the_global_torch_rng_alone(name):
    from algorithm_fixtures import state_spec

    torch.manual_seed(42)
    expected = torch.rand(3)
    torch.manual_seed(42)
    make_algorithm(name, state_spec(), seed=0)
    assert torch.equal(torch.rand(3), expected)


def test_fixed_seed_short_runs_are_identical(name):
    def run() -> list[dict[str, float]]:
        algorithm = make_algorithm(name, state_spec(), {"batch_size": 16}, seed=3)
        return [algorithm.update(batch_for(algorithm, 16, seed=i)) for i in range(3)]

    assert run() == run()


def test_images_train_the_shared_encoder_through_the_critic_only(name):
    """The actor (and IQL's value net) see the encoder's features detached; the critic loss trains it."""
    algorithm = make_algorithm(name, image_spec(), {"batch_size": 8}, seed=0)
    nets = algorithm.nets
    assert nets.policy.encoder is nets.encoder, "the actor's encoder must be the critic's"
    seen = []
    distribution = nets.policy.distribution
    nets.policy.distribution = lambda features: seen.append(features.requires_grad) or distribution(features)
    before = [p.detach().clone() for p in nets.encoder.parameters()]
    algorithm.update(batch_for(algorithm, 8))
    assert seen and not any(seen), "a policy head received features that carry gradient into the encoder"
    assert any(not torch.equal(a, b) for a, b in zip(before, nets.encoder.parameters()))


def test_images_enter_the_convolutions_channels_last_without_a_copy():
    from learner.networks.encoders import ConvEncoder

    encoder, seen = ConvEncoder((16, 16, 3), feature_dim=8), []  # 3 channels: with 1 both layouts coincide
    encoder.convs[0].register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    encoder(torch.zeros(2, 16, 16, 3, dtype=torch.uint8))
    assert seen[0].is_contiguous(memory_format=torch.channels_last)


# ---- training stages and named policies (the fixture algorithm has all three stage kinds) ---------------


def test_stages_are_valid_kinds_uniquely_named_and_end_online(name):
    stages = make_algorithm(name, state_spec()).stages()
    check_stages(stages, name)
    assert all(stage.kind in STAGE_KINDS and stage.length >= 0 for stage in stages)


def test_offline_stages_take_offline_updates_on_a_demo_batch(name, spec):
    algorithm = make_algorithm(name, spec, {"batch_size": 16}, seed=0)
    for stage in (s for s in algorithm.stages() if s.kind == "offline"):
        sampling = stage.sampling or dataclasses.replace(algorithm.sampling, demo_ratio=1.0)
        for seed in range(2):
            metrics = algorithm.offline_update(stage.name, demo_batch(algorithm, sampling, seed))
            assert all(isinstance(v, float) and math.isfinite(v) for v in metrics.values()), (stage.name, metrics)
        algorithm.end_stage(stage.name)


def test_every_named_policy_builds_loads_strictly_and_acts_in_range(name, spec):
    algorithm = make_algorithm(name, spec, device="cpu", seed=0)
    policies = {"online"} | {stage.policy for stage in algorithm.stages() if stage.kind == "rollouts"}
    for policy in sorted(policies):
        module = type(algorithm).make_named_policy(algorithm.config, spec, policy)
        module.load_state_dict(algorithm.named_policy_state_dict(policy), strict=True)
        actions = module.act(random_observation(spec, 4, np.random.default_rng(0)), deterministic=True)
        assert actions.shape == (4, spec.action_dim) and actions.abs().max() <= 1, policy
        program, settings = algorithm.policy_program(policy)
        assert isinstance(program, str) and program and json.loads(json.dumps(settings)) == settings, policy
