"""LeRobot datasets in and out (issue 22): Tandem demos and runs <-> LeRobot's own format, read back by LeRobot."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from common.episodes import demo_spec, episode_bounds, load_episodes, save_episodes
from common.lerobot_datasets import import_lerobot_dataset, read_dataset, write_dataset
from common.specs import ArraySpec, BoundedSpec, ImageSpec, RobotSpec, SpecError
from common.types import Transition, pack_transitions
from learner.app import Learner, LearnerConfig
from learner.export_lerobot import export_run
from learner.replay.durable import SegmentJournal, write_spec

DEMO_DIR = Path(__file__).resolve().parents[2] / "robots" / "sim" / "demos"
LIMO_DEMO = DEMO_DIR / "limo_ball_to_goal.npz"
GO2_DEMO = DEMO_DIR / "go2_slalom.npz"


@pytest.fixture(scope="module")
def LeRobotDataset():
    return import_lerobot_dataset()


def camera_spec() -> RobotSpec:
    return RobotSpec(
        "camera_bot",
        {"camera": ImageSpec("camera", (24, 32, 1)), "state": ArraySpec("state", (3,))},
        BoundedSpec("action", (2,), low=(-0.5, -2.0), high=(0.5, 2.0)),
        control_hz=15.0, metadata={"task": "reach"},
    )  # fmt: skip


def random_episodes(spec: RobotSpec, lengths: list[int], seed: int = 0, first_episode: int = 0) -> list[Transition]:
    """Whole episodes with every column varied: the last step of an even episode terminates, of an odd one truncates."""
    rng = np.random.default_rng(seed)

    def observation():
        return {key: (rng.integers(0, 256, obs.shape).astype(np.uint8) if isinstance(obs, ImageSpec)
                      else rng.standard_normal(obs.shape).astype(np.float32))
                for key, obs in spec.observation.items()}  # fmt: skip

    transitions = []
    for index, length in enumerate(lengths):
        current = observation()
        for step in range(length):
            following, last = observation(), step == length - 1
            transitions.append(Transition(
                current, rng.uniform(-1, 1, spec.action.shape).astype(np.float32), float(rng.standard_normal()),
                last and index % 2 == 0, last and index % 2 == 1, following, episode=first_episode + 2 * index,
                step=step, policy_version=int(rng.integers(-1, 9)), intervention=bool(rng.integers(2)),
                evaluation=index == 1, proposal=int(rng.integers(-1, 2)),
            ))  # fmt: skip
            current = following
    return transitions


def assert_same_columns(expected: dict, actual: dict) -> None:
    assert set(actual) == set(expected)
    for name in expected:
        assert actual[name].dtype == expected[name].dtype, name
        if name == "action":  # stored in physical units: the unit conversion rounds in float32
            np.testing.assert_allclose(actual[name], expected[name], rtol=0, atol=1e-6, err_msg=name)
        else:
            np.testing.assert_array_equal(actual[name], expected[name], err_msg=name)


def test_a_demo_file_round_trips_through_a_lerobot_dataset_column_for_column(tmp_path, LeRobotDataset):
    spec, columns = load_episodes(GO2_DEMO)
    write_dataset(tmp_path / "go2", spec, columns)
    read_spec, read = read_dataset(tmp_path / "go2")
    assert read_spec.spec_hash == spec.spec_hash
    assert_same_columns(columns, read)


def test_camera_episodes_round_trip_and_open_in_lerobots_loader_with_the_same_values(tmp_path, LeRobotDataset):
    spec = camera_spec()
    path = save_episodes(tmp_path / "camera_demo", spec, random_episodes(spec, [5, 4, 6]))
    _, columns = load_episodes(save_episodes(tmp_path / "camera_demo.npz", spec, random_episodes(spec, [5, 4, 6])))
    _, read = load_episodes(path)
    assert_same_columns(columns, read)

    dataset = LeRobotDataset("tandem/camera_demo", root=path, video_backend="pyav")  # LeRobot's own loader
    assert (len(dataset), dataset.meta.total_episodes, dataset.fps, dataset.meta.robot_type) == (15, 3, 15, spec.name)
    frame = dataset[7]  # episode 1, frame 2
    assert int(frame["episode_index"]) == 1 and int(frame["frame_index"]) == 2 and frame["task"] == "reach"
    image = frame["observation.images.camera"].numpy()  # LeRobot gives C x H x W floats in [0, 1]
    assert image.shape == (3, 24, 32)
    np.testing.assert_array_equal(np.rint(image * 255).astype(np.uint8), np.repeat(columns["observation/camera"][7]
                                                                                   .transpose(2, 0, 1), 3, axis=0))
    np.testing.assert_array_equal(frame["observation.state"].numpy(), columns["observation/state"][7])
    np.testing.assert_allclose(frame["action"].numpy(), spec.denormalize_action(columns["action"][7]), atol=1e-6)
    last = dataset[8]  # episode 1 ends truncated: done, not a success
    assert bool(last["next.done"]) and bool(last["next.truncated"]) and not bool(last["next.success"])
    assert float(last["next.reward"]) == pytest.approx(float(columns["reward"][8]))


def test_the_learner_loads_a_lerobot_demo_into_the_same_demo_buffer_as_the_npz(tmp_path, LeRobotDataset):
    spec, columns = load_episodes(LIMO_DEMO)
    dataset = write_dataset(tmp_path / "limo", spec, columns)
    buffers = []
    for demo in (LIMO_DEMO, dataset):
        learner = Learner(LearnerConfig(algo="sac", demo=str(demo), run_dir=str(tmp_path / demo.name), metrics_port=0))
        learner.build(demo_spec(demo))  # what `learner --demo PATH` does before it listens
        storage = learner.replay._demo.rows
        buffers.append({name: values[: learner.replay.demo_size].copy() for name, values in storage.arrays.items()})
    assert len(buffers[0]["reward"]) == len(columns["reward"]) > 0
    assert_same_columns(buffers[0], buffers[1])


def test_a_dataset_of_another_robot_is_refused_naming_both_specs(tmp_path, LeRobotDataset):
    go2_spec, columns = load_episodes(GO2_DEMO)
    limo_spec, _ = load_episodes(LIMO_DEMO)
    write_dataset(tmp_path / "go2", go2_spec, columns)
    with pytest.raises(SpecError, match="go2_sim.*limo_sim"):
        read_dataset(tmp_path / "go2", limo_spec)
    learner = Learner(LearnerConfig(algo="sac", demo=str(tmp_path / "go2"), run_dir=str(tmp_path / "run"),
                                    metrics_port=0))  # fmt: skip
    with pytest.raises(SpecError, match="spec_hash"):
        learner.build(limo_spec)


def write_foreign(LeRobotDataset, root, state_dim: int, with_rewards: bool, episodes: int = 2, length: int = 6):
    """A dataset as LeRobot's own recorder writes one (no Tandem sidecar), for a 10-d state, 2-d action robot."""
    features = {"observation.state": {"dtype": "float32", "shape": (state_dim,), "names": None},
                "action": {"dtype": "float32", "shape": (2,), "names": ["v", "w"]}}  # fmt: skip
    if with_rewards:
        features["next.reward"] = {"dtype": "float32", "shape": (1,), "names": None}
        features["next.done"] = {"dtype": "bool", "shape": (1,), "names": None}
    dataset = LeRobotDataset.create("someone/pushes", fps=10, features=features, root=root, use_videos=False)
    rng = np.random.default_rng(3)
    for _ in range(episodes):
        for step in range(length):
            frame = {"task": "push the ball", "observation.state": rng.standard_normal(state_dim).astype(np.float32),
                     "action": rng.uniform(-0.5, 0.5, 2).astype(np.float32)}  # fmt: skip
            if with_rewards:
                frame["next.reward"] = np.array([step == length - 1], np.float32)
                frame["next.done"] = np.array([step == length - 1])
            dataset.add_frame(frame)
        dataset.save_episode()
    dataset.finalize()
    return root


