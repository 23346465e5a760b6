"""THE control loop: observe, act, wait for the tick, observe again, record. Never waits on the network.

One step:
  policy (swapped in only here, at the step boundary) -> normalised action -> denormalise ->
  robot.send_action (safety-clipped, returns what was executed) -> RateLimiter tick ->
  next observation -> task reward / termination -> recorder (stamps, queues for the sender).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Callable

import numpy as np

from actor.policy import PolicyOutputError, RandomPolicy
from actor.recorder import Recorder
from common import metrics
from common.protocol import EpisodeSummary
from common.timing import RateLimiter, Stopwatch
from robots.base import Robot, Task

log = logging.getLogger(__name__)


@dataclass
class LoopConfig:
    """What the actor runs."""

    episodes: int = 0  # stop after this many episodes (0: until stopped)
    eval_every: int = 0  # after every N training episodes run `eval_episodes` deterministic ones (0: never)
    eval_episodes: int = 5  # episodes per evaluation block
    eval_only: bool = False  # every episode deterministic (final evaluation of a trained policy)
    time_scale: float = 1.0  # >1 runs a simulator faster than real time; real robots must use 1
    seed: int = 0  # seed of the random policy used before the first weights

    def __post_init__(self) -> None:
        if self.episodes < 0 or self.eval_every < 0 or self.eval_episodes < 1 or self.time_scale <= 0:
            raise ValueError("episodes/eval_every >= 0, eval_episodes >= 1 and time_scale > 0 are required")


class ActorLoop:
    """Runs episodes of `task` on `robot`, acting with the newest policy `take_policy` offers."""

    def __init__(
        self,
        robot: Robot,
        task: Task,
        submit: Callable[[object], object],
        take_policy: Callable[[int], object | None],
        config: LoopConfig,
        actor_id: str,
    ) -> None:
        self.robot, self.task, self.config = robot, task, config
        self.spec = robot.spec
        self._take_policy = take_policy
        self._recorder = Recorder(submit)
        self._policy = RandomPolicy(self.spec, config.seed)
        self._stop = threading.Event()
        self.summaries: list[EpisodeSummary] = []
        labels = (actor_id, self.spec.name)
        self._m_period = metrics.ACTOR_CONTROL_PERIOD.labels(*labels)
        self._m_overruns = metrics.ACTOR_CONTROL_OVERRUNS.labels(*labels)
        self._m_inference = metrics.ACTOR_POLICY_INFERENCE.labels(*labels)
        self._m_version = metrics.ACTOR_POLICY_VERSION.labels(*labels)
        self._m_policy_stops = metrics.ACTOR_SAFETY_STOPS.labels(*labels, "policy_output")
        self._labels = labels

    def request_stop(self) -> None:
        """Ask the loop to end after the current step (safe from any thread)."""
        self._stop.set()

    def run(self) -> list[EpisodeSummary]:
        training_episodes = 0
        while not self._stop.is_set() and not self._enough_episodes():
            evaluation = self.config.eval_only
            self.summaries.append(self.run_episode(evaluation))
            if evaluation:
                continue
            training_episodes += 1
            if self.config.eval_every and training_episodes % self.config.eval_every == 0:
                for _ in range(self.config.eval_episodes):
                    if self._stop.is_set() or self._enough_episodes():
                        break
                    self.summaries.append(self.run_episode(evaluation=True))
        return self.summaries

    def _enough_episodes(self) -> bool:
        return bool(self.config.episodes) and len(self.summaries) >= self.config.episodes

    def run_episode(self, evaluation: bool) -> EpisodeSummary:
        """One episode from task reset to termination, truncation or a stop request."""
        self._swap_policy()
        record = self._recorder.start_episode(evaluation)
        observation = self.task.reset(self.robot)
        rate = RateLimiter(self.spec.control_hz, self.config.time_scale)
        reward, terminated, outcome = 0.0, False, "stopped"
        for step in range(self.task.max_steps):
            if self._stop.is_set():
                break
            self._swap_policy()
            try:
                normalized = self._act(observation, evaluation)
            except PolicyOutputError as exc:
                log.error("%s; stopping the robot and ending the episode", exc)
                self._m_policy_stops.inc()
                self.robot.stop()
                outcome = "policy_error"
                break
            executed = self.robot.send_action(self.spec.denormalize_action(normalized))
            self._tick(rate)
            next_observation = self.robot.get_observation()
            reward, terminated = self.task.reward(next_observation)
            truncated = not terminated and step + 1 >= self.task.max_steps
            self._recorder.record(
                observation, self.spec.normalize_action(executed), reward, terminated, truncated,
                next_observation, self._policy.version,
            )  # fmt: skip
            observation = next_observation
            if terminated or truncated:
                outcome = "task" if terminated else "step_limit"
                break
        self.robot.stop()
        success = terminated and reward > 0
        summary = self._recorder.finish_episode(success, outcome)
        self._count_episode(summary)
        return summary

    def _act(self, observation: dict[str, np.ndarray], evaluation: bool) -> np.ndarray:
        with Stopwatch() as watch:
            action = self._policy.act(observation, deterministic=evaluation)
        self._m_inference.observe(watch.seconds)
        return action

    def _tick(self, rate: RateLimiter) -> None:
        if rate.wait():
            self._m_overruns.inc()
        self._m_period.observe(rate.last_period_s)

    def _swap_policy(self) -> None:
        newer = self._take_policy(self._policy.version)
        if newer is not None:
            self._policy = newer
            self._m_version.set(newer.version)

    def _count_episode(self, summary: EpisodeSummary) -> None:
        mode = "eval" if summary.evaluation else "train"
        outcome = "success" if summary.success else "failure"
        metrics.ACTOR_EPISODES.labels(*self._labels, outcome, mode).inc()
        metrics.ACTOR_EPISODE_RETURN.labels(*self._labels, mode).set(summary.episode_return)
        metrics.ACTOR_EPISODE_LENGTH.labels(*self._labels, mode).set(summary.steps)
