"""The learner's training loop: sample per the algorithm's SamplingSpec, update, publish weights, checkpoint.

The update rate follows the data: at most `utd_ratio` gradient updates per online transition received
(so a slow robot is not over-fitted and a fast simulator is not starved), starting once
`learning_starts` online transitions are in replay. Offline-stage updates (`offline_step`, driven by
`learner.stages`) are counted apart and do not count toward that cap: it is about online data.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np
import torch

from common import metrics
from common.protocol import Weights
from learner.algorithms.base import Algorithm
from learner.diagnostics import Diagnostics
from learner.replay.batches import to_torch
from learner.replay.buffer import ReplayBuffer
from learner.replay.spec import SamplingSpec
from learner.replay.samplers import NothingToSample

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """How often the learner updates, publishes and checkpoints."""

    utd_ratio: float = 1.0  # gradient updates per online transition received
    learning_starts: int = 200  # online transitions in replay before the first update
    publish_every: int = 25  # updates between weight publications
    checkpoint_every: int = 5000  # updates between checkpoints (0: only at the end)
    max_updates: int = 0  # stop after this many online updates (0: no limit); offline-stage updates not counted

    def __post_init__(self) -> None:
        if self.utd_ratio <= 0 or self.publish_every < 1:
            raise ValueError("utd_ratio must be positive and publish_every at least 1")
        if self.learning_starts < 0 or self.checkpoint_every < 0 or self.max_updates < 0:
            raise ValueError("learning_starts, checkpoint_every and max_updates must be >= 0")


# Rows of training metrics kept for train_metrics.csv (one per publish until thinned).
MAX_HISTORY = 10_000


class TrainLoop:
    """Drives one algorithm from one replay buffer; `publish` sends weights to the actors."""

    def __init__(
        self,
        algorithm: Algorithm,
        algorithm_name: str,
        policy_config: dict,
        replay: ReplayBuffer,
        publish: Callable[[Weights], None],
        config: TrainConfig,
        checkpoint: Callable[["TrainLoop"], None] | None = None,
        seed: int = 0,
    ) -> None:
        self.algorithm, self.replay, self.config = algorithm, replay, config
        self._publish = publish
        self._checkpoint = checkpoint or (lambda _loop: None)
        self._algorithm_name = algorithm_name
        self._policy_config_json = json.dumps(policy_config, sort_keys=True)
        self._rng = np.random.default_rng(seed)
        self.updates = 0  # online updates (what the update-to-data cap and --max-updates count)
        self.offline_updates = 0  # updates of offline stages
        self.policy_version = 0
        self.hold_publication = False  # the stop rule holds the periodic publications while it confirms a version
        self.last_metrics: dict[str, float] = {}
        self.received = 0  # online transitions received (not capped by the replay capacity)
        self.data_arrived = threading.Event()
        self.diagnostics = Diagnostics()
        # (updates, online transitions received, metrics) at every publish, for train_metrics.csv.
        self.history: list[tuple[int, int, dict[str, float]]] = []

    def note_received(self, count: int) -> None:
        """Called by the receive thread after storing `count` online transitions."""
        self.received += count
        self.data_arrived.set()

    def updates_allowed(self) -> int:
        """How many updates the data received so far permits."""
        if self.received < self.config.learning_starts:
            return 0
        return int(self.received * self.config.utd_ratio)

    def step(self) -> bool:
        """Do one update if the data allows it; returns whether it did."""
        if self.updates >= self.updates_allowed():
            return False
        try:
            sampled = self.replay.sample(self.algorithm.sampling, self._rng)
        except NothingToSample:  # e.g. returns-to-go before any episode has ended: wait for more data
            return False
        batch = to_torch(sampled, self.algorithm.device)
        start = time.perf_counter()
        # Merged, not replaced: an algorithm that steps its actor every k-th update (policy_delay) reports the
        # actor's metrics on those updates only, and a publish on any other would record them as missing.
        self.last_metrics.update(self.algorithm.update(batch))
        metrics.LEARNER_UPDATE_SECONDS.observe(time.perf_counter() - start)
        self.last_metrics.update(self.diagnostics.measure(self.algorithm, batch, self.last_metrics))
        metrics.LEARNER_UPDATES.inc()
        self.updates += 1
        if (self.updates == 1 or self.updates % self.config.publish_every == 0) and not self.hold_publication:
            self.publish()
        if self.config.checkpoint_every and self.updates % self.config.checkpoint_every == 0:
            self._checkpoint(self)
        return True

    def offline_step(self, stage: str, sampling: SamplingSpec) -> dict[str, float]:
        """One update of offline stage `stage` on a batch sampled per `sampling`; returns its metrics."""
        batch = to_torch(self.replay.sample(sampling, self._rng), self.algorithm.device)
        start = time.perf_counter()
        values = self.algorithm.offline_update(stage, batch)
        metrics.LEARNER_UPDATE_SECONDS.observe(time.perf_counter() - start)
        metrics.LEARNER_UPDATES.inc()
        self.offline_updates += 1
        if self.offline_updates % self.config.publish_every == 0:  # the dashboard follows offline losses too
            for name, value in values.items():
                metrics.LEARNER_TRAIN_METRIC.labels(name).set(value)
        return values

    def publish(self, policy: str = "online", version: int | None = None) -> None:
        """Send the algorithm's named policy to every actor as the next weights version (or as `version`,
        when a resumed rollouts stage publishes its version again)."""
        tensors = {k: v.detach().to("cpu", copy=True).numpy()
                   for k, v in self.algorithm.named_policy_state_dict(policy).items()}  # fmt: skip
        program, program_config = self.algorithm.policy_program(policy)
        self.policy_version = self.policy_version + 1 if version is None else version
        self._publish(
            Weights(
                version=self.policy_version,
                algorithm=self._algorithm_name,
                policy_config_json=self._policy_config_json,
                spec_hash=self.algorithm.spec.spec_hash,
                tensors=tensors,
                policy=policy,
                program=program,
                program_config_json=json.dumps(program_config, sort_keys=True),
            )
        )
        self._record_metrics()

    def republish(self, weights: Weights) -> None:
        """Send earlier weights (e.g. the best evaluated) again as the next version, policy and program kept."""
        self.policy_version += 1
        self._publish(replace(weights, version=self.policy_version))
        self._record_metrics()

    def _record_metrics(self) -> None:
        for name, value in self.last_metrics.items():
            metrics.LEARNER_TRAIN_METRIC.labels(name).set(value)
        if self.last_metrics:
            self.history.append((self.updates, self.received, dict(self.last_metrics)))
            if len(self.history) > MAX_HISTORY:  # hours-long runs: halve the resolution, keep the whole span
                del self.history[1::2]

    def run(self, stop: threading.Event, on_progress: Callable[[], None] = lambda: None, until: int = 0) -> None:
        """Update until `stop` is set, max_updates is reached, or (if non-zero) `until` updates are done;
        waits (on an event) when data is short."""
        while not stop.is_set():
            if self.config.max_updates and self.updates >= self.config.max_updates:
                return
            if until and self.updates >= until:
                return
            if not self.step():
                self.data_arrived.wait(timeout=0.1)
                self.data_arrived.clear()
            on_progress()

    def state_dict(self) -> dict:
        return {
            "updates": self.updates,
            "offline_updates": self.offline_updates,
            "policy_version": self.policy_version,
            "received": self.received,
            "rng": self._rng.bit_generator.state,
        }

    def load_state_dict(self, state: dict) -> None:
        self.updates = int(state["updates"])
        self.offline_updates = int(state.get("offline_updates", 0))  # absent in checkpoints from before stages
        self.policy_version = int(state["policy_version"])
        self.received = int(state["received"])
        self._rng.bit_generator.state = state["rng"]


def select_device(name: str = "auto") -> torch.device:
    """'auto' picks CUDA when present, else CPU; never assume a GPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda requested but no CUDA device is available")
    return device
