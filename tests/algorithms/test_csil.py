"""CSIL's and CSIL++'s parts on numbers one can check: coherence, the exact KL, the categorical critic, weight
norm, faithful BC and the stage hand-off, the reward CSIL's critic learns from, and the Jacobian penalty."""

from __future__ import annotations

import dataclasses
import itertools
import math

import pytest
import torch
from algorithm_fixtures import demo_batch, random_batch, state_spec

from learner.algorithms import make_algorithm
from learner.algorithms.csil import MAX_REWARD, coherent_reward, jacobian_penalty, reward_refinement_loss
from learner.networks.distributions import TanhGaussian
from learner.networks.encoders import ObservationEncoder
from learner.networks.hetstat import MAX_STD, MIN_VAR, HetStatPolicy, gaussian_kl, triangle_wave
from learner.networks.normalized_critic import NormalizedCategoricalCritic, categorical_loss, two_hot

pytestmark = pytest.mark.timeout(120)

SMALL = {"hidden_dims": "32,32", "critic_hidden_dims": "32,32", "stationary_width": 32, "batch_size": 32}


def csil(name: str = "csil", **overrides):
    return make_algorithm(name, state_spec(), {**SMALL, **overrides}, seed=0)


# ---- coherence and the KL -------------------------------------------------------------------------


def test_in_a_bandit_the_coherent_rewards_soft_optimal_policy_is_the_bc_policy():
    """Soft-optimal policy of reward r at temperature alpha_r with prior p: pi* ∝ p exp(r / alpha_r). On a fine grid
    of a 2-d action square it must be pi_BC itself (the reference's check); a wrong alpha_r = 1/d or log p breaks it."""
    torch.manual_seed(0)
    policy = HetStatPolicy(ObservationEncoder(state_spec().observation), 2, (16,), width=16, log_lengthscale=0.0)
    state = {"state": torch.randn(1, 6)}
    with torch.no_grad():
        bc = policy(state)
        grid = torch.linspace(-0.995, 0.995, 200, dtype=torch.float64)
        actions = torch.cartesian_prod(grid, grid).float()
        dist = TanhGaussian(bc.mean.expand(len(actions), -1), bc.log_std.expand(len(actions), -1))
        alpha_r = 1.0 / 2
        reward = coherent_reward(dist, actions, alpha_r).double()
        log_prior = torch.full_like(reward, -2 * math.log(2.0))
        soft_optimal = torch.softmax(log_prior + reward / alpha_r, dim=0)
        bc_on_grid = torch.softmax(dist.log_prob(actions).double(), dim=0)
    torch.testing.assert_close(soft_optimal, bc_on_grid, rtol=1e-4, atol=1e-9)
    wrong = torch.softmax(log_prior + reward / 1.0, dim=0)  # alpha_r not scaled by the action dimension
    assert 0.5 * (wrong - bc_on_grid).abs().sum() > 0.05  # total variation


def test_the_closed_form_latent_kl_matches_a_monte_carlo_estimate_in_tanh_space():
    gen = torch.Generator().manual_seed(0)
    mean_p, log_std_p = torch.tensor([[0.3, -0.8, 0.1]]), torch.tensor([[-0.5, -1.0, -0.2]])
    mean_q, log_std_q = torch.tensor([[-0.2, -0.4, 0.6]]), torch.tensor([[-0.3, -0.6, -0.9]])
    exact = gaussian_kl(mean_p, log_std_p, mean_q, log_std_q).item()
    p, q = TanhGaussian(mean_p, log_std_p), TanhGaussian(mean_q, log_std_q)
    samples = 400_000
    p_many = TanhGaussian(mean_p.expand(samples, -1), log_std_p.expand(samples, -1))
    action, log_p = p_many.sample(gen)  # log-densities in action (tanh) space
    log_q = TanhGaussian(mean_q.expand(samples, -1), log_std_q.expand(samples, -1)).log_prob(action)
    ratio = (log_p - log_q).double()
    standard_error = ratio.std().item() / math.sqrt(samples)
    assert abs(ratio.mean().item() - exact) < 5 * standard_error + 1e-3, (ratio.mean().item(), exact)
    assert gaussian_kl(mean_p, log_std_p, mean_p, log_std_p).item() == pytest.approx(0.0, abs=1e-7)
    assert exact > 0.5 and p.mean is not q.mean


