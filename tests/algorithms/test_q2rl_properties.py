"""Q2RL's properties: Eq. 6 is unbiased with the exact entropy, the gate runs the higher-valued proposal,
Q-estimation starts Q_RL and freezes Q_BC, the online update leaves pi_BC and V alone, a saved policy is pi_BC."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from algorithm_fixtures import demo_batch, random_batch, random_observation, state_spec

from actor.programs import make_program
from common.protocol import Weights
from common.types import PROPOSAL_FIRST, PROPOSAL_SECOND
from learner.algorithms import config_from_overrides, config_to_dict, make_algorithm
from learner.best_policy import Tally, save_weights
from learner.networks.distributions import TanhGaussian
from learner.networks.q2rl import FrozenQBC, tanh_gaussian_entropy
from robots.fake import FakeRobot
from tests.unit.test_policy_programs import run

pytestmark = pytest.mark.timeout(120)
SMALL = {"hidden_dims": "32,32", "bc_hidden_dims": "32,32", "batch_size": 16}


def small_q2rl(spec, seed: int = 0, **overrides):
    return make_algorithm("q2rl", spec, {**SMALL, **overrides}, seed=seed)


def legacy_entropy(distribution: TanhGaussian) -> torch.Tensor:
    """The public code's first entropy: 0.5 log2(2 pi e mean_i sigma_i^2) (bits, mean over dimensions)."""
    return 0.5 * torch.log2(2 * math.pi * math.e * distribution.std.square().mean(-1))


# Not wider: with std e^2 many samples saturate tanh to exactly +-1 in float32, where no density of the action
# can be recomputed from it (the entropy itself is checked up to log std 2 below).
@pytest.mark.parametrize("log_std", [-4.0, -1.0, 0.5])
def test_eq6_q_bc_minus_v_averages_to_zero_over_pi_bc_with_the_exact_entropy_not_the_legacy_one(log_std):
    """E_{a~pi_BC}[Q_BC(s, a) - V(s)] = E[log pi_BC(a|s)] + H = 0, in 4-D, for narrow to wide policies."""
    spec = state_spec(obs_dim=3, action_dim=4)
    algorithm = small_q2rl(spec)
    head = algorithm.bc_policy.head
    with torch.no_grad():  # means spread over (-1.5, 1.5) by the state; a fixed log std per case
        head.weight.zero_(), head.bias.zero_()
        head.weight[:4, :].normal_(0, 0.3, generator=torch.Generator().manual_seed(0))
        head.bias[4:] = log_std
    q_bc = FrozenQBC(algorithm.bc_policy, algorithm.value)
    observation = random_observation(spec, 6, np.random.default_rng(1))
    samples, generator = 20_000, torch.Generator().manual_seed(2)
    for row in range(6):  # one state at a time: the quadrature holds (samples, 4, nodes) values
        repeated = {k: v[row : row + 1].expand(samples, *v.shape[1:]) for k, v in observation.items()}
        with torch.no_grad():
            distribution = algorithm.bc_policy(repeated)
            action, _ = distribution.sample(generator)
            gap = q_bc(repeated, action) - algorithm.value(repeated)
            legacy = distribution.log_prob(action) + legacy_entropy(distribution)
        error = gap.std() / math.sqrt(samples)
        assert abs(gap.mean()) < 5 * error + 1e-4, (row, gap.mean(), error)
        # Bits, a mean over dimensions, no tanh term: biased far beyond sampling error, by an amount and sign
        # that depend on sigma (the reference measured -2.9 for a 4-D Gaussian).
        assert abs(legacy.mean()) > 20 * legacy.std() / math.sqrt(samples), "the legacy entropy looks unbiased"


