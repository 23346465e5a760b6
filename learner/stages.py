"""Training stages: the learner runs `Algorithm.stages()` in order, each resumable mid-stage.

- offline: `stage.length` calls of `offline_update` on batches of the demonstrations (or per the stage's
  own sampling), checkpointed every `checkpoint_every` updates;
- rollouts: the named policy `stage.policy` is published as its own weights version, then the learner
  waits, without updating, until `stage.length` training episodes acted with that version have arrived;
- online: `TrainLoop.run` (the update-to-data cap, learning_starts, publishing the online policy) until
  the run stops, or for `stage.length` updates when that is non-zero.

After a stage completes, `algorithm.end_stage(name)` runs and a checkpoint records the next stage, so a
resumed run never repeats a stage's end. An online stage that runs until the run stops never completes.

A rollouts episode counts when its last transition (terminated or truncated) was acted with the stage's
version and is not an evaluation episode: the same rule as `EpisodeSummary.policy_version` (the version
of an episode's last step), but read from the stored transitions, so a resumed learner recounts the
episodes already received while it restores the durable replay, and an episode whose summary was lost
while the learner was down still counts once its spooled transitions arrive.

Offline updates do not count toward the online update-to-data cap (`TrainLoop.updates`, `--max-updates`):
that cap is about online data. They are counted apart (`TrainLoop.offline_updates`).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import asdict, dataclass, replace
from typing import Callable, Mapping

import numpy as np

from common import metrics
from learner.algorithms.base import Stage
from learner.train_loop import TrainLoop

log = logging.getLogger(__name__)

UNITS = {"offline": "updates", "rollouts": "episodes", "online": "updates"}


class StageError(ValueError):
    """A stage cannot run (bad declaration, or an offline stage with nothing to train on)."""


def check_stages(stages: list[Stage], algorithm: str) -> None:
    """Stages must be a non-empty list of uniquely named `Stage`s, the last one online."""
    if not stages or not all(isinstance(stage, Stage) for stage in stages):
        raise StageError(f"{algorithm}.stages() must return a non-empty list of Stage, got {stages!r}")
    names = [stage.name for stage in stages]
    if len(set(names)) != len(names):
        raise StageError(f"{algorithm}.stages() names a stage twice: {names}")
    if stages[-1].kind != "online":
        raise StageError(f"{algorithm}.stages() must end with an online stage, got {stages[-1].kind!r}")


@dataclass
class StageProgress:
    """Where the run stands among its stages; part of every checkpoint."""

    index: int = 0  # position in `stages()` of the stage running (len(stages) once all completed)
    done: int = 0  # offline: updates done in the stage; rollouts: episodes counted (informational)
    version: int = -1  # rollouts: the weights version published for the stage (-1: not yet)
    start: int = 0  # online: TrainLoop.updates when the stage began


class RolloutCounter:
    """Counts training episodes that ended acting with one weights version (the receive thread notes
    stored transitions, the training thread waits on the count)."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self.version = -1  # -1: counting nothing
        self.episodes = 0

    def watch(self, version: int) -> None:
        """Count episodes of `version` from now on (from zero)."""
        with self._changed:
            self.version, self.episodes = version, 0

    def note(self, columns: Mapping[str, np.ndarray]) -> None:
        """Called with every batch stored in online replay."""
        if self.version < 0:
            return
        ended = columns["terminated"] | columns["truncated"]
        ours = ended & (columns["policy_version"] == self.version) & ~columns["evaluation"]
        count = int(np.count_nonzero(ours))
        if count:
            with self._changed:
                self.episodes += count
                self._changed.notify_all()
            log.info("rollouts of policy v%d: %d episodes received", self.version, self.episodes)

    def wait_for(self, count: int, timeout_s: float) -> int:
        """Block until `count` episodes are counted or `timeout_s` passes; returns the count."""
        with self._changed:
            self._changed.wait_for(lambda: self.episodes >= count, timeout=timeout_s)
            return self.episodes


