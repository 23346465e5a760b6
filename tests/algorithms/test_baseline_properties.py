"""Properties of the paper's baselines: RLPD, CQL, Cal-QL, AWAC, IQL (and the offline stages of the last four)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from algorithm_fixtures import random_batch, state_spec

from common.episodes import load_episodes
from common.specs import RobotSpec
from common.types import Batch, transition_columns
from learner.algorithms import make_algorithm
from learner.algorithms.awac import DATASET_ACTION_LIMIT, advantage_weights, dataset_log_prob, weighted_regression_loss
from learner.algorithms.cql import calibrate, cql_regularizer
from learner.algorithms.iql import expectile_loss
from learner.algorithms.rlpd import symmetric_minibatches
from learner.networks.distributions import TanhGaussian
from learner.replay.batches import to_torch
from learner.replay.buffer import ReplayBuffer, columns_to_batch
from learner.reward_shaping import apply_reward

SPEC = state_spec(obs_dim=5, action_dim=3)
DEMO = Path(__file__).resolve().parents[2] / "robots" / "sim" / "demos" / "limo_ball_to_goal.npz"


# --- RLPD ----------------------------------------------------------------------------------------------


def test_rlpd_block_minibatches_are_exactly_half_demonstration():
    rlpd = make_algorithm("rlpd", SPEC)
    replay = ReplayBuffer(SPEC, capacity=1000)
    for add, rows in ((replay.add_demo, 37), (replay.add_online, 500)):
        columns = {name: np.zeros((rows, *s.shape), s.dtype) for name, s in transition_columns(SPEC).items()}
        add(columns, "a1")
    batch = to_torch(replay.sample(rlpd.sampling, np.random.default_rng(0)), "cpu")
    assert batch.size == rlpd.config.utd * rlpd.config.batch_size == 20 * 256
    minibatches = symmetric_minibatches(batch, rlpd.config.utd)
    assert [m.size for m in minibatches] == [256] * 20
    assert all(float(m.is_demo.sum()) == 128 for m in minibatches)


def test_symmetric_minibatches_split_both_kinds_evenly_whatever_their_order():
    batch = random_batch(SPEC, 30, seed=4)
    batch.is_demo = torch.from_numpy(np.random.default_rng(1).permutation([1.0] * 12 + [0.0] * 18).astype(np.float32))
    parts = symmetric_minibatches(batch, 4)
    assert sorted(int(m.is_demo.sum()) for m in parts) == [3, 3, 3, 3]
    assert sorted(m.size for m in parts) == [7, 7, 8, 8]
    rows = torch.cat([m.reward for m in parts])
    assert sorted(rows.tolist()) == sorted(batch.reward.tolist())  # every row used exactly once


def test_rlpd_update_takes_utd_critic_steps_then_one_actor_and_temperature_step():
    rlpd = make_algorithm("rlpd", SPEC, {"batch_size": 8, "utd": 4, "hidden_dims": "16,16"}, seed=0)
    nets, steps, polyak = rlpd.nets, [], []
    optimize, soft_update = nets.optimize, nets.soft_update

    def recording_optimize(loss):  # which parameters this optimiser step moved
        optimize(loss)
        groups = {"critic": nets.critic.parameters(), "actor": nets.policy.head_parameters(), "alpha": [rlpd.log_alpha]}
        steps.append(tuple(name for name, params in groups.items() if any(p.grad is not None for p in params)))

    nets.optimize, nets.soft_update = recording_optimize, lambda tau: polyak.append(tau) or soft_update(tau)
    pairs = []
    target_min = rlpd._target_min
    rlpd._target_min = lambda next_q: pairs.append((next_q, target_min(next_q))) or pairs[-1][1]
    metrics = rlpd.update(random_batch(SPEC, rlpd.sampling.batch_size, seed=2))
    assert steps == [("critic",)] * 4 + [("actor", "alpha")] and len(polyak) == 4 and metrics["critic_steps"] == 4.0
    assert rlpd.num_updates == 1
    for next_q, chosen in pairs:  # each target is the min over some pair of the 10 target critics
        assert next_q.shape[0] == 10
        assert any(torch.equal(chosen, torch.minimum(next_q[i], next_q[j])) for i in range(10) for j in range(i))


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


def test_replay_actions_are_clipped_before_atanh_so_saturated_ones_score_finitely():
    distribution = TanhGaussian(torch.zeros(4, 2), torch.full((4, 2), -1.0))
    saturated = torch.tensor([[1.0, -1.0], [1.0, 1.0], [-1.0, 0.0], [0.3, -1.0]])
    log_prob = dataset_log_prob(distribution, saturated)
    assert torch.isfinite(log_prob).all()
    clipped = saturated.clamp(-DATASET_ACTION_LIMIT, DATASET_ACTION_LIMIT)
    assert torch.equal(log_prob, distribution.log_prob(clipped)) and DATASET_ACTION_LIMIT == 1 - 1e-5
    # Not the distribution's own last-resort clamp (1 - 1e-6), which scores every saturated entry far lower.
    assert (distribution.log_prob(saturated) < log_prob - 50).all()


@pytest.mark.parametrize("name", ["awac", "iql"])
def test_awac_and_iql_score_demo_actions_through_the_clip(name, monkeypatch):
    import learner.algorithms.awac as awac_module
    import learner.algorithms.iql as iql_module

    seen = []
    module = awac_module if name == "awac" else iql_module
    monkeypatch.setattr(module, "dataset_log_prob", lambda dist, a: seen.append(a) or dataset_log_prob(dist, a))
    batch = random_batch(SPEC, 16, seed=3)
    batch.action[:, 0] = torch.where(batch.action[:, 0] > 0, 1.0, -1.0)  # saturated, as 7.7 % of demo entries
    metrics = make_algorithm(name, SPEC, {"batch_size": 16, "hidden_dims": "16,16"}).update(batch)
    assert len(seen) == 1 and torch.equal(seen[0], batch.action) and math.isfinite(metrics["actor_loss"])


# --- offline stages ------------------------------------------------------------------------------------

OFFLINE_TO_ONLINE = ["cql", "cal_ql", "awac", "iql"]


def demo_batch(gamma: float = 0.99) -> tuple[RobotSpec, Batch]:
    """LIMO's demonstration (39 rows, shaped as the learner stores it) as one torch batch, with returns-to-go."""
    spec, columns = load_episodes(DEMO)
    columns = apply_reward("shaped", columns)
    returns, following = np.zeros(len(columns["reward"]), np.float32), 0.0
    for t in reversed(range(len(returns))):  # one complete episode
        following = columns["reward"][t] + gamma * following * (1.0 - columns["terminated"][t])
        returns[t] = following
    batch = columns_to_batch({**columns, "is_demo": np.ones(len(returns), np.float32)})
    batch.extras = {"mc_return": returns}
    return spec, to_torch(batch, "cpu")