# ---- CSIL++'s critic ------------------------------------------------------------------------------


def test_two_hot_targets_have_the_clipped_target_as_their_mean():
    support = torch.linspace(-8.0, 0.0, 101)
    target = torch.tensor([-8.0, -3.37, -0.04, 0.0, -20.0, 5.0])
    probs = two_hot(target, support)
    torch.testing.assert_close(probs.sum(-1), torch.ones(6))
    torch.testing.assert_close(probs @ support, target.clamp(-8.0, 0.0))
    assert ((probs > 0).sum(-1) <= 2).all()


def test_the_categorical_critics_expected_value_converges_to_a_fixed_scalar_target():
    torch.manual_seed(0)
    critic = NormalizedCategoricalCritic(5, (64, 64))
    features, action = torch.randn(64, 3), torch.rand(64, 2) * 2 - 1
    target = -8.0 * torch.sigmoid(features[:, 0] + action[:, 1])  # a fixed function of the inputs, inside [-8, 0]
    optimizer = torch.optim.Adam(critic.parameters(), lr=3e-3)
    for _ in range(600):
        optimizer.zero_grad()
        categorical_loss(critic(features, action), target, critic.support).backward()
        optimizer.step()
        critic.project_weights()
    with torch.no_grad():
        q = critic.q_value(critic(features, action))
    assert (q - target).abs().max() < 0.15, (q - target).abs().max()


def test_csil_pp_keeps_the_critics_hidden_weights_on_the_unit_sphere_after_an_update():
    algorithm = csil("csil_pp", critic_pretrain_lr=0.1, critic_lr=0.1)
    critic = algorithm.nets.critic
    raw = torch.optim.Adam(critic.parameters(), lr=0.1)  # a plain step on a copy leaves the sphere ...
    before = [linear.weight.detach().clone() for linear in critic.hidden]
    batch = random_batch(algorithm.spec, 32, seed=1)
    critic.output.weight.data.normal_()
    loss = critic(torch.randn(32, 6), batch.action).square().mean()
    raw.zero_grad()
    loss.backward()
    raw.step()
    assert any((linear.weight.norm(dim=1) - 1).abs().max() > 1e-3 for linear in critic.hidden)
    for linear, weight in zip(critic.hidden, before):
        linear.weight.data.copy_(weight)
    algorithm.update(batch)  # ... an update projects it back
    algorithm.offline_update("critic", batch)
    for linear, weight in zip(critic.hidden, before):
        torch.testing.assert_close(linear.weight.norm(dim=1), torch.ones(linear.weight.shape[0]))
        assert not torch.equal(linear.weight, weight)


# ---- the policy, the stages and the reward ----------------------------------------------------------


def test_triangle_wave_is_periodic_and_agrees_with_sine_at_quarter_periods():
    x = torch.tensor([k * math.pi / 2 for k in range(-8, 9)], dtype=torch.float64)
    torch.testing.assert_close(triangle_wave(x), torch.sin(x), atol=1e-9, rtol=0)
    y = torch.linspace(-20, 20, 1001, dtype=torch.float64)
    torch.testing.assert_close(triangle_wave(y + 2 * math.pi), triangle_wave(y), atol=1e-9, rtol=0)
    assert triangle_wave(y).abs().max() <= 1.0


def test_hetstat_std_stays_inside_its_floor_and_ceiling():
    torch.manual_seed(0)
    policy = HetStatPolicy(ObservationEncoder(state_spec().observation), 2, (16,), width=16)
    with torch.no_grad():
        policy.scale_tril.mul_(100.0)
        std = policy({"state": torch.randn(256, 6) * 10}).std
    assert std.max() <= MAX_STD and std.min() >= MAX_STD * math.tanh(math.sqrt(MIN_VAR)) * (1 - 1e-6)