def test_the_exact_entropy_matches_a_plain_gaussians_closed_form_where_tanh_is_nearly_linear():
    mean, log_std = torch.zeros(1, 3), torch.full((1, 3), -6.0)
    expected = 3 * (0.5 * math.log(2 * math.pi * math.e) - 6.0)  # tanh'(0) = 1: the Gaussian's entropy
    assert tanh_gaussian_entropy(TanhGaussian(mean, log_std)).item() == pytest.approx(expected, abs=1e-4)


def test_the_gate_scores_bc_by_eq6_and_rl_by_the_ensemble_min_and_runs_the_higher_one():
    spec = FakeRobot().spec
    algorithm = small_q2rl(spec)
    for seed in range(3):
        algorithm.update(random_batch(spec, 16, seed))
    module = type(algorithm).make_policy(algorithm.config, spec)
    module.load_state_dict(algorithm.policy_state_dict(), strict=True)
    observation = random_observation(spec, 64, np.random.default_rng(3))
    with torch.no_grad():
        bc, rl = algorithm.bc_policy(observation), algorithm.nets.policy(observation)
        proposals = module.propose(observation, deterministic=True)
        assert torch.equal(proposals[:, 0], bc.deterministic_action()) and torch.equal(proposals[:, 1], rl.mean.tanh())
        q_bc = algorithm.value(observation) + bc.log_prob(proposals[:, 0]) + tanh_gaussian_entropy(bc)
        q_rl = algorithm.nets.critic(algorithm.nets.encoder(observation), proposals[:, 1]).min(0).values
        torch.testing.assert_close(module.value(observation, proposals), torch.stack([q_bc, q_rl], 1))
        # Shift Q_RL so that each proposal wins on about half the states, then check the choice row by row.
        module.critic.mlp.output.bias -= (q_rl - q_bc).median()
        values = module.value(observation, proposals)
        rl_wins = values[:, 1] > values[:, 0]
        assert 0 < int(rl_wins.sum()) < 64
        expected = torch.where(rl_wins[:, None], proposals[:, 1], proposals[:, 0])
        assert torch.equal(module.act(observation, deterministic=True), expected)
    # The actor's "gated" program in the real control loop: each step ran the higher-valued proposal and said so.
    program = make_program("gated", module, spec, 1, json.dumps(algorithm.policy_program("online")[1]))
    episodes, summaries, _ = run(program, "q2rl-gate", episodes=2, max_steps=15)
    for transitions, summary in zip(episodes, summaries):
        for t in transitions:
            obs = {k: torch.from_numpy(v)[None] for k, v in t.observation.items()}
            with torch.no_grad():
                proposals = module.propose(obs, deterministic=True)
                values = module.value(obs, proposals)[0]
            chosen = PROPOSAL_SECOND if values[1] > values[0] else PROPOSAL_FIRST
            assert t.proposal == chosen
            assert np.allclose(t.action, np.clip(proposals[0, chosen].numpy(), -1, 1), atol=1e-6)
        fraction = np.mean([t.proposal == PROPOSAL_SECOND for t in transitions])
        assert summary.rl_action_fraction == pytest.approx(fraction)


def test_q_estimation_fits_v_to_returns_and_its_end_starts_q_rl_with_equal_targets():
    spec = state_spec()
    algorithm = small_q2rl(spec)
    stage = next(s for s in algorithm.stages() if s.name == "q_estimation")
    assert stage.kind == "offline" and stage.sampling.returns_to_go and stage.sampling.demo_ratio == 0
    batch = demo_batch(algorithm, stage.sampling, seed=0)
    first = algorithm.offline_update("q_estimation", batch)
    for _ in range(300):
        last = algorithm.offline_update("q_estimation", batch)
    assert last["value_loss"] < 0.1 * first["value_loss"] and last["critic_loss"] < 0.1 * first["critic_loss"]
    nets = algorithm.nets
    assert any(not torch.equal(a, b) for a, b in zip(nets.critic.parameters(), nets.target_critic.parameters()))
    algorithm.end_stage("q_estimation")
    assert all(torch.equal(a, b) for a, b in zip(nets.critic.parameters(), nets.target_critic.parameters()))


