"""LeRobot datasets in and out: Tandem's episodes (a robot spec and transition columns) <-> a LeRobot dataset.

Reading and writing go through LeRobot's own dataset code (`LeRobotDataset`, format v3.0), as the standalone
`lerobot-dataset` package (import name `ledataset`, the `lerobot` extra): the full `lerobot` package pins
torch < 2.11, which Tandem's torch rules out. A dataset written here opens in LeRobot's loader and tools.

One LeRobot frame per transition, features named as LeRobot's recorders name them:

  observation.images.<key>  a camera (an `ImageSpec`), stored as an RGB image; a grayscale camera is written
                            with its channel repeated three times (LeRobot's image code assumes RGB)
  observation.<key>         any other observation array (float32)
  action                    the executed action in the robot's physical units (LeRobot's convention)
  next.reward               the reward the robot's task reported for the step
  next.done                 the episode ended after this step (terminated or truncated)
  next.truncated            ... because it was cut (step limit, operator reset), not a true end
  next.success              the episode's success label, on its last frame (False on the others)
  intervention, evaluation, policy_version, proposal: Tandem's columns of the same names

A Tandem-written dataset also carries `meta/tandem.json` (the robot spec, and each episode's actor and episode
counter) and `meta/tandem_final_observations.npz` (each episode's last next-observation, which no frame holds),
so `.npz` -> dataset -> columns gives back the same transitions (actions up to float32 rounding of the unit
conversion). A dataset from elsewhere is read against the learner's robot spec: its features must match it
(clear `SpecError` otherwise); a missing `next.reward` / `next.done` means every episode is one successful
demonstration (reward 1 and a true end on its last frame), and an episode's last next-observation is its own
last observation, as LeRobot's replay buffer does.

Nothing is ever downloaded: loading runs with the Hub offline (`HF_HUB_OFFLINE=1`).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from common.episodes import episode_bounds
from common.specs import ImageSpec, RobotSpec, SpecError
from common.types import OBS_PREFIX, NEXT_OBS_PREFIX, PROPOSAL_NONE, SCALAR_COLUMNS, transition_columns

log = logging.getLogger(__name__)

INFO_FILE = "meta/info.json"
SIDECAR_FILE = "meta/tandem.json"
FINAL_OBSERVATIONS_FILE = "meta/tandem_final_observations.npz"
SIDECAR_FORMAT = 1
IMAGE_PREFIX = "observation.images."
STATE_PREFIX = "observation."
# Tandem scalar columns stored as LeRobot features under the same name -> the value a dataset without them implies.
PASSTHROUGH_COLUMNS = {"intervention": False, "evaluation": False, "policy_version": -1, "proposal": PROPOSAL_NONE}
INSTALL_HINT = "LeRobot datasets need the lerobot extra: pip install -e '.[lerobot]' (scripts/install.sh does it)"


def is_lerobot_dataset(path: str | Path) -> bool:
    """True if `path` is a LeRobot dataset directory (it has `meta/info.json`)."""
    return (Path(path) / INFO_FILE).is_file()


def dataset_spec(root: str | Path) -> RobotSpec | None:
    """The robot spec a Tandem-written dataset carries; None for a dataset written elsewhere."""
    sidecar = Path(root) / SIDECAR_FILE
    if not sidecar.is_file():
        return None
    data = json.loads(sidecar.read_text())
    if data.get("format") != SIDECAR_FORMAT:
        raise SpecError(f"{sidecar}: unknown Tandem sidecar format {data.get('format')!r}")
    return RobotSpec.from_json(data["spec"])


@dataclass
class EpisodeLabel:
    """What a dataset records of one episode beyond its frames."""

    success: bool | None = None  # the operator's or task's label; None: it ended terminated with a positive reward
    actor_id: str = ""  # the actor that ran it (an exported run has several)
    actor_episode: int = -1  # that actor's episode counter


# ---- the feature mapping -------------------------------------------------------------------------------------
def observation_feature(key: str, spec) -> str:
    """The LeRobot feature name of observation `key`."""
    return IMAGE_PREFIX + key if isinstance(spec, ImageSpec) else STATE_PREFIX + key


def features_for(spec: RobotSpec) -> dict[str, dict]:
    """The LeRobot features of a dataset of `spec`'s transitions."""
    features: dict[str, dict] = {}
    for key, obs in spec.observation.items():
        if isinstance(obs, ImageSpec):
            height, width, _ = obs.shape
            features[observation_feature(key, obs)] = {
                "dtype": "image", "shape": (height, width, 3), "names": ["height", "width", "channels"]}
        else:
            features[observation_feature(key, obs)] = {"dtype": "float32", "shape": obs.shape, "names": None}
    features["action"] = {"dtype": "float32", "shape": (spec.action_dim,), "names": None}
    for name, dtype in (("next.reward", "float32"), ("next.done", "bool"), ("next.truncated", "bool"),
                        ("next.success", "bool")):  # fmt: skip
        features[name] = {"dtype": dtype, "shape": (1,), "names": None}
    for name in PASSTHROUGH_COLUMNS:
        features[name] = {"dtype": SCALAR_COLUMNS[name], "shape": (1,), "names": None}
    return features