class StageRunner:
    """Runs the algorithm's stages on a TrainLoop; `checkpoint()` saves the whole learner state."""

    def __init__(self, loop: TrainLoop, checkpoint: Callable[[], object], algorithm_name: str = "") -> None:
        self.loop = loop
        self.stages = loop.algorithm.stages()
        self._checkpoint = checkpoint
        self._algorithm_name = algorithm_name or type(loop.algorithm).__name__
        self.progress = StageProgress()
        self.rollouts = RolloutCounter()

    @property
    def current(self) -> Stage | None:
        """The stage running, None once every stage completed."""
        return self.stages[self.progress.index] if self.progress.index < len(self.stages) else None

    def run(self, stop: threading.Event, on_progress: Callable[[], None] = lambda: None) -> None:
        """Run stages from where the progress stands until all complete or `stop` is set."""
        check_stages(self.stages, self._algorithm_name)
        while (stage := self.current) is not None and not stop.is_set():
            self._show()
            log.info("%s started%s", self.describe(), "" if stage.length else " (runs until the run stops)")
            run_stage = {"offline": self._offline, "rollouts": self._rollouts, "online": self._online}[stage.kind]
            if not run_stage(stage, stop, lambda: self._tick(on_progress)):
                return
            self._complete(stage)
        self._show()

    def run_offline(self, stop: threading.Event, on_progress: Callable[[], None] = lambda: None) -> None:
        """Run stages from where the progress stands while they are offline (`learner pretrain`: no robot)."""
        check_stages(self.stages, self._algorithm_name)
        while (stage := self.current) is not None and stage.kind == "offline" and not stop.is_set():
            self._show()
            if not self._offline(stage, stop, lambda: self._tick(on_progress)):
                return
            self._complete(stage)

    def _complete(self, stage: Stage) -> None:
        self.loop.algorithm.end_stage(stage.name)
        log.info("stage %d/%d %s %r completed", self.progress.index + 1, len(self.stages), stage.kind, stage.name)
        self.progress = StageProgress(index=self.progress.index + 1, start=self.loop.updates)
        self._checkpoint()

    def _tick(self, on_progress: Callable[[], None]) -> None:
        metrics.LEARNER_STAGE_DONE.set(self.done())
        on_progress()

    # ---- the three kinds -------------------------------------------------------------------------
    def _offline(self, stage: Stage, stop: threading.Event, on_progress: Callable[[], None]) -> bool:
        sampling = stage.sampling or replace(self.loop.algorithm.sampling, demo_ratio=1.0)
        if stage.length > self.progress.done and self.loop.replay.demo_size + self.loop.replay.online_size == 0:
            raise StageError(f"offline stage {stage.name!r} has nothing to train on: no demonstrations "
                             "(pass --demo) and no online transitions")  # fmt: skip
        every = self.loop.config.checkpoint_every
        while self.progress.done < stage.length:
            if stop.is_set():
                return False
            self.loop.offline_step(stage.name, sampling)
            self.progress.done += 1
            if every and self.progress.done % every == 0:
                self._checkpoint()
            on_progress()
        return True

    def _rollouts(self, stage: Stage, stop: threading.Event, on_progress: Callable[[], None]) -> bool:
        if stage.length == 0:
            return True
        if self.progress.version < 0:  # recorded before publishing, so a resume republishes the same version
            self.progress.version = self.loop.policy_version + 1
            self.rollouts.watch(self.progress.version)
            self._checkpoint()
        self.loop.publish(policy=stage.policy, version=self.progress.version)
        while self.done() < stage.length:
            if stop.is_set():
                return False
            self.rollouts.wait_for(stage.length, timeout_s=0.5)  # wakes on each episode; the timeout checks stop
            on_progress()
        self.rollouts.watch(-1)
        return True

    def _online(self, stage: Stage, stop: threading.Event, on_progress: Callable[[], None]) -> bool:
        until = self.progress.start + stage.length if stage.length else 0
        self.loop.run(stop, on_progress, until=until)
        return bool(stage.length) and self.done() >= stage.length

    # ---- progress, display, checkpoint -----------------------------------------------------------
    def online_started(self) -> bool:
        """Whether online training began. A run stopped before it publishes no final policy: that would be an
        untrained network, and a newer version than a resumed rollouts stage's, which actors would then ignore."""
        return any(stage.kind == "online" for stage in self.stages[: self.progress.index + 1])

    def done(self) -> int:
        """Progress inside the stage running, in its unit (updates or episodes)."""
        stage = self.current
        if stage is None:
            return 0
        if stage.kind == "online":
            return self.loop.updates - self.progress.start
        if stage.kind == "rollouts" and self.progress.version >= 0:
            return max(self.progress.done, self.rollouts.episodes)
        return self.progress.done

    def describe(self) -> str:
        """E.g. "stage 2/3 rollouts 3/10 episodes" (what the progress line shows)."""
        stage = self.current
        if stage is None:
            return f"stages {len(self.stages)}/{len(self.stages)} completed"
        length = f"/{stage.length}" if stage.length else ""
        return (f"stage {self.progress.index + 1}/{len(self.stages)} {stage.kind} {stage.name!r} "
                f"{self.done()}{length} {UNITS[stage.kind]}")  # fmt: skip

    def _show(self) -> None:
        """The stage gauges: its number (1-based, 0 once all completed), name and kind, progress."""
        stage = self.current
        metrics.LEARNER_STAGE.set(self.progress.index + 1 if stage else 0)
        for index, each in enumerate(self.stages):
            metrics.LEARNER_STAGE_INFO.labels(each.name, each.kind).set(int(index == self.progress.index))
        metrics.LEARNER_STAGE_DONE.set(self.done())

    def state_dict(self) -> dict:
        state = asdict(self.progress)
        if self.current is not None and self.current.kind == "rollouts":
            state["done"] = self.done()
        return state

    def load_state_dict(self, state: Mapping | None) -> None:
        """Restore the progress; a checkpoint from before stages existed was online-only: the last stage."""
        if state is None:
            self.progress = StageProgress(index=len(self.stages) - 1, start=0)
            return
        self.progress = StageProgress(**{key: int(value) for key, value in state.items()})
        stage = self.current
        if stage is not None and stage.kind == "rollouts" and self.progress.version >= 0:
            self.rollouts.watch(self.progress.version)  # restoring the durable replay recounts its episodes
