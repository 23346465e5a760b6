"""Stamps each step with who and when (actor, episode, step, policy version) and hands it to the sender."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from common.protocol import EpisodeSummary
from common.types import Observation, Transition


@dataclass
class EpisodeRecord:
    """Running totals of the current episode."""

    episode: int
    evaluation: bool
    steps: int = 0
    episode_return: float = 0.0
    interventions: int = 0
    policy_version: int = -1
    transitions: list[Transition] = field(default_factory=list)


class Recorder:
    """Builds transitions for one episode at a time and passes them (and a summary) to `sink`.

    Episode numbers start from the wall clock in milliseconds, so they stay unique when an actor
    restarts under the same actor id.
    """

    def __init__(self, sink: Callable[[object], object], keep_transitions: bool = False) -> None:
        self._sink = sink
        self._keep = keep_transitions
        self._next_episode = int(time.time() * 1000)
        self.current: EpisodeRecord | None = None

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
    ) -> Transition:
        """Record one step; `executed_action` is normalised to [-1, 1]."""
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
        )
        episode.steps += 1
        episode.episode_return += float(reward)
        episode.interventions += int(intervention)
        episode.policy_version = policy_version
        if self._keep:
            episode.transitions.append(transition)
        self._sink(transition)
        return transition

    def finish_episode(self, success: bool, outcome_source: str) -> EpisodeSummary:
        episode = self.current
        summary = EpisodeSummary(
            episode=episode.episode,
            steps=episode.steps,
            episode_return=episode.episode_return,
            success=bool(success),
            evaluation=episode.evaluation,
            outcome_source=outcome_source,
            policy_version=episode.policy_version,
            interventions=episode.interventions,
        )
        self._sink(summary)
        return summary
