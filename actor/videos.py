"""Episode videos: which episodes an actor films, where the frames come from, and what the files are called.

The control loop drives one `EpisodeVideos` with three calls: `start` after the reset, `add` after every
recorded step, `end` when the episode is over. A video therefore has exactly steps + 1 frames (the
observation after the reset, then one per step) and plays at the control rate, i.e. in real time.

- `EvaluationRenders` (`actor --eval-only --render-videos DIR`): an evaluator of a simulated twin renders
  the whole scene (`render_view`, 320x240) for the first episode of every Nth evaluation block. Only the
  chosen episodes are rendered, and only by an evaluator, never by a training actor's control loop.
- `LabelledEpisodes` (`actor --record-video DIR`): a robot with a camera keeps the images the policy
  already sees (no second camera open) of every episode the operator labels success or failure. The label
  comes at the end, so every episode streams to a temporary file that is kept or dropped then.

A video that cannot be made (disk full, a malformed camera frame, a renderer that fails) is logged and
dropped: a video is never worth ending an episode, stopping a robot or losing an evaluator for.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

import numpy as np

from actor.mp4 import Mp4Writer
from common.protocol import EpisodeSummary
from common.specs import ImageSpec, RobotSpec
from common.types import Observation

log = logging.getLogger("actor")
VIDEO_SIZE = (320, 240)  # (width, height) of a rendered scene view: watchable, and cheap to render on a CPU
LABELS = ("success", "failure")  # the loop's outcomes of an operator's labels


class EpisodeVideos:
    """Films the episodes `wants` chooses into `directory` and keeps those `keeps` accepts, one MP4 each.

    `frame_of(observation)` gives an episode's RGB uint8 frame at that observation. Subclasses say which
    episodes (`wants`, `keeps`) and what the files are called (`file_name`).
    """

    def __init__(self, directory: str | Path, fps: float, actor_id: str,
                 frame_of: Callable[[Observation], np.ndarray]) -> None:  # fmt: skip
        self.directory = Path(directory)
        self.fps = fps
        self.actor_id = actor_id
        self._frame_of = frame_of
        self._writer: Mp4Writer | None = None
        self._block = (-1, -1)

    def wants(self, evaluation: bool, block: int, index: int) -> bool:
        raise NotImplementedError

    def keeps(self, outcome: str) -> bool:
        raise NotImplementedError

    def file_name(self, summary: EpisodeSummary, outcome: str, block: int, index: int) -> str:
        raise NotImplementedError

    # ---- the control loop's calls ----------------------------------------------------------------
    def start(self, observation: Observation, evaluation: bool, block: int = -1, index: int = -1) -> None:
        """A new episode starts at `observation`; (`block`, `index`) place an evaluation episode in its block."""
        self._drop()
        if not self.wants(evaluation, block, index):
            return
        self._block = (block, index)
        try:
            self._writer = Mp4Writer(self.directory, self.fps, prefix=self.actor_id)
        except Exception as exc:  # a video is never fatal (module docstring)
            log.error("video: cannot start one in %s: %s: %s", self.directory, type(exc).__name__, exc)
            return
        self.add(observation)

    def add(self, observation: Observation) -> None:
        """The observation after one more step."""
        if self._writer is None:
            return
        try:
            self._writer.add(self._frame_of(observation))
        except Exception as exc:  # a video is never fatal (module docstring)
            log.error("video: dropping this episode's video: %s: %s", type(exc).__name__, exc)
            self._drop()

    def end(self, summary: EpisodeSummary, outcome: str) -> Path | None:
        """The episode ended with the loop's `outcome`: keep the video under its final name, or drop it."""
        writer, self._writer = self._writer, None
        if writer is None:
            return None
        if not self.keeps(outcome):
            writer.discard()
            return None
        try:
            path = writer.finish(self.directory / self.file_name(summary, outcome, *self._block))
        except Exception as exc:  # a video is never fatal (module docstring)
            log.error("video: could not write episode %d's video: %s: %s", summary.episode, type(exc).__name__, exc)
            writer.discard()
            return None
        log.info("video: %s (%d frames)", path, writer.frames)
        return path

    def close(self) -> None:
        """Drop a video still open (the loop ended inside an episode)."""
        self._drop()

    def _drop(self) -> None:
        if self._writer is not None:
            self._writer.discard()
            self._writer = None