def test_faithful_bc_fits_the_demo_and_hands_pi_bc_to_the_prior_and_the_reward():
    algorithm = csil(hidden_dims="64,64", stationary_width=256)
    sampling = dataclasses.replace(algorithm.sampling, demo_ratio=1.0)
    batch = demo_batch(algorithm, sampling, seed=0)
    policy = algorithm.nets.policy
    error = lambda: (policy(batch.observation).deterministic_action() - batch.action).abs().mean().item()  # noqa: E731
    start = error()
    for _ in range(500):
        algorithm.offline_update("bc", batch)
    assert error() < 0.35 * start, (start, error())  # 32 random actions at random states: memorised
    algorithm.end_stage("bc")
    nets = algorithm.nets
    with torch.no_grad():
        on_demo = algorithm.log_ratio_reward(batch.observation, batch.action)  # CSIL's reward: unshifted
        off_demo = algorithm.log_ratio_reward(batch.observation, -batch.action)
        prior, now = nets.prior(batch.observation), nets.policy(batch.observation)
    assert torch.equal(prior.mean, now.mean) and torch.equal(prior.log_std, now.log_std)
    assert on_demo.mean() > 0 > off_demo.mean(), "in-distribution actions are rewarded, others penalised"
    assert not any(p.requires_grad for p in nets.prior.parameters())


def test_csils_critic_ignores_the_task_reward_in_replay():
    """CSIL learns from its own reward: two batches differing only in the stored reward give the same update."""
    first, second = csil(), csil()
    batch = random_batch(first.spec, 32, seed=2)
    other = dataclasses.replace(batch, reward=batch.reward + 100.0)
    assert first.update(batch) == second.update(other)
    for a, b in zip(first.nets.critic.parameters(), second.nets.critic.parameters()):
        assert torch.equal(a, b)


def test_csil_pp_rewards_are_never_positive_and_csil_rewards_are_shifted_by_the_bound():
    plain, plus = csil("csil_pp", variant="csil"), csil("csil_pp")  # the same reward network, the two variants
    batch = random_batch(plain.spec, 64, seed=3)
    with torch.no_grad():
        r_plain = plain.shift(plain.log_ratio_reward(batch.observation, batch.action))
        r_plus = plus.shift(plus.log_ratio_reward(batch.observation, batch.action))
    assert r_plus.max() <= 0.0
    torch.testing.assert_close(r_plus, (r_plain - MAX_REWARD).clamp_max(0.0))


def test_csil_pp_refines_its_reward_on_the_unshifted_log_ratio():
    """The refinement's KL estimator exp(-r) - 1 + r pulls online log-ratios r toward 0. CSIL++'s critic sees the
    reward shifted below 0, but the estimator must see r itself (the code's negative_reward path adds the bound
    back): on the shifted value, r in (-5, 0) would be pushed up toward the bound, and anything below -5 down
    without end (runs saw rewards of -19,000)."""
    algorithm = csil("csil_pp", hidden_dims="64,64", stationary_width=256)
    batch = random_batch(algorithm.spec, 32, seed=4)
    for _ in range(500):  # BC narrows pi_BC, and so the reward network, until its mode scores well above 0
        algorithm.offline_update("bc", batch)
    algorithm.end_stage("bc")
    with torch.no_grad():
        mode = algorithm.nets.reward(batch.observation).deterministic_action()
        online = dataclasses.replace(batch, action=mode, is_demo=torch.zeros_like(batch.is_demo))
        log_ratio = algorithm.log_ratio_reward(online.observation, online.action)
    assert 1.0 < log_ratio.mean() < algorithm.reward_bound - 1.0, log_ratio.mean()  # shifted: inside (-5, 0)
    expected = reward_refinement_loss(log_ratio, online.is_demo, algorithm.config.online_reward_penalty)
    assert algorithm.update(online)["reward_loss"] == pytest.approx(expected.item(), rel=1e-5)


def test_the_refinement_pulls_online_log_ratios_toward_zero_and_leaves_those_below_minus_five_alone():
    log_ratio = torch.tensor([3.0, 0.5, -2.0, -6.0, -50.0], requires_grad=True)
    reward_refinement_loss(log_ratio, torch.zeros(5), penalty=1.0).backward()
    slope = log_ratio.grad
    assert slope[0] > 0 and slope[1] > 0, "above 0: pushed down"
    assert slope[2] < 0, "between -5 and 0: pushed up"
    assert slope[3] == 0 and slope[4] == 0, "below -5: no push either way (it used to be pushed down without end)"