def test_online_updates_train_q_rl_and_pi_rl_but_never_pi_bc_or_v():
    spec = state_spec()
    algorithm = small_q2rl(spec)
    frozen = {k: v.clone() for k, v in [*algorithm.bc_policy.state_dict().items(),
                                        *(("v." + k, v) for k, v in algorithm.value.state_dict().items())]}  # fmt: skip
    rl_before = {k: v.clone() for k, v in algorithm.nets.policy.state_dict().items()}
    for seed in range(3):
        algorithm.update(random_batch(spec, 16, seed))
    after = {**algorithm.bc_policy.state_dict(), **{"v." + k: v for k, v in algorithm.value.state_dict().items()}}
    assert all(torch.equal(frozen[k], after[k]) for k in frozen)
    assert any(not torch.equal(rl_before[k], v) for k, v in algorithm.nets.policy.state_dict().items())


def test_with_bc_weight_one_the_rl_actor_learns_the_bc_mode():
    spec = state_spec()
    algorithm = small_q2rl(spec, bc_weight="1.0", actor_lr="3e-3")
    batch = random_batch(spec, 16, 0)
    with torch.no_grad():
        bc_mode = algorithm.bc_policy(batch.observation).deterministic_action()
        before = (algorithm.nets.policy(batch.observation).deterministic_action() - bc_mode).abs().mean()
    for _ in range(300):
        algorithm.update(batch)
    with torch.no_grad():
        after = (algorithm.nets.policy(batch.observation).deterministic_action() - bc_mode).abs().mean()
    assert after < 0.25 * before


def saved_policy(tmp_path, spec, algo: str = "sac", hidden: str = "32,32"):
    """A best_policy.npz of another algorithm's untrained one-step policy."""
    source = make_algorithm(algo, spec, {"hidden_dims": hidden}, seed=5)
    config = config_to_dict(config_from_overrides(algo, {"hidden_dims": hidden}))
    tensors = {k: v.numpy() for k, v in source.policy_state_dict().items()}
    path = tmp_path / "best_policy.npz"
    save_weights(Weights(7, algo, json.dumps(config), spec.spec_hash, tensors), path, Tally(7))
    return path, source


def test_a_saved_policy_is_pi_bc_and_the_run_skips_the_bc_stage(tmp_path):
    spec = state_spec()
    path, source = saved_policy(tmp_path, spec)
    algorithm = small_q2rl(spec, bc_policy=str(path))
    assert [s.name for s in algorithm.stages()] == ["bc_rollouts", "q_estimation", "online"]
    loaded = algorithm.named_policy_state_dict("bc")
    assert all(torch.equal(loaded[k], v) for k, v in source.policy_state_dict().items())
    assert algorithm.policy_program("bc") == ("one_step", {"deterministic": True})


def test_a_saved_policy_of_other_widths_or_another_robot_is_refused_with_what_to_do(tmp_path):
    spec = state_spec()
    path, _ = saved_policy(tmp_path, spec, hidden="64,64")
    with pytest.raises(ValueError, match=r"bc_hidden_dims.*\[64, 64\].*--set bc_hidden_dims"):
        small_q2rl(spec, bc_policy=str(path))
    with pytest.raises(ValueError, match="robot spec"):
        small_q2rl(state_spec(obs_dim=5), bc_policy=str(saved_policy(tmp_path, spec)[0]))
    with pytest.raises(ValueError, match="not a saved policy file"):
        small_q2rl(spec, bc_policy=str(tmp_path / "missing.npz"))