class EvaluationRenders(EpisodeVideos):
    """An evaluator's scene views of a simulated twin: the first episode of evaluation blocks 0, N, 2N, ..."""

    def __init__(self, directory: str | Path, robot, actor_id: str, every: int,
                 size: tuple[int, int] = VIDEO_SIZE) -> None:  # fmt: skip
        if every < 1:
            raise ValueError(f"render every N evaluation blocks needs N >= 1, got {every}")
        super().__init__(directory, robot.spec.control_hz, actor_id, lambda _observation: robot.render_view(*size))
        self.every = every

    def wants(self, evaluation: bool, block: int, index: int) -> bool:
        return evaluation and index == 0 and block % self.every == 0

    def keeps(self, outcome: str) -> bool:
        return outcome != "stopped"  # cut short by the actor's shutdown: not how the policy does

    def file_name(self, summary: EpisodeSummary, outcome: str, block: int, index: int) -> str:
        result = "success" if summary.success else "failure"
        return f"{self.actor_id}-{policy_tag(summary.policy_version)}-block{block}-episode{index}-{result}.mp4"


class LabelledEpisodes(EpisodeVideos):
    """A robot's camera images of every episode the operator labels success or failure."""

    def __init__(self, directory: str | Path, spec: RobotSpec, actor_id: str) -> None:
        key = camera_key(spec)
        super().__init__(directory, spec.control_hz, actor_id, lambda observation: rgb_frame(observation[key]))

    def wants(self, evaluation: bool, block: int, index: int) -> bool:
        return True  # the label comes at the episode's end

    def keeps(self, outcome: str) -> bool:
        return outcome in LABELS

    def file_name(self, summary: EpisodeSummary, outcome: str, block: int, index: int) -> str:
        return f"{self.actor_id}-{policy_tag(summary.policy_version)}-episode{summary.episode}-{outcome}.mp4"


def policy_tag(version: int) -> str:
    """A file name's policy: "v12", or "random" before the first weights (version -1)."""
    return f"v{version}" if version >= 0 else "random"


def camera_key(spec: RobotSpec) -> str:
    """The observation key of the robot's (first) camera; ValueError if it has none."""
    keys = [key for key, item in spec.observation.items() if isinstance(item, ImageSpec)]
    if not keys:
        raise ValueError(f"robot {spec.name} has no camera observation to record (a twin: -o observation=image)")
    return keys[0]


def rgb_frame(image: np.ndarray) -> np.ndarray:
    """A camera image (H, W), (H, W, 1) or (H, W, 3) as an RGB frame, cropped to even sizes for H.264."""
    if image.ndim == 2:
        image = image[:, :, None]
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    return image[: image.shape[0] // 2 * 2, : image.shape[1] // 2 * 2]


def make_episode_videos(robot, actor_id: str, eval_only: bool, render_dir: str = "", render_every: int = 1,
                        record_dir: str = "") -> EpisodeVideos | None:  # fmt: skip
    """The videos an actor's options ask for (None: none). ValueError for a request that cannot work."""
    if render_dir and record_dir:
        raise ValueError("--render-videos and --record-video are one at a time")
    if record_dir:
        return LabelledEpisodes(record_dir, robot.spec, actor_id)
    if not render_dir or render_every == 0:
        return None
    if not eval_only:
        raise ValueError("--render-videos needs --eval-only: rendering would slow a training actor's control loop")
    if not hasattr(robot, "render_view"):
        # The learner asks every final evaluation for a video, whatever the robot; only twins can render.
        log.warning("video: %s cannot render its scene (not a MuJoCo twin); no videos", robot.spec.name)
        return None
    return EvaluationRenders(render_dir, robot, actor_id, render_every)
