"""Lockstep pacing of a simulated actor with its learner (`actor --pace-utd R`), for matched comparisons.

A simulator makes data at a fixed rate while a slow algorithm updates slowly, so capping a run's
gradient updates alone leaves its env steps unmatched. A paced actor waits at a training step boundary
while (transitions it has sent) x R > (the learner's updates) + slack, reading the learner's update
count from `Ack.learner_updates`. With the learner's own `--utd R` (which holds the learner back when
the data is short) a run then makes R updates per env step from both sides, whatever either one's speed.

The wait is on a condition, woken by every ack that carries a new count, by a stop request (Ctrl-C)
and by the operator's stopping keys (pause, labels, e-stop: the robot itself is stopped on the key
thread, as always). It is never a sleep loop. Past a passing check the actor can send at most two more
transitions: the step under way, and the one the recorder held back until its episode's end was known.

A learner that never updates: the slack lets the actor send slack / R transitions before the learner's
first update, which must cover what the learner needs before it can update: its `learning_starts`
transitions (200 by default), the transitions in flight, and for algorithms that store whole episodes
(Cal-QL's returns-to-go) the current episode. The default slack is R x (200 + one episode + one batch).
With too small a slack, or a learner whose own `--utd` is below R, or one that has stopped, the actor
waits: a warning names the causes every `WARN_AFTER_S`, and Ctrl-C or a stop always ends the wait.
The run itself never hangs for good: the learner ends it (`--max-updates`, or `--max-minutes` when it
stops updating) and stops its local actors, whose stop ends the wait.
A restarted actor (or one joining a learner that has trained, e.g. after `learner --resume`) starts its
count where a lockstep actor would stand: the first ack's update count / R, so it does not run unpaced
until its own count catches up with the learner.

Evaluation on the same grid (`--eval-every-updates N`): an open-ended evaluator beside a paced actor
starts a block only at the learner's next multiple of N updates after its previous block began, so a
slow algorithm is not evaluated more often per update than a fast one (more blocks would also give it
more chances at a lucky all-success block). A block that lasts longer than N updates makes that run's
grid coarser. An evaluator asks for a newer policy only at a block's start (and while waiting for the
first weights, which is not held back), so the wait is in its policy intake.

Refused for a real robot: a real robot would stand mid-episode waiting for a learner, so only
simulated robots (`spec.metadata["simulated"] == "true"`: twins and the fake robot) can be paced.
"""

from __future__ import annotations

import logging
import math
import threading
from typing import Callable

from common.specs import RobotSpec
from common.types import Transition

log = logging.getLogger(__name__)

WARN_AFTER_S = 60.0  # a wait this long is logged with its cause (the wait itself goes on)
LEARNER_LEARNING_STARTS = 200  # the learner's default learning_starts (TrainConfig), which the slack must cover


def check_pacing(spec: RobotSpec, ratio: float, slack: int) -> None:
    """Refuse pacing a real robot, or a ratio/slack that is not positive/non-negative."""
    if ratio <= 0 or slack < 0:
        raise ValueError(f"--pace-utd must be > 0 and --pace-slack >= 0, got {ratio} and {slack}")
    if spec.metadata.get("simulated") != "true":
        raise ValueError(f"--pace-utd is only for simulated robots: {spec.name} is a real robot and must not "
                         f"stand still mid-episode waiting for the learner")  # fmt: skip


def default_slack(ratio: float, max_episode_steps: int, batch_size: int) -> int:
    """R x (learning_starts + one episode + one batch): what the learner may lack before it can update."""
    return int(ratio * (LEARNER_LEARNING_STARTS + max_episode_steps + batch_size))