def test_csil_pps_critic_support_spans_the_shifted_rewards_returns():
    """Rewards 3.5-7 below the bound per step (a one-demo BC policy on the demo's own actions) return ~-350 to
    -700: the support must reach at least the return of log-ratio 0 (the refinement's aim for online actions),
    or every value sits on the lowest atom."""
    algorithm = csil("csil_pp")
    support = algorithm.nets.critic.support
    assert support[-1].item() == 0.0
    assert support[0].item() <= -algorithm.reward_bound / (1.0 - algorithm.config.gamma) + 1e-3


def test_csil_pp_reports_the_share_of_td_targets_its_support_cannot_hold():
    """Untrained, the shifted reward is several units below 0: on a [-1, 0] support most targets fall outside, on
    the default none do (the metric that would have shown the critic pinned at -8)."""
    batch = random_batch(state_spec(), 32, seed=5)
    narrow = csil("csil_pp", v_min=-1.0).update(batch)["target_outside_support"]
    default = csil("csil_pp").update(batch)["target_outside_support"]
    assert narrow > 0.5 and default == 0.0, (narrow, default)


def test_the_jacobian_penalty_is_the_rms_action_gradient_norm_over_demo_rows():
    action = torch.randn(6, 3, requires_grad=True)
    slopes = torch.arange(18, dtype=torch.float32).reshape(6, 3)
    q = (slopes * action).sum(-1)  # dQ/da = slopes, row by row
    rows = torch.tensor([True, False, True, False, False, True])
    expected = slopes[rows].square().sum(-1).mean().sqrt()
    torch.testing.assert_close(jacobian_penalty(q, action, rows), expected)
    assert jacobian_penalty(q, action, torch.zeros(6, dtype=torch.bool)).item() == 0.0


def test_csil_pp_steps_its_actor_once_every_policy_delay_updates():
    algorithm = csil("csil_pp")
    assert algorithm.config.policy_delay == 4
    snapshots = []
    for seed in range(8):
        snapshots.append([p.detach().clone() for p in algorithm.nets.policy.head_parameters()])
        algorithm.update(random_batch(algorithm.spec, 32, seed=seed))
    moved = [any(not torch.equal(a, b) for a, b in zip(x, y)) for x, y in itertools.pairwise(snapshots)]
    assert moved == [True, False, False, False, True, False, False]


# ---- XQC+OD, CSIL++'s sparse-reward baseline -------------------------------------------------------


def test_xqc_od_learns_from_the_task_reward_in_replay_on_the_shaped_rewards_returns():
    first, second = csil("xqc_od"), csil("xqc_od")
    assert first.nets.critic.support[0].item() == -100.0 and first.nets.critic.support[-1].item() == 0.0
    assert [stage.name for stage in first.stages()] == ["bc", "online"], "BC pretraining, no SARSA critic stage"
    batch = random_batch(first.spec, 32, seed=2)
    metrics = first.update(batch)
    second.update(dataclasses.replace(batch, reward=batch.reward - 50.0))
    changed = [not torch.equal(a, b) for a, b in zip(first.nets.critic.parameters(), second.nets.critic.parameters())]
    assert any(changed), "the stored reward must reach the critic"
    assert "reward_loss" not in metrics and "jacobian_penalty" not in metrics  # CSIL's parts are off


def test_xqc_od_tunes_its_temperature_toward_the_target_entropy_and_csil_keeps_its_kl_weight():
    algorithm = csil("xqc_od", policy_delay=1)
    start = algorithm.alpha.item()
    for seed in range(20):  # a fresh HetStat policy is broad: its entropy is above -|A|, so alpha falls
        metrics = algorithm.update(random_batch(algorithm.spec, 32, seed=seed))
    assert metrics["alpha"] < start
    kl_weighted = csil("csil_pp", policy_delay=1)
    kl_weighted.update(random_batch(kl_weighted.spec, 32, seed=0))
    assert kl_weighted.alpha.item() == pytest.approx(0.3) and not kl_weighted.log_alpha.grad
