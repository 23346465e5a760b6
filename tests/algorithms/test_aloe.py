"""ALOE's parts on numbers one can check: the chunked target, the advantage weight, the flow policy, the stages."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from algorithm_fixtures import demo_columns, random_batch, random_observation, state_spec

from actor.programs import make_program
from learner.algorithms import config_from_overrides, make_algorithm
from learner.algorithms.aloe import ALOE, advantage_weight, chunk_lengths, chunks_of
from learner.networks.encoders import ObservationEncoder
from learner.networks.flow import FlowChunkPolicy
from learner.replay.batches import to_torch
from learner.replay.buffer import ReplayBuffer

pytestmark = pytest.mark.timeout(120)

GAMMA = 0.9
SMALL = {"chunk_seconds": 0.4, "execute_seconds": 0.2, "hidden_dims": "32,32", "gamma": GAMMA, "batch_size": 64}


def aloe(**overrides) -> ALOE:
    return make_algorithm("aloe", state_spec(), {**SMALL, **overrides}, seed=0)


def sequences_of_one_episode(algorithm: ALOE, rewards: list[float]):
    """Every h-step sequence of one demo episode of len(rewards) steps that TERMINATES at its last step,
    sampled from a real replay with ALOE's own sampling, as a torch batch (rows in random order)."""
    columns = demo_columns(algorithm.spec, episodes=1, steps=len(rewards))
    columns["reward"] = np.array(rewards, np.float32)
    columns["terminated"] = columns["step"] == len(rewards) - 1
    columns["truncated"][:] = False
    replay = ReplayBuffer(algorithm.spec, 64, gamma=GAMMA)
    replay.add_demo(columns)
    sampling = dataclasses.replace(algorithm.sampling, demo_ratio=1.0)
    return to_torch(replay.sample(sampling, np.random.default_rng(0)), algorithm.device), columns


def test_the_chunked_target_equals_the_hand_computed_one_with_an_episode_end_inside():
    algorithm = aloe()
    h = algorithm.chunk_length
    assert h == 4 and not algorithm.sampling.full_sequences
    rewards = [-1.0, -2.0, -3.0, -4.0, -5.0, -100.0]  # terminates at step 5 (a failure)
    batch, columns = sequences_of_one_episode(algorithm, rewards)
    chunks = chunks_of(batch, GAMMA)
    state = algorithm.nets.generator.get_state()
    target = algorithm.chunked_target(batch, chunks)
    algorithm.nets.generator.set_state(state)  # the same a' ~ pi(s_{t+h}) for the hand computation below
    with torch.no_grad():
        next_chunk = algorithm.nets.policy(batch.next_observation).sample(algorithm.nets.generator)
        next_features = algorithm.nets.target_encoder(batch.next_observation)
        next_min = algorithm.nets.target_critic(next_features, next_chunk.flatten(1)).min(0).values
    # A sequence batch carries no bookkeeping columns: find each row's start step by its first observation.
    observed = columns["observation/state"]
    starts = [int(np.flatnonzero((observed == row).all(axis=1))[0]) for row in batch.observation["state"].numpy()]
    assert {3, 4, 5} <= set(starts) and {0, 1} & set(starts), "the sample must hold sequences of both kinds"
    for row, start in enumerate(starts):
        steps = range(start, min(start + h, len(rewards)))
        expected = sum(GAMMA**k * rewards[t] for k, t in enumerate(steps))
        if start + h < len(rewards):  # a whole chunk inside the episode: bootstrap gamma^h min_k Q'
            expected += GAMMA**h * float(next_min[row])
            bootstrap_state = columns["next_observation/state"][start + h - 1]  # s_{t+h}, after the chunk's last step
            np.testing.assert_allclose(batch.next_observation["state"][row].numpy(), bootstrap_state)
        assert float(target[row]) == pytest.approx(expected, rel=1e-5), (start, list(steps))
        valid = [1.0] * len(steps) + [0.0] * (h - len(steps))
        assert batch.extras["valid"][row].tolist() == valid


def test_the_advantage_weight_is_clipped_and_carries_no_gradient():
    advantage = torch.tensor([-50.0, -0.5, 0.0, 0.5, 50.0], requires_grad=True)
    weight = advantage_weight(advantage, beta=0.5, clip=2.0)
    assert not weight.requires_grad and weight.grad_fn is None
    expected = torch.exp(torch.tensor([-2.0, -1.0, 0.0, 1.0, 2.0]))
    torch.testing.assert_close(weight, expected)
    assert advantage_weight(advantage, beta=1.0, clip=0.0).eq(1.0).all(), "clip 0 is plain BC"


def test_the_actor_step_leaves_critics_and_encoder_alone():
    """The weighted flow-matching loss reaches only the velocity field: its weight is cut from the critics."""
    algorithm = aloe()
    batch = random_batch(algorithm.spec, 16, seed=2, horizon=algorithm.chunk_length)
    chunks = chunks_of(batch, GAMMA)
    features = algorithm.nets.encoder(batch.observation)
    q_data = algorithm.nets.critic(features, chunks.action.flatten(1))
    losses = algorithm._actor_losses(chunks, features.detach(), q_data)
    losses["actor_loss"].backward()
    assert all(p.grad is None for p in algorithm.nets.critic.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in algorithm.nets.policy.head_parameters())