# ---- writing -------------------------------------------------------------------------------------------------
def write_dataset(root: str | Path, spec: RobotSpec, columns: Mapping[str, np.ndarray],
                  labels: Sequence[EpisodeLabel] | None = None, task: str = "", videos: bool = False,
                  overwrite: bool = False) -> Path:  # fmt: skip
    """Write whole episodes (transition columns, as in a demo file) as a LeRobot dataset at `root`.

    `labels` has one entry per episode, in order (default: success = it ended terminated with a positive
    reward). `task` is LeRobot's per-frame task text (default: the spec's task). `videos` stores cameras as MP4
    (LeRobot's video features) instead of images. The dataset is built beside `root` and moved into place, so
    `root` never holds a half-written dataset.
    """
    LeRobotDataset = import_lerobot_dataset()
    root = Path(root)
    if root.exists() and not overwrite:
        raise FileExistsError(f"{root} exists; choose another directory or pass overwrite")
    bounds = episode_bounds(columns["episode"])
    if not bounds:
        raise ValueError("refusing to write an empty dataset")
    task = task or spec.metadata.get("task", spec.name)
    labels = list(labels) if labels is not None else [EpisodeLabel() for _ in bounds]
    if len(labels) != len(bounds):
        raise ValueError(f"{len(labels)} episode labels for {len(bounds)} episodes")
    root.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent)) / "dataset"
    try:
        features = features_for(spec)
        if videos:
            for feature in features.values():
                feature["dtype"] = "video" if feature["dtype"] == "image" else feature["dtype"]
        dataset = LeRobotDataset.create(f"tandem/{root.name}", fps=max(1, round(spec.control_hz)), features=features,
                                        root=building, robot_type=spec.name, use_videos=videos, vcodec="h264",
                                        video_backend="pyav")
        physical = np.stack([spec.denormalize_action(a) for a in columns["action"]]).astype(np.float32)
        episodes, finals = [], {key: [] for key in spec.observation}
        for (start, stop), label in zip(bounds, labels):
            success = label.success
            if success is None:
                success = bool(columns["terminated"][stop - 1] and columns["reward"][stop - 1] > 0)
            for row in range(start, stop):
                dataset.add_frame(_frame(spec, columns, physical, row, row == stop - 1 and success, task))
            dataset.save_episode()
            episodes.append({"episode": int(columns["episode"][start]), "success": success,
                             "actor_id": label.actor_id, "actor_episode": label.actor_episode})  # fmt: skip
            for key in spec.observation:
                finals[key].append(columns[NEXT_OBS_PREFIX + key][stop - 1])
        dataset.finalize()
        sidecar = {"format": SIDECAR_FORMAT, "spec": spec.to_json(), "episodes": episodes}
        (building / SIDECAR_FILE).write_text(json.dumps(sidecar, indent=1))
        np.savez_compressed(building / FINAL_OBSERVATIONS_FILE, **{k: np.stack(v) for k, v in finals.items()})
        _move_into_place(building, root)
    finally:
        shutil.rmtree(building.parent, ignore_errors=True)
    log.info("wrote %d episodes (%d frames) as a LeRobot dataset to %s", len(bounds), len(columns["reward"]), root)
    return root


def _frame(spec: RobotSpec, columns, physical: np.ndarray, row: int, success: bool, task: str) -> dict:
    frame: dict = {"task": task, "action": physical[row]}
    for key, obs in spec.observation.items():
        value = columns[OBS_PREFIX + key][row]
        if isinstance(obs, ImageSpec) and obs.shape[2] == 1:
            value = np.repeat(value, 3, axis=2)
        frame[observation_feature(key, obs)] = value
    terminated, truncated = bool(columns["terminated"][row]), bool(columns["truncated"][row])
    frame["next.reward"] = np.array([columns["reward"][row]], dtype=np.float32)
    frame["next.done"] = np.array([terminated or truncated])
    frame["next.truncated"] = np.array([truncated])
    frame["next.success"] = np.array([success])
    for name in PASSTHROUGH_COLUMNS:
        frame[name] = np.array([columns[name][row]], dtype=SCALAR_COLUMNS[name])
    return frame


