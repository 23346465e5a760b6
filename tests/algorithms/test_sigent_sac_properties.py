"""SigEnt-SAC's equations hold as the paper states them (Eqs. 1, 3-9)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from common.specs import ArraySpec, BoundedSpec, RobotSpec
from common.types import Batch
from learner.reward_shaping import STEP_BIAS, shaped_reward
from learner.algorithms.sigent_sac import (
    SigEntSAC,
    SigEntSACConfig,
    cql_regularizer,
    check_bonus_bound,
    gated_bc_loss,
    mc_floor,
    sigent_target,
    sigmoid_bounded_entropy,
)

SPEC = RobotSpec("toy", {"state": ArraySpec("state", (5,))}, BoundedSpec("action", (3,), "float32", -1.0, 1.0), 10)
finite = st.floats(-50, 50, allow_nan=False, width=32)


@settings(max_examples=200, deadline=None)
@given(st.lists(finite, min_size=3, max_size=3), st.floats(0.1, 5), finite, st.floats(0.1, 5))
def test_h_sig_is_bounded_by_zero_and_d_times_h_max(log_probs, h_max, m, t):
    h = sigmoid_bounded_entropy(torch.tensor(log_probs), h_max, m, t)
    assert 0.0 <= float(h) <= 3 * h_max + 1e-5


def test_h_sig_is_half_of_its_maximum_where_surprisal_equals_m():
    m = SigEntSACConfig().surprisal_midpoint
    h = sigmoid_bounded_entropy(torch.full((4, 3), -m), h_max=0.7, m=m, t=1.3)
    assert torch.allclose(h, torch.full((4,), 3 * 0.7 / 2))


def test_midpoint_matches_a_gaussian_of_the_target_std():
    config = SigEntSACConfig(target_std=0.05)
    samples = torch.randn(200_000) * 0.05
    empirical_surprisal = -torch.distributions.Normal(0.0, 0.05).log_prob(samples).mean()
    assert abs(config.surprisal_midpoint - float(empirical_surprisal)) < 0.01


@settings(max_examples=200, deadline=None)
@given(st.floats(-1, 0), st.booleans(), finite, st.lists(finite, min_size=2, max_size=2), st.floats(0, 1))
def test_target_is_never_below_the_plain_bootstrap(reward, terminated, next_q, log_probs, alpha):
    h_sig = sigmoid_bounded_entropy(torch.tensor(log_probs), 1.0, -1.0, 1.0)
    d = torch.tensor(float(terminated))
    y = sigent_target(torch.tensor(reward), d, torch.tensor(next_q), h_sig, alpha, 0.99)
    assert float(y) >= reward + 0.99 * (1 - float(d)) * next_q - 1e-4
    if terminated:
        assert float(y) == pytest.approx(reward)


def test_cql_term_with_the_data_action_inside_is_never_negative():
    torch.manual_seed(0)
    for _ in range(50):
        q_sampled, q_data = torch.randn(2, 8, 32) * 10, torch.randn(2, 32) * 10
        assert float(cql_regularizer(q_sampled, q_data)) >= 0.0


def test_cql_term_pushes_sampled_values_down_and_the_data_value_up():
    q_sampled = torch.zeros(2, 4, 3, requires_grad=True)
    q_data = torch.zeros(2, 3, requires_grad=True)
    cql_regularizer(q_sampled, q_data).backward()
    assert torch.all(q_sampled.grad > 0) and torch.all(q_data.grad < 0)


def test_gate_is_closed_inside_the_epsilon_ball_with_zero_gradient():
    expert = torch.tensor([[0.5, 0.5, 0.5], [0.5, 0.5, 0.5]])
    mean = torch.tensor([[0.55, 0.45, 0.5], [0.9, 0.1, 0.5]], requires_grad=True)  # row 0 inside eps=0.1
    loss, gate = gated_bc_loss(mean, expert, torch.ones(2), epsilon=0.1)
    loss.backward()
    assert gate.tolist() == [0.0, 1.0]
    assert torch.all(mean.grad[0] == 0) and torch.any(mean.grad[1] != 0)
    assert not gate.requires_grad


def test_only_expert_rows_contribute_to_behaviour_cloning():
    expert = torch.zeros(4, 3)
    mean = torch.ones(4, 3, requires_grad=True)
    is_expert = torch.tensor([1.0, 0.0, 1.0, 0.0])
    loss, gate = gated_bc_loss(mean, expert, is_expert, epsilon=0.1)
    loss.backward()
    assert gate.tolist() == [1.0, 0.0, 1.0, 0.0]
    assert float(loss.detach()) == pytest.approx(1.0)  # mean over the two expert rows of (1/d)||1 - 0||^2
    assert torch.all(mean.grad[[1, 3]] == 0)


def make_batch(size: int = 64, seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    return Batch(
        observation={"state": torch.randn(size, 5, generator=g)},
        action=torch.rand(size, 3, generator=g) * 2 - 1,
        reward=(torch.rand(size, generator=g) > 0.9).float(),
        terminated=(torch.rand(size, generator=g) > 0.9).float(),
        next_observation={"state": torch.randn(size, 5, generator=g)},
        is_demo=(torch.arange(size) % 2 == 0).float(),
    )


def test_bc_pulls_the_policy_mean_to_the_expert_action():
    config = SigEntSACConfig(batch_size=64, bc_weight=50.0, ood_weight=0.0, alpha=0.0, actor_lr=1e-3)
    algorithm = SigEntSAC(config, SPEC, torch.device("cpu"), seed=0)
    batch = make_batch()
    batch.action = torch.full_like(batch.action, 0.6)
    errors = []
    for _ in range(150):
        metrics = algorithm.update(batch)
        errors.append(metrics["bc_loss"])
    assert errors[-1] < 0.25 * errors[0]
    assert metrics["gate_open_fraction"] < 1.0  # some expert rows reached the epsilon ball


def test_fixed_seed_runs_are_identical():
    def run() -> list[float]:
        algorithm = SigEntSAC(SigEntSACConfig(batch_size=32), SPEC, torch.device("cpu"), seed=3)
        return [algorithm.update(make_batch(32, seed=i))["critic_loss"] for i in range(5)]

    assert run() == run()


def test_under_the_shaped_reward_finishing_beats_collecting_the_bonus_forever():
    config = SigEntSACConfig()
    per_step_bonus_max = config.alpha * SPEC.action_dim * config.h_max
    never_finish = (STEP_BIAS + config.gamma * per_step_bonus_max) / (1 - config.gamma)
    finish_now = float(shaped_reward(np.array([1.0]), np.array([True]))[0])
    assert finish_now == 0.0 and never_finish < finish_now
    assert math.isclose(config.surprisal_midpoint, 0.5 * math.log(2 * math.pi * math.e * 0.01))


@pytest.mark.parametrize("alpha, h_max, action_dim", [(0.05, 1.0, 20), (0.5, 1.0, 2), (0.1, 4.0, 3)])
def test_the_bonus_bound_is_checked_at_construction_with_the_values_and_the_fix(alpha, h_max, action_dim):
    config = SigEntSACConfig(alpha=alpha, h_max=h_max)
    spec = RobotSpec("toy", {"state": ArraySpec("state", (5,))},
                     BoundedSpec("action", (action_dim,), "float32", -1.0, 1.0), 10)  # fmt: skip
    with pytest.raises(ValueError, match=r"alpha \* d \* h_max < 1") as error:
        SigEntSAC(config, spec, torch.device("cpu"))
    message = str(error.value)
    assert f"d={action_dim}" in message and f"alpha={alpha}" in message and "Lower alpha below" in message
    check_bonus_bound(SigEntSACConfig(alpha=0.99 / (action_dim * h_max), h_max=h_max), action_dim)  # just inside


def test_mc_lower_bound_floors_the_target_by_the_return_and_is_off_by_default():
    assert not SigEntSACConfig().mc_lower_bound and not SigEntSAC(SigEntSACConfig(), SPEC, "cpu").sampling.returns_to_go
    assert mc_floor(torch.tensor([-5.0, -1.0]), torch.tensor([-2.0, -3.0])).tolist() == [-2.0, -1.0]
    config = SigEntSACConfig(batch_size=32, mc_lower_bound=True)
    assert SigEntSAC(config, SPEC, "cpu").sampling.returns_to_go
    low, high = make_batch(32), make_batch(32)
    low.extras["mc_return"], high.extras["mc_return"] = torch.full((32,), -1e6), torch.full((32,), 50.0)
    target_low = SigEntSAC(config, SPEC, torch.device("cpu"), seed=2).update(low)["target_q_mean"]
    target_high = SigEntSAC(config, SPEC, torch.device("cpu"), seed=2).update(high)["target_q_mean"]
    plain = SigEntSAC(SigEntSACConfig(batch_size=32), SPEC, torch.device("cpu"), seed=2).update(make_batch(32))
    assert target_low == pytest.approx(plain["target_q_mean"]) and target_high == pytest.approx(50.0)
    with pytest.raises(KeyError, match="mc_return"):
        SigEntSAC(config, SPEC, torch.device("cpu")).update(make_batch(32))


@pytest.mark.parametrize("n", [1, 3])
def test_eq7_sample_count_n_sets_the_number_of_proposals(n):
    algorithm = SigEntSAC(SigEntSACConfig(batch_size=8, ood_actions=n), SPEC, torch.device("cpu"), seed=0)
    features = torch.randn(8, algorithm.nets.encoder.out_dim)
    proposals = algorithm._ood_proposals(torch.zeros(8, 3), torch.zeros(8, 3), features, features)
    assert proposals.shape == (2 * n, 8, 3)


@pytest.mark.parametrize("fraction, expected", [(1.0, list(range(8))), (0.5, [0, 2, 5, 7]), (0.25, [0, 7])])
def test_ood_rows_are_spread_over_demo_and_online_rows(fraction, expected):
    """Demo rows come first in a batch, so a prefix would regularise demo states only."""
    algorithm = SigEntSAC(SigEntSACConfig(batch_size=8, ood_batch_fraction=fraction), SPEC, torch.device("cpu"))
    assert algorithm._ood_rows(8).tolist() == expected


def test_one_critic_pass_scores_data_and_proposals_like_separate_passes():
    algorithm = SigEntSAC(SigEntSACConfig(batch_size=6), SPEC, torch.device("cpu"), seed=1)
    features, action = torch.randn(6, algorithm.nets.encoder.out_dim), torch.rand(6, SPEC.action_dim) * 2 - 1
    rows, proposals = torch.tensor([1, 4]), torch.rand(2, 2, SPEC.action_dim) * 2 - 1
    q_data, q_sampled = algorithm._q_data_and_sampled(features, action, rows, proposals)
    assert torch.allclose(q_data, algorithm.nets.critic(features, action), atol=1e-6)
    for k in range(2):
        assert torch.allclose(q_sampled[:, k], algorithm.nets.critic(features[rows], proposals[k]), atol=1e-6)


@pytest.mark.timeout(60)
def test_the_learner_cli_refuses_a_bonus_over_the_bound_before_it_listens(tmp_path):
    from click.testing import CliRunner

    from learner.__main__ import train

    demo = Path(__file__).resolve().parents[2] / "robots" / "sim" / "demos" / "limo_ball_to_goal.npz"  # d = 2
    args = ["--demo", str(demo), "--set", "alpha=0.6", "--metrics-port", "0", "--run-dir", str(tmp_path)]
    result = CliRunner().invoke(train, args)
    assert result.exit_code == 2 and "alpha=0.6 * d=2 * h_max=1.0 = 1.2" in result.output, result.output