def test_a_flow_policy_fitted_to_fixed_chunks_reproduces_them():
    spec = state_spec(obs_dim=3, action_dim=2)
    torch.manual_seed(0)
    policy = FlowChunkPolicy(ObservationEncoder(spec.observation), 2, chunk_length=5, flow_steps=10,
                             hidden_dims=(64, 64))  # fmt: skip
    observations = {"state": torch.tensor([[1.0, 0.0, -1.0], [-1.0, 0.5, 1.0]])}
    targets = torch.stack([torch.linspace(-0.8, 0.8, 10).view(5, 2), 0.6 * torch.cos(torch.arange(10.0)).view(5, 2)])
    optimizer = torch.optim.Adam(policy.parameters(), lr=2e-3)
    generator = torch.Generator().manual_seed(0)
    repeat = {"state": observations["state"].repeat(64, 1)}
    for _ in range(1500):
        error = policy(repeat).matching_error(targets.repeat(64, 1, 1), generator)
        optimizer.zero_grad()
        error.sum(-1).mean().backward()
        optimizer.step()
    for deterministic in (True, False):
        planned = policy.act_chunk(observations, deterministic, generator)
        assert planned.shape == (2, 5, 2)
        torch.testing.assert_close(planned, targets, atol=0.06, rtol=0)


def test_h_and_e_follow_each_robots_control_rate():
    config = config_from_overrides("aloe", {})
    ten_hz, fifty_hz = state_spec(), dataclasses.replace(state_spec(), control_hz=50.0)
    assert chunk_lengths(config, ten_hz) == (10, 3) and chunk_lengths(config, fifty_hz) == (50, 15)
    no_chunking = config_from_overrides("aloe", {"chunk_seconds": 0.1, "execute_seconds": 0.1})
    assert chunk_lengths(no_chunking, ten_hz) == (1, 1)
    with pytest.raises(ValueError, match="execute_seconds"):
        config_from_overrides("aloe", {"execute_seconds": 2.0})


def test_the_no_chunking_ablation_trains_on_transitions():
    algorithm = make_algorithm("aloe", state_spec(), {**SMALL, "chunk_seconds": 0.1, "execute_seconds": 0.1})
    assert algorithm.sampling.horizon == 1 and algorithm.policy_program() == ("chunked", {"execute": 1})
    metrics = algorithm.update(random_batch(algorithm.spec, 16))
    assert all(np.isfinite(list(metrics.values())))


def test_the_chunked_program_runs_the_policy_and_replans_every_e_steps():
    algorithm = aloe()
    name, settings = algorithm.policy_program()
    module = ALOE.make_named_policy(algorithm.config, algorithm.spec)
    module.load_state_dict(algorithm.named_policy_state_dict(), strict=True)
    program = make_program(name, module, algorithm.spec, 1, json.dumps(settings))
    rows = [random_observation(algorithm.spec, 1, np.random.default_rng(i)) for i in range(6)]
    observations = [{k: v[0].numpy() for k, v in row.items()} for row in rows]
    kinds, actions = [], []
    for observation in observations:
        actions.append(program.act(observation, deterministic=True))
        kinds.append(program.step_kind)
    assert settings == {"execute": 2} and kinds == ["replan", "queued"] * 3
    plan = module.act_chunk({k: torch.from_numpy(v)[None] for k, v in observations[2].items()}, deterministic=True)
    np.testing.assert_allclose(np.stack(actions[2:4]), plan[0, :2].numpy(), rtol=0, atol=1e-6)


def test_rounds_declare_the_papers_iterations_and_each_offline_stage_steps_its_part():
    algorithm = aloe(schedule="rounds", rounds=2, round_episodes=3, round_critic_updates=5, round_actor_updates=4,
                     offline_updates=7)  # fmt: skip
    stages = [(s.name, s.kind, s.length) for s in algorithm.stages()]
    assert stages == [("bc", "offline", 7),
                      ("rollouts_1", "rollouts", 3), ("critic_1", "offline", 5), ("actor_1", "offline", 4),
                      ("rollouts_2", "rollouts", 3), ("critic_2", "offline", 5), ("actor_2", "offline", 4),
                      ("online", "online", 0)]  # fmt: skip
    assert algorithm.stages()[2].sampling.demo_ratio == 0.5, "rounds train on demo and online data"
    batch = random_batch(algorithm.spec, 16, seed=1, horizon=algorithm.chunk_length)
    parts = {"critic": algorithm.nets.critic, "actor": algorithm.nets.policy.field, "bc": algorithm.nets.policy.field}
    for stage, stepped in (("bc", "bc"), ("critic_1", "critic"), ("actor_2", "actor")):
        before = {name: [p.detach().clone() for p in module.parameters()] for name, module in parts.items()}
        algorithm.offline_update(stage, batch)
        moved = {name for name, module in parts.items()
                 if any(not torch.equal(a, b) for a, b in zip(before[name], module.parameters()))}  # fmt: skip
        assert moved == ({"critic"} if stepped == "critic" else {"actor", "bc"}), stage
    with pytest.raises(ValueError, match="no offline stage"):
        algorithm.offline_update("critic_3", batch)