def test_a_dataset_from_elsewhere_is_read_against_the_robot_spec(tmp_path, LeRobotDataset):
    limo_spec, _ = load_episodes(LIMO_DEMO)
    root = write_foreign(LeRobotDataset, tmp_path / "foreign", state_dim=10, with_rewards=False)
    assert demo_spec(root) is None, "a dataset from elsewhere carries no Tandem spec"
    with pytest.raises(SpecError, match="carries no robot spec"):
        read_dataset(root)
    _, columns = read_dataset(root, limo_spec)
    assert len(episode_bounds(columns["episode"])) == 2 and len(columns["reward"]) == 12
    np.testing.assert_array_equal(columns["terminated"], np.tile([False] * 5 + [True], 2))
    np.testing.assert_array_equal(columns["reward"], np.tile([0.0] * 5 + [1.0], 2))  # each a successful demo
    np.testing.assert_array_equal(columns["step"], np.tile(np.arange(6), 2))
    state, next_state = columns["observation/state"], columns["next_observation/state"]
    np.testing.assert_array_equal(next_state[:5], state[1:6])
    np.testing.assert_array_equal(next_state[5], state[5])  # LeRobot's convention at an episode's end
    assert np.all(np.abs(columns["action"]) <= 1) and not columns["intervention"].any()
    np.testing.assert_allclose(limo_spec.denormalize_action(columns["action"][0]),
                               np.clip(LeRobotDataset("x/y", root=root, video_backend="pyav")[0]["action"].numpy(),
                                       limo_spec.action.low_array, limo_spec.action.high_array), atol=1e-6)


def test_a_dataset_whose_features_do_not_match_the_robot_is_refused_clearly(tmp_path, LeRobotDataset):
    limo_spec, _ = load_episodes(LIMO_DEMO)
    root = write_foreign(LeRobotDataset, tmp_path / "foreign", state_dim=7, with_rewards=True)
    with pytest.raises(SpecError, match=r"observation.state is float32\[7\], the robot's state is float32\[10\]"):
        read_dataset(root, limo_spec)
    with pytest.raises(SpecError, match="missing observation.images.camera"):
        read_dataset(root, camera_spec())
    with pytest.raises(SpecError, match="not a LeRobot dataset"):
        read_dataset(tmp_path, limo_spec)


