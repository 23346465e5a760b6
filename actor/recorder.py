"""Stamps each step with who and when (actor, episode, step, policy version) and hands it to the sender.

The newest transition is held back until the next one arrives or the episode finishes, because the
episode's end (an operator label, a reset, an e-stop) can still change its reward and end flags.
`hold` (the spooling sender's) sees it at once all the same, so a killed actor keeps that step too.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from common.protocol import EpisodeSummary
from common.types import PROPOSAL_NONE, PROPOSAL_SECOND, Observation, Transition


@dataclass
class EpisodeRecord:
    """Running totals of the current episode."""

    episode: int
    evaluation: bool
    steps: int = 0
    episode_return: float = 0.0
    interventions: int = 0
    second_proposals: int = 0  # steps a gated program ran its second (RL) proposal
    policy_version: int = -1
    transitions: list[Transition] = field(default_factory=list)


class Recorder:
    """Builds transitions for one episode at a time and passes them (and a summary) to `sink`.

    Episode numbers start from the wall clock in milliseconds, so they stay unique when an actor
    restarts under the same actor id.
    """

    def __init__(self, sink: Callable[[object], object], keep_transitions: bool = False,
                 hold: Callable[[Transition], None] | None = None) -> None:  # fmt: skip
        self._sink = sink
        self._hold = hold or (lambda _t: None)
        self._keep = keep_transitions
        self._next_episode = int(time.time() * 1000)
        self.current: EpisodeRecord | None = None
        self._held: Transition | None = None

    def start_episode(self, evaluation: bool) -> EpisodeRecord:
        self.current = EpisodeRecord(self._next_episode, evaluation)
        self._next_episode += 1
        return self.current

    def record(
        self,
        observation: Observation,
        executed_action: np.ndarray,
        reward: float,
        terminated: bool,
        truncated: bool,
        next_observation: Observation,
        policy_version: int,
        intervention: bool = False,
        proposal: int = PROPOSAL_NONE,
    ) -> Transition:
        """Record one step; `executed_action` is normalised to [-1, 1]; `proposal` is a PROPOSAL_* value."""
        episode = self.current
        transition = Transition(
            observation=observation,
            action=executed_action,
            reward=float(reward),
            terminated=bool(terminated),
            truncated=bool(truncated),
            next_observation=next_observation,
            episode=episode.episode,
            step=episode.steps,
            policy_version=policy_version,
            intervention=intervention,
            evaluation=episode.evaluation,
            proposal=proposal,
        )
        episode.steps += 1
        episode.episode_return += float(reward)
        episode.interventions += int(intervention)
        episode.second_proposals += int(proposal == PROPOSAL_SECOND)
        episode.policy_version = policy_version
        self._hold(transition)  # before the previous one is released: a kill in between leaves no step unlogged
        self._release()
        self._held = transition
        return transition

    @property
    def last(self) -> Transition | None:
        """The newest transition of the current episode, still open to relabelling."""
        return self._held

    def _release(self) -> None:
        if self._held is not None:
            if self._keep:
                self.current.transitions.append(self._held)
            self._sink(self._held)
            self._held = None

    def finish_episode(
        self, success: bool, outcome_source: str, final: tuple[float, bool] | None = None, end_reason: str = ""
    ) -> EpisodeSummary:
        """End the episode. `final` = (reward, terminated) overrides the last transition's (an operator
        label); otherwise a last transition that did not terminate is marked truncated (the episode was cut).
        `end_reason` says what ended it (`EpisodeSummary.end_reason`; "": `outcome_source`)."""
        episode, last = self.current, self._held
        if last is not None:
            if final is not None:
                episode.episode_return += float(final[0]) - last.reward
                last.reward, last.terminated = float(final[0]), bool(final[1])
                last.truncated = not last.terminated
            elif not last.terminated:
                last.truncated = True
        self._release()
        summary = EpisodeSummary(
            episode=episode.episode,
            steps=episode.steps,
            episode_return=episode.episode_return,
            success=bool(success),
            evaluation=episode.evaluation,
            outcome_source=outcome_source,
            policy_version=episode.policy_version,
            interventions=episode.interventions,
            rl_action_fraction=episode.second_proposals / episode.steps if episode.steps else 0.0,
            end_reason=end_reason or outcome_source,
        )
        if episode.steps:  # stopped before its first step: nothing happened, and it must not count as a failure
            self._sink(summary)
        return summary