def _move_into_place(built: Path, root: Path) -> None:
    """Replace `root` by `built` with renames only (an old dataset is removed after the new one is in place)."""
    old = root.with_name(f".{root.name}.old")
    if root.exists():
        shutil.rmtree(old, ignore_errors=True)
        root.rename(old)
    built.rename(root)
    shutil.rmtree(old, ignore_errors=True)


# ---- reading -------------------------------------------------------------------------------------------------
def read_dataset(root: str | Path, spec: RobotSpec | None = None) -> tuple[RobotSpec, dict[str, np.ndarray]]:
    """Transition columns of the LeRobot dataset at `root`, for `spec` (default: the spec it carries).

    Raises SpecError if the dataset is not one, was recorded for another robot spec, or its features do not
    match the spec (naming what was expected and what was found).
    """
    root = Path(root)
    if not is_lerobot_dataset(root):
        raise SpecError(f"{root}: not a LeRobot dataset (no {INFO_FILE})")
    carried = dataset_spec(root)
    if spec is None and carried is None:
        raise SpecError(f"{root}: a LeRobot dataset not written by Tandem carries no robot spec; give the robot "
                        "(start the learner's actor first: `learner --demo DIR` takes the spec from the robot)")
    if spec is not None and carried is not None and carried.spec_hash != spec.spec_hash:
        raise SpecError(f"{root}: the dataset was recorded for robot {carried.name!r} with spec_hash "
                        f"{carried.spec_hash}, but the learner's robot {spec.name!r} has spec_hash {spec.spec_hash}")
    spec = spec or carried
    frames, features = _load_frames(root)
    _check_features(root, spec, features)
    columns = _columns_from_frames(spec, frames, features)
    if carried is not None:
        _apply_sidecar(root, spec, columns)
    _validate(root, spec, columns)
    return spec, columns


def _load_frames(root: Path) -> tuple[dict[str, np.ndarray], dict[str, dict]]:
    """Every frame's features as numpy arrays (through LeRobot's loader), and the dataset's features."""
    LeRobotDataset = import_lerobot_dataset()
    try:
        dataset = LeRobotDataset(f"tandem/{root.name}", root=root, video_backend="pyav")
    except Exception as exc:  # an incomplete dataset makes LeRobot try the (offline) Hub; say what is wrong
        raise SpecError(f"{root}: LeRobot could not load this dataset: {type(exc).__name__}: {exc}") from exc
    table = dataset.hf_dataset.with_format(None)
    frames = {}
    for name in table.column_names:
        values = table[name]
        frames[name] = np.stack([np.asarray(v) for v in values]) if values else np.zeros(0)
    return frames, dict(dataset.meta.features)


def _check_features(root: Path, spec: RobotSpec, features: Mapping[str, dict]) -> None:
    problems = []
    for key, obs in spec.observation.items():
        name = observation_feature(key, obs)
        found = features.get(name)
        if found is None:
            problems.append(f"missing {name} (the robot's {key}: {obs.dtype}{list(obs.shape)})")
        elif isinstance(obs, ImageSpec):
            height, width, channels = obs.shape
            if found["dtype"] == "video":
                problems.append(f"{name} is stored as video; Tandem reads image features (decoding video needs "
                                "torchcodec, which has no CPU build for this torch)")
            elif tuple(found["shape"]) not in ((height, width, channels), (height, width, 3)):
                problems.append(f"{name} is {list(found['shape'])}, the robot's camera {key} is {list(obs.shape)}")
        elif tuple(found["shape"]) != obs.shape or not found["dtype"].startswith("float"):
            problems.append(f"{name} is {found['dtype']}{list(found['shape'])}, the robot's {key} is "
                            f"{obs.dtype}{list(obs.shape)}")
    action = features.get("action")
    if action is None or tuple(action["shape"]) != (spec.action_dim,):
        problems.append(f"action is {None if action is None else list(action['shape'])}, the robot's action has "
                        f"{spec.action_dim} dimensions")
    if problems:
        raise SpecError(f"{root}: features do not match robot {spec.name!r}: " + "; ".join(problems))


