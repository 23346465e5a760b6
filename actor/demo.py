"""`actor --record-demo PATH`: keep teleoperated episodes and write them in a format `learner --demo` loads.

PATH.npz is Tandem's demo file; any other PATH is a LeRobot dataset directory (`common.lerobot_datasets`).
Only episodes labelled success are kept unless `keep_failures`. The file or dataset is rewritten (atomically)
after every kept episode, so quitting with Ctrl-C or losing the SSH session keeps what was recorded.
"""

from __future__ import annotations

import logging
from pathlib import Path

from actor.recorder import EpisodeRecord
from common.episodes import is_npz_path, save_episodes
from common.protocol import EpisodeSummary
from common.specs import RobotSpec
from common.types import Transition

log = logging.getLogger("actor")


class DemoWriter:
    """Collects kept episodes and saves them to `path` (see common/episodes.py for the format)."""

    def __init__(self, path: str | Path, spec: RobotSpec, keep_failures: bool = False) -> None:
        self.path = Path(path)
        self.spec = spec
        self.keep_failures = keep_failures
        self.transitions: list[Transition] = []
        self.episodes = 0
        if not is_npz_path(self.path):  # import LeRobot's code (seconds) now, not between two episodes
            from common.lerobot_datasets import import_lerobot_dataset

            import_lerobot_dataset()

    def on_episode(self, record: EpisodeRecord, summary: EpisodeSummary) -> None:
        """Loop callback: keep the finished episode if it qualifies, then save everything kept so far."""
        if not record.transitions or not (summary.success or self.keep_failures):
            log.info("demo: episode not kept (%s, %d steps)", "success" if summary.success else "no success",
                     summary.steps)  # fmt: skip
            return
        self.transitions.extend(record.transitions)
        self.episodes += 1
        save_episodes(self.path, self.spec, self.transitions)
        log.info("demo: kept episode %d (%d steps); %s now holds %d episodes, %d transitions",
                 record.episode, len(record.transitions), self.path, self.episodes, len(self.transitions))  # fmt: skip


def record_demo(robot, task, operator, loop_config, actor_id: str, install_signals, videos=None) -> int:
    """Run teleoperated episodes on `robot` (no learner) and write the kept ones to the operator's demo file."""
    from actor.loop import ActorLoop  # the loop imports this module's neighbours; keep the import local
    from actor.terminal import operator_terminal

    writer = DemoWriter(operator.config.record_demo, robot.spec, operator.config.keep_failures)

    def no_learner(status) -> None:
        status.learner = f"off (recording {writer.path.name}: {writer.episodes} kept)"

    with operator_terminal(operator, no_learner) as on_status:
        if on_status is None:
            raise ValueError("--record-demo needs a terminal on stdin to read the teleop keys from")
        loop = ActorLoop(robot, task, lambda _item: None, lambda _version: None, loop_config, actor_id,
                         operator, on_status, writer.on_episode, keep_transitions=True, videos=videos)  # fmt: skip
        install_signals(lambda: (loop.request_stop(), robot.stop()))  # stop() is signal-safe
        log.info("recording demonstrations to %s: drive with arrows/WASD/q/e, Enter = success (s drives "
                 "backward while teleoperating), f = failure, r = reset", writer.path)  # fmt: skip
        with robot:
            robot.enable()
            loop.run()
    log.info("demo: %d episodes (%d transitions) in %s", writer.episodes, len(writer.transitions), writer.path)
    return 0