class Pacer:
    """Counts the transitions this actor sends and holds the control loop while it is ahead of the learner."""

    def __init__(self, ratio: float, slack: int, block_every: int = 0) -> None:
        self.ratio, self.slack = ratio, slack  # ratio 0: the actor's steps are not paced
        self.block_every = block_every  # an evaluator's block grid in learner updates (0: none)
        self.sent = 0  # transitions handed to the sender
        self.learner_updates = 0  # the newest count an ack brought
        self.waits = 0  # times the actor had to wait (at a step boundary, or an evaluator before a block)
        self.waiting = False  # the control loop is waiting for the learner now (either wait)
        self._changed = threading.Condition()
        self._released = False  # stopping: never wait again
        self._nudged = False  # an operator key: end this wait so the loop can look at it
        self._synced = False  # the first ack has set where this actor's count starts

    def count_sent(self, item: object) -> None:
        """Called for every item submitted to the sender; transitions are counted."""
        if isinstance(item, Transition):
            with self._changed:
                self.sent += 1

    def on_learner_updates(self, updates: int) -> None:
        """Sender thread: an ack carried the learner's update count."""
        with self._changed:
            if not self._synced and self.ratio > 0:
                self._synced = True
                self.sent = max(self.sent, math.ceil(updates / self.ratio))  # a restart resumes lockstep
            if updates != self.learner_updates:
                self.learner_updates = updates
                self._changed.notify_all()

    def release(self) -> None:
        """Stopping (Ctrl-C, SIGTERM, refusal): end any wait now and never wait again."""
        with self._changed:
            self._released = True
            self._changed.notify_all()

    def nudge(self) -> None:
        """An operator key: end the current wait once so the control loop can handle the key."""
        with self._changed:
            self._nudged = True
            self._changed.notify_all()

    def ahead(self) -> bool:
        """True while sent x R > learner updates + slack."""
        return self.sent * self.ratio > self.learner_updates + self.slack

    def wait_for_updates(self, target: int) -> bool:
        """Wait until the learner reports at least `target` updates; False if released (stopping) first."""
        with self._changed:
            self.waiting = True
            self.waits += self.learner_updates < target
            while self.learner_updates < target and not self._released:
                self._changed.wait()
            self.waiting = False
            return not self._released

    def wait_turn(self) -> bool:
        """At a training step boundary: wait while ahead of the learner. Returns whether it waited."""
        with self._changed:
            if not self.ahead() or self._released:
                return False
            self.waits, self.waiting = self.waits + 1, True
            while self.ahead() and not self._released and not self._nudged:
                if not self._changed.wait(timeout=WARN_AFTER_S):
                    log.warning("paced: waiting %.0f s for the learner (sent %d transitions x %g > %d updates + "
                                "slack %d); is its --utd below %g, or has it stopped updating?", WARN_AFTER_S,
                                self.sent, self.ratio, self.learner_updates, self.slack, self.ratio)  # fmt: skip
            self._nudged = self.waiting = False
            return True


def spaced_intake(take_newer: Callable[[int], object], pacer: Pacer, every: int) -> Callable[[int], object]:
    """An evaluator's policy intake on a grid of `every` learner updates (see the module docstring)."""
    next_block = 0

    def take(version: int) -> object:
        nonlocal next_block
        if version >= 0:  # holding a policy: this is a block's start
            if not pacer.wait_for_updates(next_block):
                return None  # stopping
            next_block = (pacer.learner_updates // every + 1) * every
        return take_newer(version)

    return take


def stopping_wakes(stop_robot: Callable[[], None], pacer: Pacer | None) -> Callable[[], None]:
    """The operator's stop: the robot stops at once, and a paced loop stops waiting to see the key."""
    if pacer is None:
        return stop_robot

    def stop_and_nudge() -> None:
        stop_robot()
        pacer.nudge()

    return stop_and_nudge


def counting_submit(submit: Callable[[object], bool], pacer: Pacer | None,
                    eval_data: bool) -> Callable[[object], bool]:
    """The loop's submit: evaluation transitions left out when `eval_data` is False; what is sent is counted."""

    def send(item: object) -> bool:
        if not eval_data and isinstance(item, Transition) and item.evaluation:
            return True  # measured, not fed to replay (the episode's summary still goes)
        sent = submit(item)
        if sent and pacer is not None:
            pacer.count_sent(item)
        return sent

    return send
