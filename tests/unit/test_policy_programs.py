"""Actor policy programs in the real control loop with FakeRobot: queues, re-plans, gates, ensembles, checks.

The modules here are tiny hand-written torch modules whose outputs say where they came from (the
position inside a chunk, which proposal), so each transition shows what the program did.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from actor.loop import ActorLoop, LoopConfig
from actor.operator import Operator
from actor.policy import ActingPolicy, PolicyOutputError, build_policy
from actor.programs import PROGRAMS, make_program
from common.protocol import Weights
from common.types import PROPOSAL_FIRST, PROPOSAL_NONE, PROPOSAL_SECOND, Transition
from robots.fake import FakeRobot
from tests.conftest import metric, transitions_by_episode

pytestmark = pytest.mark.timeout(60)
SPEC = FakeRobot().spec


class Chunks(nn.Module):
    """Plans `chunk_length` actions; action k of a plan is (k / 10, plans so far / 100)."""

    def __init__(self, chunk_length: int = 4, poison_at: int | None = None) -> None:
        super().__init__()
        self.chunk_length, self.poison_at, self.plans = chunk_length, poison_at, 0

    def act_chunk(self, observation, deterministic: bool) -> torch.Tensor:
        self.plans += 1
        position = torch.arange(self.chunk_length, dtype=torch.float32)
        chunk = torch.stack([position / 10, torch.full_like(position, self.plans / 100)], dim=-1)
        if self.poison_at is not None:
            chunk[self.poison_at, 0] = float("nan")
        return chunk[None]


class Gate(nn.Module):
    """First proposal (3, 0.5) pushes x up, second (-0.2, -3) pushes it down; the second is valued higher
    exactly when x > 0, so the point robot hovers around x = 0 and both proposals run."""

    def propose(self, observation, deterministic: bool) -> torch.Tensor:
        return torch.tensor([[[3.0, 0.5], [-0.2, -3.0]]])

    def value(self, observation, proposals) -> torch.Tensor:
        x = observation["state"][:, 0]
        return torch.stack([-x, x], dim=1)


class BaseAndLearned(nn.Module):
    """Base chunk action k = (0.5, k / 10); the learned policy always says (0.9, 0.2)."""

    base_chunk_length = 3

    def act_base_chunk(self, observation, deterministic: bool) -> torch.Tensor:
        position = torch.arange(self.base_chunk_length, dtype=torch.float32)
        return torch.stack([torch.full_like(position, 0.5), position / 10], dim=-1)[None]

    def act(self, observation, deterministic: bool) -> torch.Tensor:
        return torch.tensor([[0.9, 0.2]])


class Flags(nn.Module):
    """A one-step module remembering the `deterministic` flag of every call."""

    def __init__(self) -> None:
        super().__init__()
        self.flags: list[bool] = []

    def act(self, observation, deterministic: bool) -> torch.Tensor:
        self.flags.append(deterministic)
        return torch.zeros(1, 2)


class ScriptedRobot(FakeRobot):
    """FakeRobot that presses operator keys after given numbers of sent actions, and keeps what it was sent.

    A pause is released by the first `stop()` after the key was handled: the loop's hold, not the
    key's own stop.
    """

    def __init__(self, keys_after: dict[int, str] | None = None, **options) -> None:
        super().__init__(**options)
        self.keys_after, self.sent, self.operator, self._resume_on_stop = keys_after or {}, [], None, False

    def send_action(self, action: np.ndarray) -> np.ndarray:
        self.sent.append(np.array(action))
        executed = super().send_action(action)
        command = self.keys_after.get(len(self.sent))
        if command:
            self.operator.handle_key(self.operator.keymap.bindings[command][0])
            self._resume_on_stop = command == "pause"
        return executed

    def stop(self) -> None:
        super().stop()
        if self._resume_on_stop and self.operator is not None and self.operator.paused:
            self._resume_on_stop = False
            self.operator.handle_key(self.operator.keymap.bindings["pause"][0])


def run(program_or_offer, actor_id: str, episodes: int = 2, max_steps: int = 7, keys_after=None):
    """Run `episodes` training episodes; returns (transitions by episode, summaries, robot)."""
    robot = ScriptedRobot(keys_after, seed=1, max_steps=max_steps)
    offer = program_or_offer if callable(program_or_offer) else (
        lambda version: program_or_offer if version < program_or_offer.version else None)  # fmt: skip
    recorded = []
    loop = ActorLoop(robot, robot.task, recorded.append, offer, LoopConfig(episodes=episodes, time_scale=50.0),
                     actor_id, Operator(SPEC, robot.stop))  # fmt: skip
    robot.operator = loop.operator
    with robot:
        robot.enable()
        summaries = loop.run()
    return transitions_by_episode(recorded), summaries, robot


def positions(transitions: list[Transition]) -> list[int]:
    return [round(float(t.action[0]) * 10) for t in transitions]


def inference_count(actor_id: str, step: str) -> float:
    return metric("tandem_actor_policy_inference_seconds_count", actor_id=actor_id, robot="fake", step=step)


def test_chunked_executes_e_planned_actions_then_replans_and_never_carries_a_plan_into_the_next_episode():
    program = make_program("chunked", Chunks(chunk_length=4), SPEC, 1, '{"execute": 3}')
    episodes, summaries, _ = run(program, "chunk-e3")
    assert [positions(ts) for ts in episodes] == [[0, 1, 2, 0, 1, 2, 0]] * 2
    assert {t.proposal for ts in episodes for t in ts} == {PROPOSAL_NONE}
    assert inference_count("chunk-e3", "replan") == 6 and inference_count("chunk-e3", "queued") == 8
    assert all(s.steps == 7 for s in summaries)


def test_new_weights_take_over_only_at_a_replan_never_inside_a_chunk():
    versions = iter(range(1, 10**6))

    def always_newer(_current: int) -> ActingPolicy:  # a learner publishing faster than the robot acts
        return make_program("chunked", Chunks(chunk_length=4), SPEC, next(versions), '{"execute": 3}')

    episodes, _, _ = run(always_newer, "chunk-swap", episodes=1, max_steps=9)
    (transitions,) = episodes
    versions = [t.policy_version for t in transitions]
    changed = [i for i in range(1, len(versions)) if versions[i] != versions[i - 1]]
    assert changed == [3, 6], "a new version starts exactly at each re-plan"
    assert [positions(transitions)[i] for i in changed] == [0, 0]


@pytest.mark.parametrize("command", ["intervene", "pause"])
def test_an_intervention_or_a_pause_clears_the_queue_so_the_policy_replans_from_where_the_robot_is(command):
    keys_after = {2: command, 3: command} if command == "intervene" else {2: command}
    program = make_program("chunked", Chunks(chunk_length=4), SPEC, 1, '{"execute": 3}')
    episodes, _, _ = run(program, f"chunk-{command}", episodes=1, max_steps=7, keys_after=keys_after)
    (transitions,) = episodes
    policy_steps = [t for t in transitions if not t.intervention]
    assert positions(policy_steps)[:3] == [0, 1, 0], "without the interrupt the third policy action would be 2"
    if command == "intervene":
        assert transitions[2].intervention and transitions[2].proposal == PROPOSAL_NONE


def test_gated_runs_the_higher_valued_proposal_records_which_and_sends_only_clipped_actions():
    program = make_program("gated", Gate(), SPEC, 1, "{}")
    episodes, _, robot = run(program, "gated", episodes=2, max_steps=20)
    transitions = [t for ts in episodes for t in ts]
    for t in transitions:
        expected = PROPOSAL_SECOND if t.observation["state"][0] > 0 else PROPOSAL_FIRST
        assert t.proposal == expected
        assert np.allclose(t.action, [1.0, 0.5] if expected == PROPOSAL_FIRST else [-0.2, -1.0], atol=1e-6)
    chosen = [t.proposal for t in transitions]
    assert chosen.count(PROPOSAL_FIRST) and chosen.count(PROPOSAL_SECOND), "both proposals ran"
    assert np.max(np.abs(robot.sent)) <= 1.0, "an unclipped action reached the robot"
    for label, proposal in (("first", PROPOSAL_FIRST), ("second", PROPOSAL_SECOND)):
        count = metric("tandem_actor_proposal_actions_total", actor_id="gated", robot="fake", proposal=label)
        assert count == chosen.count(proposal)


@pytest.mark.parametrize("combine", ["mean", "residual"])
def test_ensembled_combines_a_base_chunk_replanned_every_n_steps_with_the_learned_action(combine):
    program = make_program("ensembled", BaseAndLearned(), SPEC, 1, json.dumps({"every": 2, "combine": combine}))
    episodes, _, _ = run(program, f"ensembled-{combine}", episodes=2, max_steps=5)
    base_positions = [0, 1, 0, 1, 0]  # a new base chunk every 2 steps; each episode starts with a fresh one
    for transitions in episodes:
        base = np.array([[0.5, k / 10] for k in base_positions], np.float32)
        learned = np.array([0.9, 0.2], np.float32)
        expected = 0.5 * (base + learned) if combine == "mean" else np.clip(base + learned, -1, 1)
        assert np.allclose([t.action for t in transitions], expected, atol=1e-6)
    assert inference_count(f"ensembled-{combine}", "replan") == 6
    assert inference_count(f"ensembled-{combine}", "forward") == 4


def test_a_non_finite_planned_action_stops_the_robot_before_any_action_of_its_chunk_runs():
    program = make_program("chunked", Chunks(chunk_length=4, poison_at=2), SPEC, 1, '{"execute": 3}')
    stops_before = metric("tandem_actor_safety_stops_total", actor_id="chunk-nan", robot="fake", reason="policy_output")
    episodes, summaries, robot = run(program, "chunk-nan", episodes=1)
    assert summaries[0].outcome_source == "policy_error" and robot.sent == [] and episodes == []
    assert robot.stop_count >= 1
    stops = metric("tandem_actor_safety_stops_total", actor_id="chunk-nan", robot="fake", reason="policy_output")
    assert stops == stops_before + 1


def test_deterministic_can_be_forced_for_training_episodes_too():
    forced, free = Flags(), Flags()
    run(make_program("one_step", forced, SPEC, 1, '{"deterministic": true}'), "forced", episodes=1, max_steps=3)
    run(make_program("one_step", free, SPEC, 1, "{}"), "free", episodes=1, max_steps=3)
    assert forced.flags == [True] * 3 and free.flags == [False] * 3


@pytest.mark.parametrize("name, module, settings, message", [
    ("chunked", Chunks(4), '{"execute": 5}', "execute must be in [1, 4]"),
    ("chunked", Chunks(4), '{"execute": 0}', "execute must be in [1, 4]"),
    ("chunked", Chunks(4), '{"execute": "3"}', "execute must be int"),
    ("chunked", Chunks(4), '{"horizon": 3}', "unknown ChunkedConfig setting(s) ['horizon']"),
    ("chunked", Chunks(4), "[3]", "must be a JSON object"),
    ("ensembled", BaseAndLearned(), '{"combine": "max"}', "combine must be one of"),
    ("ensembled", BaseAndLearned(), '{"every": 4}', "every must be in [1, 3]"),
    ("gated", Chunks(4), "{}", "Gated needs a module with propose, value"),
    ("one_step", Gate(), '{"deterministic": 1}', "deterministic must be bool"),
])  # fmt: skip
def test_bad_program_settings_or_an_unfit_module_are_refused_with_a_clear_error(name, module, settings, message):
    with pytest.raises(ValueError) as error:
        make_program(name, module, SPEC, 1, settings)
    assert message in str(error.value)


def test_an_unknown_program_is_refused_naming_the_known_ones():
    with pytest.raises(KeyError) as error:
        make_program("teleport", Flags(), SPEC, 1, "{}")
    assert "unknown policy program 'teleport'" in str(error.value)
    assert {"one_step", "chunked", "gated", "ensembled"} <= set(PROGRAMS.names())


def test_weights_naming_a_program_their_policy_cannot_run_are_refused_like_bad_weights():
    from learner.algorithms import ALGORITHMS, config_from_overrides, config_to_dict

    config = config_from_overrides("sac", {"hidden_dims": "8"})
    tensors = {k: v.numpy() for k, v in ALGORITHMS.get("sac").make_policy(config, SPEC).state_dict().items()}
    weights = Weights(1, "sac", json.dumps(config_to_dict(config)), SPEC.spec_hash, tensors, program="gated")
    with pytest.raises(ValueError, match="needs a module with propose, value"):
        build_policy(weights, SPEC)
    weights.program = "one_step"
    assert build_policy(weights, SPEC).act({"state": np.zeros(4, np.float32)}).shape == (2,)


def test_a_gated_module_valuing_with_nan_stops_instead_of_guessing():
    class NanGate(Gate):
        def value(self, observation, proposals):
            return torch.tensor([[0.0, float("nan")]])

    with pytest.raises(PolicyOutputError, match="valued its proposals"):
        make_program("gated", NanGate(), SPEC, 1, "{}").act({"state": np.zeros(4, np.float32)})


def test_an_actor_exports_program_series_from_zero_so_dashboards_show_no_gaps():
    from common import metrics

    metrics.init_actor("fresh-actor", "fake")
    for proposal in ("single", "first", "second", "operator"):
        labels = {"actor_id": "fresh-actor", "robot": "fake", "proposal": proposal}
        assert metrics.REGISTRY.get_sample_value("tandem_actor_proposal_actions_total", labels) == 0.0
    for step in ("forward", "replan", "queued"):
        labels = {"actor_id": "fresh-actor", "robot": "fake", "step": step}
        assert metrics.REGISTRY.get_sample_value("tandem_actor_policy_inference_seconds_count", labels) == 0.0