@pytest.mark.parametrize("name", OFFLINE_TO_ONLINE)
def test_offline_to_online_baselines_declare_an_offline_stage_then_online(name):
    algorithm = make_algorithm(name, SPEC, {"offline_updates": "123"})
    stages = [(s.name, s.kind, s.length) for s in algorithm.stages()]
    assert stages == [("offline", "offline", 123), ("online", "online", 0)]
    assert [s.kind for s in make_algorithm(name, SPEC, {"offline_updates": 0}).stages()] == ["online"]
    assert make_algorithm(name, SPEC).stages()[0].length == 2000
    with pytest.raises(ValueError, match="no offline stage 'bc'"):
        algorithm.offline_update("bc", random_batch(SPEC, 8))


@pytest.mark.parametrize("name", OFFLINE_TO_ONLINE)
def test_offline_update_lowers_its_loss_on_a_fixed_demo_batch(name):
    spec, batch = demo_batch()
    algorithm = make_algorithm(name, spec, {"batch_size": batch.size, "hidden_dims": "64,64"}, seed=1)
    losses, likelihoods = [], []
    for _ in range(40):
        metrics = algorithm.offline_update("offline", batch)
        losses.append(metrics["critic_loss"] + algorithm.config.cql_weight * metrics["cql_loss"]
                      if "cql_loss" in metrics else metrics["critic_loss"])  # fmt: skip
        with torch.no_grad():
            dist = algorithm.nets.policy(batch.observation)
            likelihoods.append(float(dataset_log_prob(dist, batch.action).mean()))
    # Measured at seed 1: CQL and Cal-QL 12.6 -> 9.4 (the uniform actions' LSE falls slowly), AWAC and
    # IQL 3.4 -> 0.2; the demo actions' mean log-likelihood rises by ~0.5 nats under AWAC and IQL.
    assert np.mean(losses[-5:]) < 0.85 * np.mean(losses[:5]), losses
    if name in ("awac", "iql"):  # their offline actor is weighted likelihood of the demo's actions
        assert np.mean(likelihoods[-5:]) > np.mean(likelihoods[:5]) + 0.3, likelihoods
