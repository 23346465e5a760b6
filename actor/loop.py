"""THE control loop: observe, act, wait for the tick, observe again, record. Never waits on the network.

One step:
  operator events (label, reset, pause, e-stop) -> policy (swapped in only here, at the step boundary)
  or, while the operator intervenes, the teleop action -> denormalise -> robot.send_action (the same
  safety clipping for both; returns what was executed) -> RateLimiter tick -> next observation ->
  task reward / termination -> recorder (stamps, queues for the sender).

An episode ends by the task (terminated), the step limit (truncated), an operator label (the task's
own success/failure reward and termination), an operator reset or e-stop (truncated), or a stop
request. `EpisodeSummary.outcome_source` says which: task, step_limit, operator, stopped, policy_error.

Training episodes take the newest policy at every step boundary, except while a policy program still
has queued actions of a chunk: then at its next re-plan (`ActingPolicy.mid_chunk`). A program's queue
is cleared at the episode's end, when the operator intervenes and while paused or e-stopped
(`ActingPolicy.interrupt`). Evaluation is deterministic and measures one policy version: a block of
`eval_episodes` holds the version it started with. An evaluation-only actor runs such blocks back to
back (beside a training actor, or after training).

Episode videos (`actor.videos`, optional) get the first observation, one per step and the outcome;
which episodes they film is theirs to decide.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np

from actor.operator import Operator
from actor.policy import ActingPolicy, PolicyOutputError, RandomPolicy
from actor.recorder import EpisodeRecord, Recorder
from actor.status import Status
from common import metrics
from common.protocol import DEFAULT_EVAL_EPISODES, EpisodeSummary
from common.timing import PeriodLog, RateLimiter, Stopwatch
from common.types import PROPOSAL_FIRST, PROPOSAL_NONE, PROPOSAL_SECOND, Transition
from robots.base import Robot, Task

if TYPE_CHECKING:
    from actor.videos import EpisodeVideos  # PyAV loads only in actors that film

log = logging.getLogger(__name__)
PROPOSAL_LABEL = {PROPOSAL_NONE: "single", PROPOSAL_FIRST: "first", PROPOSAL_SECOND: "second"}


@dataclass
class LoopConfig:
    """What the actor runs."""

    episodes: int = 0  # stop after this many episodes (0: until stopped)
    eval_every: int = 0  # after every N training episodes run `eval_episodes` deterministic ones (0: never)
    eval_episodes: int = DEFAULT_EVAL_EPISODES  # episodes per evaluation block
    eval_only: bool = False  # only evaluation blocks (an evaluator beside training, or the final evaluation)
    time_scale: float = 1.0  # >1 runs a simulator faster than real time; real robots must use 1
    seed: int = 0  # seed of the random policy used before the first weights
    hold_until_start: bool = False  # real robots: hold still until the first weights or the start key, not explore
    period_log: str = ""  # write every tick's time, period and policy version here (common.timing.PeriodLog)

    def __post_init__(self) -> None:
        if self.episodes < 0 or self.eval_every < 0 or self.eval_episodes < 1 or self.time_scale <= 0:
            raise ValueError("episodes/eval_every >= 0, eval_episodes >= 1 and time_scale > 0 are required")


class ActorLoop:
    """Runs episodes of `task` on `robot`, acting with the newest policy `take_policy` offers.

    `operator` (optional) brings the operator's keys in; `on_status` receives a `Status` every step;
    `on_episode` receives each finished episode's record (with its transitions when `keep_transitions`);
    `before_training_step` runs at every training step boundary and returns whether it waited (lockstep
    pacing, `actor.pacing`), so the wait is not counted as a control-period overrun. `videos` (optional)
    films episodes (`actor.videos.EpisodeVideos`). `hold` sees each transition as it is recorded, before
    `submit` gets it (`Sender.hold`: the spool logs it at once). `before_step` (optional) is called with
    (step in the episode, evaluation?) right before each action is chosen: a simulated operator presses its
    keys there (`actor/corrector.py`).
    """

    def __init__(
        self,
        robot: Robot,
        task: Task,
        submit: Callable[[object], object],
        take_policy: Callable[[int], ActingPolicy | None],
        config: LoopConfig,
        actor_id: str,
        operator: Operator | None = None,
        on_status: Callable[[Status], None] | None = None,
        on_episode: Callable[[EpisodeRecord, EpisodeSummary], None] | None = None,
        keep_transitions: bool = False,
        before_training_step: Callable[[], bool] | None = None,
        videos: EpisodeVideos | None = None,
        hold: Callable[[Transition], None] | None = None,
        before_step: Callable[[int, bool], None] | None = None,
    ) -> None:
        self.robot, self.task, self.config = robot, task, config
        self._before_training_step = before_training_step or (lambda: False)
        self._before_step = before_step or (lambda _step, _evaluation: None)
        self.spec = robot.spec
        self._take_policy = take_policy
        self._recorder = Recorder(submit, keep_transitions, hold)
        self._policy: ActingPolicy = RandomPolicy(self.spec, config.seed)
        self._policy_since = time.monotonic()
        self._stop = threading.Event()
        self._started = False  # hold_until_start: the first weights arrived or the operator pressed start
        self._waiting = False  # holding for that now
        self.operator = operator or Operator(self.spec, robot.stop)
        self._on_status = on_status or (lambda _s: None)
        self._on_episode = on_episode or (lambda _r, _s: None)
        self._videos = videos
        self._evaluation_blocks = 0  # evaluation blocks started: an episode's place is (block, index)
        self.summaries: list[EpisodeSummary] = []
        self.status = Status()
        self._recent = collections.deque(maxlen=20)
        labels = (actor_id, self.spec.name)
        self._m_period = metrics.ACTOR_CONTROL_PERIOD.labels(*labels)
        self._m_overruns = metrics.ACTOR_CONTROL_OVERRUNS.labels(*labels)
        inference = metrics.ACTOR_POLICY_INFERENCE
        self._m_inference = {kind: inference.labels(*labels, kind) for kind in metrics.INFERENCE_STEPS}
        self._m_proposals = {name: metrics.ACTOR_PROPOSALS.labels(*labels, name) for name in metrics.PROPOSALS}
        self._m_version = metrics.ACTOR_POLICY_VERSION.labels(*labels)
        self._m_policy_stops = metrics.ACTOR_SAFETY_STOPS.labels(*labels, "policy_output")
        self._m_interventions = metrics.ACTOR_INTERVENTIONS.labels(*labels)
        self._labels = labels
        self._period_log = PeriodLog(config.period_log) if config.period_log else None

    def request_stop(self) -> None:
        """Ask the loop to end after the current step (safe from any thread)."""
        self._stop.set()

    def run(self) -> list[EpisodeSummary]:
        training_episodes = 0
        try:
            while not self._stop.is_set() and not self._enough_episodes():
                if not self._wait_for_release():
                    break
                if self.config.hold_until_start and not self._wait_for_start():
                    break
                if self.config.eval_only:  # back-to-back blocks, each of one version (an evaluator beside training)
                    if not self._wait_for_first_weights():
                        break
                    self._run_evaluation_block()
                    continue
                self.summaries.append(self.run_episode(evaluation=False))
                training_episodes += 1
                if self.config.eval_every and training_episodes % self.config.eval_every == 0:
                    self._run_evaluation_block()
        finally:
            if self._videos is not None:
                self._videos.close()  # an episode cut by an exception leaves no temporary file behind
            if self._period_log is not None:
                self._period_log.flush()
        return self.summaries

    def _run_evaluation_block(self) -> None:
        """`eval_episodes` deterministic episodes of ONE policy version (taken at the block's start), so the
        block's success rate measures that version and the learner can keep it if it is the best so far."""
        block = self._evaluation_blocks
        self._evaluation_blocks += 1
        for index in range(self.config.eval_episodes):
            if self._stop.is_set() or self._enough_episodes() or not self._wait_for_release():
                break
            self.summaries.append(self.run_episode(evaluation=True, take_newer_policy=index == 0, place=(block, index)))

    def _wait_for_start(self) -> bool:
        """A real robot does not explore with random actions on its own: before the learner's first weights it
        holds still (stopped every control period, as when paused) until they arrive or the operator presses
        the start key. False if a stop request came first. Holds once per run: after that the robot acts."""
        self._swap_policy()
        if self._started or self._policy.version >= 0 or self.operator.start_requested():
            self._started = True
            return True
        start = "/".join(self.operator.keymap.bindings["start"]) or "(no key bound)"
        log.warning("holding still until the learner's first weights arrive; press %s to start with random "
                    "actions now (--explore-before-weights skips this wait)", start)
        rate = RateLimiter(self.spec.control_hz, self.config.time_scale)
        self._waiting = True
        try:
            while not self._stop.is_set():
                self._hold(rate)
                self._swap_policy()
                if self._policy.version >= 0 or (self.operator.start_requested() and not self.operator.estopped):
                    self._started = True
                    log.info("acting: %s", "the learner's first weights arrived" if self._policy.version >= 0
                             else "the operator pressed start")  # fmt: skip
                    return True
            return False
        finally:
            self._waiting = False

    def _wait_for_first_weights(self) -> bool:
        """Evaluation-only actors do not evaluate the random policy: wait for the learner's first weights."""
        if self._policy.version >= 0:
            return True
        log.info("waiting for the learner's weights before evaluating")
        while not self._stop.is_set():
            self._swap_policy()
            if self._policy.version >= 0:
                return True
            self._stop.wait(0.05)
        return False

    def _enough_episodes(self) -> bool:
        return bool(self.config.episodes) and len(self.summaries) >= self.config.episodes

    def run_episode(self, evaluation: bool, take_newer_policy: bool = True,
                    place: tuple[int, int] = (-1, -1)) -> EpisodeSummary:  # fmt: skip
        """One episode from task reset to its end (see the module docstring for the ways it can end).

        Training episodes take a newer policy at every step; an evaluation episode acts with one version
        throughout (taken at its start, or held from earlier in its block when `take_newer_policy` is False).
        `place` is an evaluation episode's (block, index in the block).
        """
        if take_newer_policy:
            self._swap_policy()
        self.operator.begin_episode()  # a label pressed between episodes belongs to none
        self._recorder.start_episode(evaluation)
        self.status.episode += 1
        # An e-stop that raced in after the release check must not be followed by a (moving) task reset.
        observation = self.robot.get_observation() if self.operator.estopped else self.task.reset(self.robot)
        if self._videos is not None:
            self._videos.start(observation, evaluation, *place)
        rate = RateLimiter(self.spec.control_hz, self.config.time_scale)
        outcome, reward, terminated = None, 0.0, False
        while outcome is None:
            if not evaluation and self._before_training_step():
                rate.restart()  # waited for the learner (pacing): not an overrun; stop and keys are checked next
            outcome = "stopped" if self._stop.is_set() else self.operator.take_end()
            if outcome:
                break
            if self.operator.holding():
                self._hold(rate)
                observation = self.robot.get_observation()  # the world may have moved while paused
                continue
            if not evaluation:
                self._swap_policy()
            self._before_step(self._recorder.current.steps, evaluation)
            try:
                normalized, intervention, proposal = self._choose_action(observation, evaluation)
            except PolicyOutputError as exc:
                log.error("%s; stopping the robot and ending the episode", exc)
                self._m_policy_stops.inc()
                outcome = "policy_error"
                break
            with self.operator.motion_gate() as allowed:
                if not allowed:
                    continue  # a key arrived after the checks above: it is handled on the next pass
                executed = self.robot.send_action(self.spec.denormalize_action(normalized))
            self._tick(rate)
            next_observation = self.robot.get_observation()
            reward, terminated = self.task.reward(next_observation)
            steps = self._recorder.current.steps + 1
            truncated = not terminated and steps >= self.task.max_steps
            self._recorder.record(
                observation, self.spec.normalize_action(executed), reward, terminated, truncated,
                next_observation, self._policy.version, intervention, proposal,
            )  # fmt: skip
            if self._videos is not None:
                self._videos.add(next_observation)
            self._m_interventions.inc(int(intervention))
            self._m_proposals["operator" if intervention else PROPOSAL_LABEL[proposal]].inc()
            observation = next_observation
            self._show(rate)
            if terminated or truncated:
                outcome = "task" if terminated else "step_limit"
        self.robot.stop()
        self._policy.interrupt()  # a plan never outlives its episode
        return self._finish(outcome, reward, terminated)

    def _finish(self, outcome: str, reward: float, terminated: bool) -> EpisodeSummary:
        final = None
        if outcome in ("success", "failure"):
            final = self.task.operator_label(outcome == "success")
            reward, terminated = final
        elif outcome == "reset" or outcome == "estop":
            log.info("episode cut by the operator (%s)", outcome)
        decided = outcome in ("task", "success", "failure")
        success = decided and self._recorder.current.steps > 0 and terminated and reward > 0
        source = "operator" if outcome in ("success", "failure", "reset", "estop") else outcome
        end_reason = self.task.end_reason if outcome == "task" else outcome  # an operator's label, reset, estop, ...
        summary = self._recorder.finish_episode(success, source, final, end_reason)
        if self._videos is not None:
            self._videos.end(summary, outcome)
        if summary.steps:  # an episode stopped before its first step is not one (the recorder did not send it)
            self._count_episode(summary)
        self._on_episode(self._recorder.current, summary)
        return summary

    def _choose_action(self, observation: dict[str, np.ndarray], evaluation: bool) -> tuple[np.ndarray, bool, int]:
        """(normalised action, chosen by the operator?, which proposal of the policy ran)."""
        if self.operator.intervening:
            self._policy.interrupt()  # after the operator lets go, the policy plans from where the robot is
            return self.operator.teleop_action(), True, PROPOSAL_NONE
        with Stopwatch() as watch:
            action = self._policy.act(observation, deterministic=evaluation)
        self._m_inference[self._policy.step_kind].observe(watch.seconds)
        return action, False, self._policy.proposal

    def _hold(self, rate: RateLimiter) -> None:
        """One control period of holding still (paused or e-stopped): stop again, keep the status fresh."""
        self.robot.stop()
        self._policy.interrupt()  # the world moves on while held: no stale plan resumes afterwards
        rate.wait()
        rate.restart()  # a pause is not an overrun
        self._show(rate)

    def _wait_for_release(self) -> bool:
        """Between episodes: hold while e-stopped; False if a stop request came instead of a release."""
        if not self.operator.estopped:
            return not self._stop.is_set()
        release = "/".join(self.operator.keymap.bindings["release"])
        log.warning("E-STOPPED: robot held; press %s to release, Ctrl-C to quit", release)
        rate = RateLimiter(self.spec.control_hz, self.config.time_scale)
        while self.operator.estopped and not self._stop.is_set():
            self._hold(rate)
        self.operator.take_end()
        return not self._stop.is_set()

    def _tick(self, rate: RateLimiter) -> None:
        if rate.wait():
            self._m_overruns.inc()
            self.status.overruns += 1
        self._m_period.observe(rate.last_period_s)
        if self._period_log is not None:
            self._period_log.record(rate.last_period_s, self._policy.version)

    def _show(self, rate: RateLimiter) -> None:
        status, record = self.status, self._recorder.current
        if record is not None:
            status.step, status.episode_return = record.steps, record.episode_return
        status.policy_version, status.policy_age_s = self._policy.version, time.monotonic() - self._policy_since
        if rate.last_period_s > 0:
            measured = 1.0 / rate.last_period_s
            status.rate_hz = 0.9 * status.rate_hz + 0.1 * measured if status.rate_hz else measured
        status.mode, status.speed = self.operator.mode(), self.operator.speed
        if self._waiting and status.mode == "policy":
            status.mode = "WAITING"  # for the first weights or the start key
        if self.operator.stop_latencies_s:
            status.last_stop_ms = 1000 * self.operator.stop_latencies_s[-1]
        self._on_status(status)

    def _swap_policy(self) -> None:
        if self._policy.mid_chunk:
            return  # new weights take over at the next re-plan, never in the middle of a chunk
        newer = self._take_policy(self._policy.version)
        if newer is not None:
            self._policy = newer
            self._policy_since = time.monotonic()
            self._m_version.set(newer.version)

    def _count_episode(self, summary: EpisodeSummary) -> None:
        mode = "eval" if summary.evaluation else "train"
        outcome = "success" if summary.success else "failure"
        metrics.ACTOR_EPISODES.labels(*self._labels, outcome, mode).inc()
        metrics.ACTOR_EPISODE_RETURN.labels(*self._labels, mode).set(summary.episode_return)
        metrics.ACTOR_EPISODE_LENGTH.labels(*self._labels, mode).set(summary.steps)
        self._recent.append(summary.success)
        self.status.successes += int(summary.success)
        self.status.recent_episodes = len(self._recent)
        self.status.recent_success_rate = sum(self._recent) / len(self._recent)
        log.info(
            "episode %d: %s by %s (%s) after %d steps, return %.2f, %d intervention steps",
            self.status.episode, "success" if summary.success else "no success", summary.outcome_source,
            summary.end_reason, summary.steps, summary.episode_return, summary.interventions,
        )  # fmt: skip