def journal_run(run_dir, spec: RobotSpec) -> dict[str, list[Transition]]:
    """A run directory as the learner leaves it: a durable journal of two actors' batches and episodes.csv."""
    actors = {"actor-a": random_episodes(spec, [4, 3, 5], seed=1), "actor-b": random_episodes(spec, [6, 2], seed=2)}
    actors["actor-b"] = actors["actor-b"][2:] + random_episodes(spec, [3], seed=4, first_episode=9)[:2]
    write_spec(run_dir / "replay", spec)  # actor-b: its first episode lost its start, its last is unfinished
    journal = SegmentJournal(run_dir / "replay", keep_transitions=1000)
    for actor_id, transitions in actors.items():
        for seq, start in enumerate(range(0, len(transitions), 3), start=1):
            journal.append(actor_id, seq, pack_transitions(transitions[start:start + 3]))
    journal.sync()
    journal.close()
    with (run_dir / "episodes.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["actor_id", "success", "episode"])
        for actor_id, episode, success in (("actor-a", 0, 1), ("actor-a", 2, 0), ("actor-a", 4, 1), ("actor-b", 2, 1)):
            writer.writerow([actor_id, success, episode])
    return actors


def test_a_runs_whole_episodes_export_with_their_labels_and_read_back(tmp_path, LeRobotDataset):
    spec = camera_spec()
    actors = journal_run(tmp_path / "run", spec)
    counts = export_run(tmp_path / "run", tmp_path / "out")
    assert counts == {"episodes": 4, "frames": 4 + 3 + 5 + 2, "incomplete_skipped": 2, "damaged_records": 0}
    sidecar = json.loads((tmp_path / "out/meta/tandem.json").read_text())
    assert [(e["actor_id"], e["actor_episode"], e["success"]) for e in sidecar["episodes"]] == [
        ("actor-a", 0, True), ("actor-a", 2, False), ("actor-a", 4, True), ("actor-b", 2, True)]
    dataset = LeRobotDataset("tandem/out", root=tmp_path / "out", video_backend="pyav")
    assert dataset.meta.total_episodes == 4 and len(dataset) == 14
    success = [bool(dataset[i]["next.success"]) for i in range(len(dataset))]
    assert [i for i, s in enumerate(success) if s] == [3, 11, 13]  # last frames of the successful episodes
    _, read = read_dataset(tmp_path / "out")
    kept = actors["actor-a"] + [t for t in actors["actor-b"] if t.episode == 2]
    np.testing.assert_array_equal(read["policy_version"], [t.policy_version for t in kept])
    np.testing.assert_array_equal(read["intervention"], [t.intervention for t in kept])
    np.testing.assert_array_equal(read["observation/camera"], np.stack([t.observation["camera"] for t in kept]))
    np.testing.assert_array_equal(read["next_observation/state"], np.stack([t.next_observation["state"] for t in kept]))
    evaluation = export_run(tmp_path / "run", tmp_path / "eval", which="evaluation")
    assert (evaluation["episodes"], evaluation["frames"]) == (2, 5)
    with pytest.raises(FileExistsError):
        export_run(tmp_path / "run", tmp_path / "out")


def test_learner_export_lerobot_is_one_command_with_one_line_errors(tmp_path):
    journal_run(tmp_path / "run", camera_spec())
    learner = [sys.executable, "-c", "from learner.__main__ import main; main()", "export-lerobot"]
    done = subprocess.run(learner + [str(tmp_path / "run"), str(tmp_path / "out"), "--episodes", "training"],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "exported 2 episodes (9 frames)" in done.stdout and "skipped 2 incomplete episodes" in done.stdout
    assert (tmp_path / "out/meta/info.json").is_file()
    failed = subprocess.run(learner + [str(tmp_path), str(tmp_path / "out2")], capture_output=True, text=True,
                            timeout=120)  # fmt: skip
    assert failed.returncode == 1 and "Traceback" not in failed.stderr
    assert "no durable replay" in failed.stderr and not (tmp_path / "out2").exists()


def test_an_export_with_videos_holds_every_frame_in_lerobots_video_files(tmp_path, LeRobotDataset):
    import av

    journal_run(tmp_path / "run", camera_spec())
    export_run(tmp_path / "run", tmp_path / "out", videos=True)
    info = json.loads((tmp_path / "out/meta/info.json").read_text())
    assert info["features"]["observation.images.camera"]["dtype"] == "video"
    videos = sorted((tmp_path / "out/videos/observation.images.camera").rglob("*.mp4"))
    frames = 0
    for path in videos:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            assert (stream.width, stream.height) == (32, 24)
            frames += sum(1 for _ in container.decode(stream))
    assert frames == 14, "one video frame per exported transition"
    with pytest.raises(SpecError, match="stored as video"):
        read_dataset(tmp_path / "out")