def test_the_no_gating_ablation_scores_the_bc_proposal_by_q_rl_too():
    spec = state_spec()
    algorithm = small_q2rl(spec, gate_q_bc="false")
    module = type(algorithm).make_policy(algorithm.config, spec)
    module.load_state_dict(algorithm.policy_state_dict(), strict=True)
    observation = random_observation(spec, 32, np.random.default_rng(0))
    with torch.no_grad():
        proposals = module.propose(observation, deterministic=True)
        features = algorithm.nets.encoder(observation)
        expected = [algorithm.nets.critic(features, proposals[:, i]).min(0).values for i in (0, 1)]
        torch.testing.assert_close(module.value(observation, proposals), torch.stack(expected, 1))


def test_the_no_q_init_ablation_starts_q_rl_fresh_after_q_estimation_with_targets_equal():
    spec = state_spec()
    fitted, fresh = small_q2rl(spec), small_q2rl(spec, init_q_rl="false")
    stage = next(s for s in fitted.stages() if s.name == "q_estimation")
    batch = demo_batch(fitted, stage.sampling, seed=0)
    for algorithm in (fitted, fresh):
        for _ in range(5):
            algorithm.offline_update("q_estimation", batch)
        algorithm.end_stage("q_estimation")
    # Same seed, same Q-estimation: the fitted ensembles agree, the ablation's is another (fresh) one.
    after = [dict(a.nets.critic.state_dict()) for a in (fitted, fresh)]
    assert any(not torch.equal(after[0][k], after[1][k]) for k in after[0])
    nets = fresh.nets
    assert all(torch.equal(a, b) for a, b in zip(nets.critic.parameters(), nets.target_critic.parameters()))
    assert fresh.update(random_batch(spec, 16, 0))["critic_loss"] > 0  # trains on from there


def test_q_estimation_ignores_rows_the_random_policy_acted_before_any_weights():
    """The actor explores at random until the first weights (the BC stage): those rows are not pi_BC's."""
    from learner.algorithms.rlpd import take_rows

    spec = state_spec()
    batch = random_batch(spec, 16, 0)
    version = torch.tensor([1, -1] * 8, dtype=torch.int32)
    batch.extras.update(policy_version=version, mc_return=torch.where(version < 0, 1e4, batch.extras["mc_return"]))
    batch.is_demo.zero_()
    kept = take_rows(batch, torch.nonzero(version >= 0).flatten())
    full, only_bc = small_q2rl(spec), small_q2rl(spec)
    for _ in range(3):
        assert full.offline_update("q_estimation", batch) == pytest.approx(only_bc.offline_update("q_estimation", kept))
    for a, b in zip(full.value.parameters(), only_bc.value.parameters()):
        torch.testing.assert_close(a, b)


def test_an_unknown_policy_name_is_refused_naming_the_two():
    algorithm = small_q2rl(state_spec())
    for call in (algorithm.policy_program, algorithm.named_policy_state_dict,
                 lambda name: type(algorithm).make_named_policy(algorithm.config, algorithm.spec, name)):  # fmt: skip
        with pytest.raises(ValueError, match="it has 'online', 'bc'"):
            call("rl")


@pytest.mark.parametrize("mean, log_std", [(0.0, 2.0), (3.0, 2.0), (0.5, -3.0), (1.0, 0.5), (-8.0, -20.0)])
def test_the_exact_entropy_matches_dense_numerical_integration_from_narrow_to_the_widest_std(mean, log_std):
    """H = log-std term + E[log(1 - tanh(u)^2)], the expectation on a dense grid (float64) as the reference."""
    std = math.exp(log_std)
    x = np.linspace(-12, 12, 400_001)
    u = mean + std * x
    density = np.exp(-x * x / 2) / math.sqrt(2 * math.pi)
    squash = np.trapezoid(2 * (math.log(2) - u - np.logaddexp(0, -2 * u)) * density, x)
    expected = 0.5 * math.log(2 * math.pi * math.e) + log_std + squash
    distribution = TanhGaussian(*(torch.tensor([[value]], dtype=torch.float64) for value in (mean, log_std)))
    assert tanh_gaussian_entropy(distribution).item() == pytest.approx(expected, abs=1e-3)
