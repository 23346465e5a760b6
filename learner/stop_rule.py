"""The local run's stop rule: a policy version at the target success, confirmed on fresh episodes.

The evaluator measures thousands of versions on one block of `window` episodes each, and the first to
score the target is the luckiest of them as much as the best: a version stopped on at 20/20 then scored
16/20 on the final evaluation (issue 23). So reaching the target only makes a version a candidate. Its
weights are published again as a new version, nothing newer is published while the evaluator runs one
fresh block on it (training goes on), and the run stops only if that block also reaches the target;
otherwise publication resumes and the candidate (with its confirmation version) never stops the run again.
The confirming block is not selected from many, so it measures the candidate without the selection's bias.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Protocol

from common.protocol import Weights
from learner.best_policy import BestPolicy, Tally

log = logging.getLogger(__name__)


class Publisher(Protocol):
    """What the stop rule needs of the training loop."""

    policy_version: int
    hold_publication: bool

    def republish(self, weights: Weights) -> None: ...


@dataclass
class StopRule:
    """Stop once a version reaches `target` over `window` evaluation episodes, and again on a fresh block."""

    best_policy: BestPolicy
    target: float
    window: int
    confirm: bool = True  # False: stop at the first version that reaches the target (selection-biased)
    confirming: tuple[int, int] | None = None  # (candidate version, the version it is confirmed as)
    refuted: set[int] = field(default_factory=set)  # versions that no longer count: failed to confirm, or weights gone

    def check(self, loop: Publisher) -> Tally | None:
        """Called between updates; the tally to stop on, or None to train on."""
        if self.confirming is not None:
            return self._confirmation(loop)
        reached = self.best_policy.reached(self.target, self.window, exclude=self.refuted)
        if reached is None or not self.confirm:
            return reached
        weights = self.best_policy.weights_of(reached.version)
        if weights is None:  # pushed out of memory already: it cannot be confirmed, nor deployed
            self.refuted.add(reached.version)
            return None
        loop.republish(weights)
        loop.hold_publication = True
        self.confirming = (reached.version, loop.policy_version)
        log.info("%s reached the target; confirming it on %d fresh episodes as v%d (publication held)",
                 reached.describe(), self.window, loop.policy_version)  # fmt: skip
        return None

    def _confirmation(self, loop: Publisher) -> Tally | None:
        candidate, confirmation = self.confirming
        # Its first block only: the evaluator may start another one on it before this check runs.
        block = self.best_policy.outcomes_of(confirmation)[: self.window]
        if len(block) < self.window:
            return None
        tally = Tally(confirmation, sum(block), len(block))
        loop.hold_publication = False
        self.confirming = None
        if tally.successes >= self.target * tally.episodes:
            log.info("v%d confirmed: %s", candidate, tally.describe())
            return tally
        self.refuted.update((candidate, confirmation))
        log.info("v%d did not hold up on fresh episodes (%s); training on", candidate, tally.describe())
        return None
