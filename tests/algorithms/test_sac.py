"""SAC properties (targets, temperature, Polyak, gradient routing) and two tiny problems it must solve."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from algorithm_fixtures import image_spec, random_batch, state_spec

from common.types import transition_columns
from learner.algorithms import make_algorithm
from learner.algorithms import sac as sac_module
from learner.replay import ReplayBuffer, to_torch

SMALL = {"hidden_dims": "64,64", "batch_size": 64}
METRICS = {"critic_loss", "actor_loss", "alpha", "alpha_loss", "entropy", "q_mean", "q_std", "target_q_mean"}


def test_update_reports_the_documented_metrics():
    algorithm = make_algorithm("sac", state_spec(), SMALL)
    assert set(algorithm.update(random_batch(state_spec()))) == METRICS


def test_soft_q_target_bootstraps_only_through_non_terminal_rows():
    reward, terminated = torch.tensor([1.0, 1.0]), torch.tensor([0.0, 1.0])
    next_q, next_log_prob, alpha = torch.tensor([2.0, 2.0]), torch.tensor([-1.0, -1.0]), torch.tensor(0.5)
    target = sac_module.soft_q_target(reward, terminated, next_q, next_log_prob, alpha, 0.9, backup_entropy=True)
    torch.testing.assert_close(target, torch.tensor([1.0 + 0.9 * (2.0 + 0.5), 1.0]))
    plain = sac_module.soft_q_target(reward, terminated, next_q, next_log_prob, alpha, 0.9, backup_entropy=False)
    torch.testing.assert_close(plain, torch.tensor([1.0 + 0.9 * 2.0, 1.0]))


def test_critic_reductions_and_random_target_subset():
    q = torch.tensor([[1.0, 5.0], [3.0, 2.0], [0.0, 9.0]])
    torch.testing.assert_close(sac_module.reduce_critics(q, "min"), torch.tensor([0.0, 2.0]))
    torch.testing.assert_close(sac_module.reduce_critics(q, "mean"), torch.tensor([4.0 / 3.0, 16.0 / 3.0]))
    algorithm = make_algorithm("sac", state_spec(), {**SMALL, "num_critics": 10, "target_min_subset": 2})
    members = torch.arange(10.0)[:, None].expand(10, 3)
    picks = {algorithm._target_min(members)[0].item() for _ in range(200)}
    # The min of 2 distinct members out of 0..9 is never 9, and every value 0..8 turns up.
    assert picks == set(range(9))


@pytest.mark.parametrize("target_entropy, direction", [(-50.0, -1), (50.0, 1)])
def test_temperature_falls_when_entropy_exceeds_its_target(target_entropy, direction):
    algorithm = make_algorithm("sac", state_spec(), {**SMALL, "target_entropy": target_entropy})
    before = algorithm.log_alpha.item()
    algorithm.update(random_batch(state_spec()))
    assert np.sign(algorithm.log_alpha.item() - before) == direction


def test_default_target_entropy_is_minus_half_the_action_dimension():
    assert make_algorithm("sac", state_spec(action_dim=6), SMALL).target_entropy == -3.0


@pytest.mark.parametrize("tau", [1.0, 0.005])
def test_polyak_update_moves_targets_by_tau(tau):
    algorithm = make_algorithm("sac", image_spec(), {**SMALL, "tau": tau})
    target_before = [p.clone() for p in algorithm.nets._targets]
    algorithm.update(random_batch(image_spec()))
    for old, target, online in zip(target_before, algorithm.nets._targets, algorithm.nets._online):
        torch.testing.assert_close(target, old + tau * (online - old), rtol=1e-6, atol=1e-7)
    assert not any(p.requires_grad for p in algorithm.nets._targets)


def _params(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def _changed(before: list[torch.Tensor], module: torch.nn.Module) -> bool:
    return any(not torch.equal(a, b) for a, b in zip(before, module.parameters()))


def test_actor_loss_trains_neither_the_critics_nor_the_shared_encoder(monkeypatch):
    # With the critic loss switched off, only the actor and temperature losses produce gradients.
    monkeypatch.setattr(sac_module, "critic_loss", lambda q, target: 0.0 * q.sum())
    algorithm = make_algorithm("sac", image_spec(), SMALL)
    critic, encoder = _params(algorithm.nets.critic), _params(algorithm.nets.encoder)
    head = algorithm.policy_state_dict()
    algorithm.update(random_batch(image_spec()))
    assert not _changed(critic, algorithm.nets.critic) and not _changed(encoder, algorithm.nets.encoder)
    assert not torch.equal(head["head.weight"], algorithm.nets.policy.head.weight)


def test_critic_loss_trains_the_critics_and_the_shared_encoder_but_not_the_actor(monkeypatch):
    monkeypatch.setattr(sac_module, "actor_loss", lambda log_prob, q, alpha: 0.0 * (log_prob.sum() + q.sum()))
    algorithm = make_algorithm("sac", image_spec(), SMALL)
    critic, encoder = _params(algorithm.nets.critic), _params(algorithm.nets.encoder)
    head = _params(algorithm.nets.policy.head)
    algorithm.update(random_batch(image_spec()))
    assert _changed(critic, algorithm.nets.critic) and _changed(encoder, algorithm.nets.encoder)
    assert not _changed(head, algorithm.nets.policy.head)


def test_learner_policy_and_actor_copy_act_identically():
    spec = image_spec()
    algorithm = make_algorithm("sac", spec, SMALL)
    algorithm.update(random_batch(spec))
    actor_policy = algorithm.make_policy(algorithm.config, spec)
    actor_policy.load_state_dict(algorithm.policy_state_dict())
    observation = random_batch(spec, size=8, seed=3).observation
    torch.testing.assert_close(
        actor_policy.act(observation, deterministic=True), algorithm.nets.policy.act(observation, deterministic=True)
    )


def test_gradient_clipping_runs_and_keeps_metrics_finite():
    algorithm = make_algorithm("sac", state_spec(), {**SMALL, "max_grad_norm": 0.1})
    metrics = algorithm.update(random_batch(state_spec()))
    assert all(np.isfinite(v) for v in metrics.values())


def _columns(spec, observation, action, reward, terminated, next_observation) -> dict[str, np.ndarray]:
    columns = {name: np.zeros((len(reward),) + s.shape, s.dtype) for name, s in transition_columns(spec).items()}
    columns.update({"observation/state": observation, "next_observation/state": next_observation})
    columns.update({"action": action, "reward": reward, "terminated": terminated})
    return columns


def test_sac_solves_a_one_step_bandit():
    """reward = -(a - 0.5)^2, every step terminal: the deterministic action must approach 0.5."""
    torch.manual_seed(0)
    spec = state_spec(obs_dim=2, action_dim=1)
    overrides = {**SMALL, "actor_lr": 1e-3, "critic_lr": 1e-3, "temperature_lr": 1e-3, "init_temperature": 0.1}
    algorithm = make_algorithm("sac", spec, overrides, seed=0)
    replay = ReplayBuffer(spec, capacity=1000)
    rng = np.random.default_rng(0)
    observation = np.zeros((1, 2), np.float32)
    for step in range(300):
        if step < 50:
            action = rng.uniform(-1, 1, (1, 1)).astype(np.float32)
        else:
            action = algorithm.nets.policy.act({"state": torch.from_numpy(observation)}, deterministic=False).numpy()
        reward = -((action[:, 0] - 0.5) ** 2).astype(np.float32)
        replay.add_online(_columns(spec, observation, action, reward, np.ones(1, bool), observation), "a1")
        if step >= 50:
            algorithm.update(to_torch(replay.sample(algorithm.sampling, rng), "cpu"))
    greedy = algorithm.nets.policy.act({"state": torch.from_numpy(observation)}, deterministic=True).item()
    assert abs(greedy - 0.5) < 0.1, greedy


def test_sac_values_a_chain_by_bootstrapping_only_through_non_terminal_steps():
    """A -> B (r=0), B -> end (r=1, terminated), C -> B (r=0, terminated): Q(A)=gamma, Q(B)=1, Q(C)=0."""
    spec = state_spec(obs_dim=3, action_dim=1)
    states = np.eye(3, dtype=np.float32)  # one-hot A, B, C
    a, b, c = states
    overrides = {**SMALL, "critic_lr": 1e-3, "tau": 0.1, "backup_entropy": False, "demo_ratio": 0.0}
    algorithm = make_algorithm("sac", spec, overrides, seed=1)
    replay = ReplayBuffer(spec, capacity=100)
    rng = np.random.default_rng(1)
    actions = rng.uniform(-1, 1, (30, 1)).astype(np.float32)
    observation = np.stack([a, b, c] * 10)
    next_observation = np.stack([b, b, b] * 10)
    reward = np.tile(np.array([0.0, 1.0, 0.0], np.float32), 10)
    terminated = np.tile(np.array([False, True, True]), 10)
    replay.add_online(_columns(spec, observation, actions, reward, terminated, next_observation), "a1")
    for _ in range(250):
        algorithm.update(to_torch(replay.sample(algorithm.sampling, rng), "cpu"))
    with torch.no_grad():
        probe = torch.linspace(-0.9, 0.9, 5)[:, None]
        q = {
            name: algorithm.nets.critic(torch.from_numpy(state).expand(5, 3), probe).mean().item()
            for name, state in (("A", a), ("B", b), ("C", c))
        }
    assert q["B"] == pytest.approx(1.0, abs=0.05) and q["C"] == pytest.approx(0.0, abs=0.05)
    assert q["A"] == pytest.approx(0.99, abs=0.05), q


def test_random_shift_augmentation_trains_on_images():
    algorithm = make_algorithm("sac", image_spec(), {**SMALL, "image_shift_pad": 4})
    metrics = algorithm.update(random_batch(image_spec()))
    assert all(np.isfinite(v) for v in metrics.values())