def _columns_from_frames(spec: RobotSpec, frames: Mapping[str, np.ndarray],
                         features: Mapping[str, dict]) -> dict[str, np.ndarray]:  # fmt: skip
    count = len(frames["index"])
    order = np.lexsort((frames["frame_index"], frames["episode_index"]))
    frames = {name: values[order] for name, values in frames.items()}
    episode = frames["episode_index"].astype(np.int64)
    last = np.append(episode[1:] != episode[:-1], True)  # each episode's last frame
    columns: dict[str, np.ndarray] = {"episode": episode, "step": frames["frame_index"].astype(np.int32)}
    for key, obs in spec.observation.items():
        values = _observation_values(frames[observation_feature(key, obs)], obs)
        following = np.concatenate([values[1:], values[-1:]])
        columns[OBS_PREFIX + key] = values
        columns[NEXT_OBS_PREFIX + key] = np.where(_broadcast(last, values), values, following)
    physical = frames["action"].astype(np.float32)
    columns["action"] = np.stack([spec.normalize_action(a) for a in physical]) if count else physical
    outside = np.any((physical < spec.action.low_array) | (physical > spec.action.high_array), axis=1)
    if outside.any():
        log.warning("%d of %d dataset actions lie outside the robot's bounds; clipped", int(outside.sum()), count)
    if "next.reward" in frames and "next.done" in frames:
        done = frames["next.done"].astype(bool).reshape(count)
        truncated = frames.get("next.truncated", np.zeros(count, bool)).astype(bool).reshape(count)
        columns["reward"] = frames["next.reward"].astype(np.float32).reshape(count)
        columns["terminated"], columns["truncated"] = done & ~truncated, truncated
    else:
        log.info("no next.reward/next.done features: each episode is taken as one successful demonstration")
        columns["reward"], columns["terminated"] = last.astype(np.float32), last
        columns["truncated"] = np.zeros(count, bool)
    for name, default in PASSTHROUGH_COLUMNS.items():
        dtype = SCALAR_COLUMNS[name]
        values = frames.get(name)
        columns[name] = np.full(count, default, dtype) if values is None else values.astype(dtype).reshape(count)
    return columns


def _observation_values(values: np.ndarray, obs) -> np.ndarray:
    if isinstance(obs, ImageSpec) and obs.shape[2] == 1 and values.shape[-1] == 3:
        # Tandem wrote the channel three times; a colour camera from elsewhere becomes luma (ITU-R BT.601).
        values = np.rint(values.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]
    return values.astype(obs.dtype).reshape((len(values),) + obs.shape)


def _broadcast(mask: np.ndarray, values: np.ndarray) -> np.ndarray:
    return mask.reshape((len(mask),) + (1,) * (values.ndim - 1))


def _apply_sidecar(root: Path, spec: RobotSpec, columns: dict[str, np.ndarray]) -> None:
    """Tandem's own episode counters and each episode's last next-observation, from the sidecar files."""
    episodes = json.loads((root / SIDECAR_FILE).read_text())["episodes"]
    bounds = episode_bounds(columns["episode"])
    if len(bounds) != len(episodes):
        raise SpecError(f"{root}: {SIDECAR_FILE} lists {len(episodes)} episodes, the dataset holds {len(bounds)}")
    with np.load(root / FINAL_OBSERVATIONS_FILE, allow_pickle=False) as finals:
        for index, (start, stop) in enumerate(bounds):
            for key in spec.observation:
                columns[NEXT_OBS_PREFIX + key][stop - 1] = finals[key][index]
    columns["episode"] = np.repeat([e["episode"] for e in episodes], [b - a for a, b in bounds]).astype(np.int64)


def _validate(root: Path, spec: RobotSpec, columns: Mapping[str, np.ndarray]) -> None:
    count = len(columns["reward"])
    for name, column_spec in transition_columns(spec).items():
        value = columns[name]
        if value.shape != (count,) + column_spec.shape or value.dtype != np.dtype(column_spec.dtype):
            raise SpecError(f"{root}: column {name} is {value.dtype}{list(value.shape)}")


# ---- LeRobot's code ------------------------------------------------------------------------------------------
def import_lerobot_dataset():
    """LeRobot's `LeRobotDataset` class, with the Hub offline; ImportError with the install hint if missing."""
    os.environ["HF_HUB_OFFLINE"] = "1"  # read before huggingface_hub is imported: never download at run time
    _import_torchvision()
    try:
        from ledataset.datasets.lerobot_dataset import LeRobotDataset
    except ImportError as exc:
        raise ImportError(f"{INSTALL_HINT} ({exc})") from exc
    return LeRobotDataset


def _import_torchvision() -> None:
    """Import torchvision even where its C++ ops cannot load (PyPI's CUDA torchvision beside the CPU torch).

    LeRobot's video module imports torchvision at the top. torchvision tolerates missing ops except for two fake
    registrations (`nms`, `qnms`) that need the ops' schemas; defining those two schemas lets it import. Nothing
    Tandem does with LeRobot calls a torchvision op.
    """
    import torch

    try:
        import torchvision  # noqa: F401
    except ImportError as exc:
        raise ImportError(f"{INSTALL_HINT} ({exc})") from exc
    except RuntimeError as exc:
        if "torchvision::nms" not in str(exc):
            raise
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]
        library = torch.library.Library("torchvision", "DEF")
        for op in ("nms", "qnms"):
            library.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        _KEEP_ALIVE.append(library)
        import torchvision  # noqa: F401,F811


_KEEP_ALIVE: list = []  # a torch.library.Library unregisters its definitions when collected
