"""The best policy that evaluation has seen: which version, how well it did, and its weights on disk.

Evaluation episodes each act with one policy version (actor/loop.py holds the version for a whole
block). The learner keeps the weights of its recent publications (bounded in bytes), tallies every
version's evaluation episodes, and ranks versions by the Wilson lower bound of their success rate, so
5/5 outranks 1/1 and 20/20 outranks 5/5; on a tie the newer version wins (it trained longer). Whenever
the best version or its tally changes, its weights go to `best_policy.npz`: what a user deploys after
hours of training is the policy that did best, not whichever version the run happened to end on.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from common.protocol import EpisodeSummary, Weights
from common.specs import RobotSpec

log = logging.getLogger(__name__)

WILSON_Z = 1.96  # 95 % two-sided
BEST_POLICY_FILE = "best_policy.npz"


@dataclass
class Tally:
    """Evaluation episodes of one policy version."""

    version: int
    successes: int = 0
    episodes: int = 0
    outcomes: list[bool] = field(default_factory=list, repr=False)  # in arrival order (the stop rule's first block)

    @property
    def lower_bound(self) -> float:
        """Wilson score lower bound of the success rate (0 with no episodes)."""
        n = self.episodes
        if n == 0:
            return 0.0
        p, z2 = self.successes / n, WILSON_Z**2
        centre = p + z2 / (2 * n)
        spread = WILSON_Z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
        return (centre - spread) / (1 + z2 / n)

    def describe(self) -> str:
        return f"v{self.version}: {self.successes}/{self.episodes} evaluation successes"


def save_weights(weights: Weights, path: Path, tally: Tally, spec: RobotSpec | None = None) -> None:
    """Write `weights` (with what rebuilds the policy, its evaluation tally and, given, the robot spec it was
    trained for, so a robot it does not fit can say how: `saved_spec`) atomically to `path`."""
    meta = {"version": weights.version, "algorithm": weights.algorithm, "spec_hash": weights.spec_hash,
            "policy_config_json": weights.policy_config_json, "successes": tally.successes,
            "episodes": tally.episodes, "policy": weights.policy, "program": weights.program,
            "program_config_json": weights.program_config_json,
            "spec_json": spec.to_json() if spec is not None else ""}  # fmt: skip
    partial = path.with_name(path.name + ".partial")
    with partial.open("wb") as handle:
        np.savez(handle, meta_json=np.array(json.dumps(meta)), **{f"tensor/{k}": v for k, v in weights.tensors.items()})
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)


def load_weights(path: str | Path) -> tuple[Weights, Tally]:
    """Read a `save_weights` file back (a file from before policy programs runs its policy one step at a time)."""
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["meta_json"]))
        tensors = {k.removeprefix("tensor/"): data[k] for k in data.files if k.startswith("tensor/")}
    weights = Weights(meta["version"], meta["algorithm"], meta["policy_config_json"], meta["spec_hash"], tensors,
                      policy=meta.get("policy", "online"), program=meta.get("program", "one_step"),
                      program_config_json=meta.get("program_config_json", "{}"))  # fmt: skip
    return weights, Tally(meta["version"], meta["successes"], meta["episodes"])


def saved_spec(path: str | Path) -> RobotSpec | None:
    """The robot spec a `save_weights` file was trained for (None in a file written without one)."""
    with np.load(path, allow_pickle=False) as data:
        text = json.loads(str(data["meta_json"])).get("spec_json", "")
    return RobotSpec.from_json(text) if text else None


class BestPolicy:
    """Tracks the best-evaluated policy version. `remember` runs on the training thread (every publish),
    `observe` on the server thread (every episode summary); both are cheap."""

    def __init__(self, path: str | Path, keep_bytes: int = 256 << 20) -> None:
        self.path = Path(path)
        self.keep_bytes = keep_bytes
        self._lock = threading.Lock()
        self._recent: OrderedDict[int, Weights] = OrderedDict()  # version -> weights, oldest first
        self._bytes = 0
        self._tallies: dict[int, Tally] = {}
        self.best: Tally | None = None
        self.best_weights: Weights | None = None
        self._loaded: Tally | None = None  # the saved best a resumed run started from
        self._settled = False  # the run has chosen its policy: later episodes are counted, the best stays
        self.spec: RobotSpec | None = None  # the run's robot spec, saved with the weights (set once it is known)

    def load_saved(self) -> None:
        """A resumed run starts from the best it had saved, so a worse policy never overwrites it."""
        if self.path.exists():
            weights, tally = load_weights(self.path)
            with self._lock:
                self.best, self.best_weights = tally, weights
                self._tallies[tally.version] = tally
                self._loaded = tally
            log.info("resumed best policy %s from %s", tally.describe(), self.path)

    def remember(self, weights: Weights) -> None:
        """Keep a published version's weights until newer ones push it out of the byte budget."""
        size = sum(t.nbytes for t in weights.tensors.values())
        with self._lock:
            self._recent[weights.version] = weights
            self._bytes += size
            while len(self._recent) > 1 and self._bytes > self.keep_bytes:
                version, old = self._recent.popitem(last=False)
                self._bytes -= sum(t.nbytes for t in old.tensors.values())
                if self.best is None or version != self.best.version:
                    self._tallies.pop(version, None)

    def observe(self, summary: EpisodeSummary) -> None:
        """Count an evaluation episode towards its version; saves the weights when the best changes."""
        if not summary.evaluation or summary.policy_version < 0:
            return
        version = summary.policy_version
        with self._lock:
            if version not in self._recent and (self.best is None or version != self.best.version):
                return  # weights no longer held (or published before a restart): it cannot be deployed
            tally = self._tallies.setdefault(version, Tally(version))
            tally.episodes += 1
            tally.successes += int(summary.success)
            tally.outcomes.append(summary.success)
            self._choose_best(tally)

    def settle(self, chosen: Tally | None = None) -> None:
        """Fix the run's policy when training stops: `chosen` (the version the stop rule confirmed, its weights
        still held) or else the best so far. Episodes that arrive afterwards (a block the evaluator had under
        way, the final evaluation) are still counted but no longer choose: otherwise a version that scored 20/20
        on one block of many, never confirmed, could replace the confirmed one (a run did, 2026-12-08)."""
        with self._lock:
            weights = self._recent.get(chosen.version) if chosen is not None else None
            if weights is None:
                # Nothing evaluated yet (no evaluator ran): the final evaluation's version may still become it.
                self._settled = self._settled or self.best is not None
                return
            self._settled = True
            if self.best is None or self.best.version != chosen.version:
                log.info("the run's policy: %s (best so far was %s)", chosen.describe(),
                         self.best.describe() if self.best else "none")  # fmt: skip
            self.best, self.best_weights = chosen, weights
            self._save(chosen)

    def reached(self, target: float, min_episodes: int, exclude: set[int] | frozenset = frozenset()) -> Tally | None:
        """A version still held, not in `exclude`, whose success rate over at least `min_episodes` evaluation
        episodes is >= target.

        A resumed run's saved best does not count: resuming means training on, not stopping at once."""
        with self._lock:
            for tally in self._tallies.values():
                enough = tally is not self._loaded and tally.episodes >= min_episodes
                if enough and tally.version not in exclude and tally.successes >= target * tally.episodes:
                    return tally
        return None

    def outcomes_of(self, version: int) -> list[bool]:
        """`version`'s evaluation successes in the order they arrived (empty before the first)."""
        with self._lock:
            tally = self._tallies.get(version)
            return list(tally.outcomes) if tally is not None else []

    def weights_of(self, version: int) -> Weights | None:
        """`version`'s weights while they are still held."""
        with self._lock:
            return self._recent.get(version)

    def _choose_best(self, changed: Tally) -> None:
        if self._settled:
            return
        # Only versions whose weights we still hold can become the best.
        candidates = [t for t in self._tallies.values() if t.version in self._recent or t is self.best]
        top = max(candidates, key=lambda t: (t.lower_bound, t.version))
        if top is not self.best:
            previous = self.best
            self.best, self.best_weights = top, self._recent[top.version]
            log.info("best policy so far: %s (was %s)", top.describe(), previous.describe() if previous else "none")
        elif changed is not top:
            return
        self._save(top)

    def _save(self, tally: Tally) -> None:
        try:
            save_weights(self.best_weights, self.path, tally, self.spec)
        except OSError as exc:  # a full disk must not stop training; the best stays in memory
            log.error("could not write %s: %s", self.path, exc)
