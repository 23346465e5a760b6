"""Properties of the paper's baselines: RLPD, CQL, Cal-QL (and its Monte-Carlo returns), AWAC, IQL."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from algorithm_fixtures import random_batch, state_spec

from common.types import transition_columns
from learner.algorithms import make_algorithm
from learner.algorithms.awac import advantage_weights, weighted_regression_loss
from learner.algorithms.cql import calibrate, cql_regularizer
from learner.algorithms.iql import expectile_loss
from learner.algorithms.rewards import monte_carlo_returns
from learner.replay.buffer import ReplayBuffer

SPEC = state_spec(obs_dim=5, action_dim=3)


# --- RLPD ----------------------------------------------------------------------------------------------


def test_rlpd_batches_are_exactly_half_demonstration():
    rlpd = make_algorithm("rlpd", SPEC)
    replay = ReplayBuffer(SPEC, capacity=1000)
    rng = np.random.default_rng(0)
    for add, rows in ((replay.add_demo, 37), (replay.add_online, 500)):
        columns = {name: np.zeros((rows, *s.shape), s.dtype) for name, s in transition_columns(SPEC).items()}
        add(columns, "a1")
    for _ in range(5):
        batch = replay.sample(rlpd.sampling, rng)
        assert batch.is_demo.sum() * 2 == rlpd.sampling.batch_size


def test_rlpd_is_a_ten_critic_ensemble_with_a_random_pair_in_the_target():
    rlpd = make_algorithm("rlpd", SPEC)
    assert rlpd.nets.critic.num_members == 10 and rlpd.config.critic_layer_norm
    next_q = torch.arange(10.0).view(10, 1).expand(10, 4)
    picks = {float(rlpd._target_min(next_q)[0]) for _ in range(200)}
    # The min over two distinct members can never be the largest value, and every other value occurs.
    assert picks == set(map(float, range(9)))


# --- CQL and Cal-QL ------------------------------------------------------------------------------------


def test_cql_term_pushes_the_data_value_up_and_sampled_values_down_with_unit_total_weight():
    q_uniform = torch.randn(2, 4, 6, requires_grad=True)
    q_policy = torch.randn(2, 8, 6, requires_grad=True)
    q_data = torch.randn(2, 6, requires_grad=True)
    cql_regularizer(q_uniform, q_policy, torch.randn(8, 6), q_data, action_dim=3).backward()
    batch = 6
    assert torch.allclose(q_data.grad, torch.full_like(q_data, -1.0 / batch))
    assert (q_uniform.grad >= 0).all() and (q_policy.grad >= 0).all()
    total = q_uniform.grad.sum(1) + q_policy.grad.sum(1)  # per critic and row: a softmax, times 1/B
    assert torch.allclose(total, torch.full_like(total, 1.0 / batch))


def test_cql_term_weights_uniform_actions_by_their_density():
    q = torch.zeros(1, 1, 1)
    value = cql_regularizer(q, torch.full((1, 1, 1), -1e9), torch.zeros(1, 1), torch.zeros(1, 1), action_dim=3)
    assert float(value) == pytest.approx(-3 * math.log(0.5))


def test_calibration_lower_bounds_policy_values_and_blocks_their_gradient_below_the_return():
    q_policy = torch.tensor([[[-5.0, 2.0]]], requires_grad=True)
    mc_return = torch.tensor([-1.0, -1.0])
    calibrated = calibrate(q_policy, mc_return)
    assert torch.equal(calibrated, torch.tensor([[[-1.0, 2.0]]]))
    calibrated.sum().backward()
    assert q_policy.grad.tolist() == [[[0.0, 1.0]]]


def test_cal_ql_equals_cql_when_every_return_lies_below_every_value():
    batch = random_batch(SPEC, 32, seed=1)
    batch.extras["mc_return"] = torch.full((32,), -1e6)
    cql = make_algorithm("cql", SPEC, {"batch_size": 32}, seed=4)
    cal_ql = make_algorithm("cal_ql", SPEC, {"batch_size": 32}, seed=4)
    assert cql.update(batch) == cal_ql.update(batch)


def test_cal_ql_raises_the_conservative_term_when_returns_exceed_the_values():
    low, high = random_batch(SPEC, 32, seed=1), random_batch(SPEC, 32, seed=1)
    low.extras["mc_return"], high.extras["mc_return"] = torch.full((32,), -1e6), torch.full((32,), 50.0)
    metric_low = make_algorithm("cal_ql", SPEC, {"batch_size": 32}, seed=4).update(low)["cql_loss"]
    metric_high = make_algorithm("cal_ql", SPEC, {"batch_size": 32}, seed=4).update(high)["cql_loss"]
    assert metric_high > metric_low + 40


def test_cal_ql_without_returns_fails_loudly():
    batch = random_batch(SPEC, 16)
    batch.extras.clear()
    with pytest.raises(KeyError, match="mc_return"):
        make_algorithm("cal_ql", SPEC, {"batch_size": 16}).update(batch)


def test_monte_carlo_returns_of_a_success_a_failure_and_a_timeout():
    gamma = 0.9
    success = monte_carlo_returns([0, 0, 1], [False, False, True], 1.0, -1.0, gamma)
    assert success.tolist() == pytest.approx([-1.9, -1.0, 0.0])
    timeout = monte_carlo_returns([0, 0, 0], [False, False, False], 1.0, -1.0, gamma)
    crash = monte_carlo_returns([0, 0], [False, True], 1.0, -1.0, gamma)
    assert timeout.tolist() == pytest.approx([-10.0] * 3) and crash.tolist() == pytest.approx([-10.0] * 2)


# --- AWAC and IQL --------------------------------------------------------------------------------------


def test_advantage_weights_are_positive_capped_and_carry_no_gradient():
    advantage = torch.tensor([-50.0, 0.0, 1.0, 50.0], requires_grad=True)
    weights = advantage_weights(advantage, temperature=1.0, max_weight=100.0)
    assert not weights.requires_grad
    assert weights.tolist() == pytest.approx([math.exp(-50), 1.0, math.e, 100.0])


def test_weighted_regression_raises_the_likelihood_of_replay_actions_in_proportion_to_weight():
    log_prob = torch.zeros(3, requires_grad=True)
    weighted_regression_loss(log_prob, torch.tensor([0.0, 1.0, 3.0])).backward()
    assert log_prob.grad.tolist() == pytest.approx([0.0, -1 / 3, -1.0])


@pytest.mark.parametrize("expectile", [0.5, 0.7, 0.9])
def test_expectile_loss_is_minimised_at_the_expectile(expectile):
    samples = torch.from_numpy(np.random.default_rng(0).standard_normal(4000).astype(np.float32))
    value = torch.zeros((), requires_grad=True)
    optimizer = torch.optim.Adam([value], lr=0.05)
    for _ in range(600):
        optimizer.zero_grad()
        expectile_loss(samples - value, expectile).backward()
        optimizer.step()
    # The tau-expectile v solves tau E[(x - v)+] = (1 - tau) E[(v - x)+].
    value = value.detach()
    above, below = (samples - value).clamp(min=0).mean(), (value - samples).clamp(min=0).mean()
    assert float(expectile * above) == pytest.approx(float((1 - expectile) * below), abs=2e-3)
    if expectile > 0.5:
        assert float(value) > float(samples.mean()) + 0.1


@pytest.mark.parametrize("name", ["awac", "iql"])
def test_weighted_regression_actors_clone_a_consistently_good_action(name):
    """With one fixed, well-rewarded action in every row, the policy mean moves onto it."""
    algorithm = make_algorithm(name, SPEC, {"batch_size": 64, "hidden_dims": "32,32"}, seed=0)
    batch = random_batch(SPEC, 64, seed=2)
    batch.action[:] = torch.tensor([0.6, -0.4, 0.2])
    for _ in range(300):
        algorithm.update(batch)
    mean = algorithm.nets.policy(batch.observation).deterministic_action().detach()
    assert (mean - batch.action).abs().max() < 0.15
