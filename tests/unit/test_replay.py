"""Replay storage, mixed sampling, thread safety, demo loading and device transfer."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from common.episodes import save_episodes
from common.specs import ArraySpec, BoundedSpec, ImageSpec, RobotSpec, SpecError
from common.types import Transition, transition_columns
from learner.replay import ReplayBuffer, RingStorage, SamplingSpec, load_demo_columns, to_torch


def make_spec(name: str = "toy", image: bool = True) -> RobotSpec:
    observation = {"state": ArraySpec("state", (3,))}
    if image:
        observation["camera"] = ImageSpec("camera", (8, 8, 3))
    return RobotSpec(name, observation, BoundedSpec("action", (2,), low=(-1.0, -2.0), high=(1.0, 2.0)), 10.0)


def make_columns(spec: RobotSpec, count: int, start: int = 0) -> dict[str, np.ndarray]:
    """Rows whose every value encodes the row number, so we can tell which rows came back."""
    ids = np.arange(start, start + count)
    columns = {}
    for name, column in transition_columns(spec).items():
        shape = (count,) + column.shape
        values = ids.reshape((count,) + (1,) * len(column.shape))
        if column.dtype == "bool":
            columns[name] = np.broadcast_to(values % 2 == 1, shape).copy()
        elif column.dtype == "uint8":
            columns[name] = np.broadcast_to(values % 256, shape).astype(np.uint8)
        else:
            columns[name] = np.broadcast_to(values, shape).astype(column.dtype)
    return columns


def test_storage_wraps_around_keeping_the_newest_rows():
    storage = RingStorage({"x": ArraySpec("x", (2,))}, capacity=5)
    storage.add({"x": np.stack([np.arange(4.0)] * 2, axis=1).astype(np.float32)})
    storage.add({"x": np.stack([np.arange(4.0, 7.0)] * 2, axis=1).astype(np.float32)})
    assert storage.size == 5 and storage.capacity == 5 and storage.cursor == 2
    # Rows 0 and 1 were overwritten by 5 and 6; slots hold [5, 6, 2, 3, 4].
    np.testing.assert_array_equal(storage.get(np.arange(5))["x"][:, 0], [5, 6, 2, 3, 4])


def test_storage_keeps_only_the_tail_of_an_oversized_batch():
    storage = RingStorage({"x": ArraySpec("x", ())}, capacity=3)
    storage.add({"x": np.arange(1.0, 3.0, dtype=np.float32)})
    storage.add({"x": np.arange(10.0, 17.0, dtype=np.float32)})
    assert storage.size == 3 and storage.total_added == 9
    assert sorted(storage.get(np.arange(3))["x"].tolist()) == [14.0, 15.0, 16.0]


def test_storage_rejects_wrong_columns_shapes_and_dtypes():
    storage = RingStorage({"x": ArraySpec("x", (2,)), "img": ArraySpec("img", (2, 2, 1), "uint8")}, capacity=4)
    good = {"x": np.zeros((1, 2), np.float32), "img": np.zeros((1, 2, 2, 1), np.uint8)}
    with pytest.raises(SpecError, match="missing"):
        storage.add({"x": good["x"]})
    with pytest.raises(SpecError, match="rows are"):
        storage.add({**good, "x": np.zeros((1, 3), np.float32)})
    with pytest.raises(SpecError, match="cannot store"):
        storage.add({**good, "img": np.zeros((1, 2, 2, 1), np.float32)})
    with pytest.raises(SpecError, match="different lengths"):
        storage.add({**good, "x": np.zeros((2, 2), np.float32)})
    assert storage.size == 0


def test_images_stay_uint8_in_storage_batches_and_tensors():
    spec = make_spec()
    buffer = ReplayBuffer(spec, capacity=16)
    buffer.add_online(make_columns(spec, 10), "a1")
    batch = buffer.sample(SamplingSpec(batch_size=4), np.random.default_rng(0))
    assert batch.observation["camera"].dtype == np.uint8
    assert batch.next_observation["camera"].shape == (4, 8, 8, 3)
    tensors = to_torch(batch, torch.device("cpu"))
    assert tensors.observation["camera"].dtype == torch.uint8
    assert tensors.observation["state"].dtype == torch.float32
    for field in (tensors.reward, tensors.terminated, tensors.is_demo, tensors.action):
        assert field.dtype == torch.float32
    assert tensors.extras["policy_version"].dtype == torch.int32


def test_batch_rows_are_consistent_transitions():
    spec = make_spec()
    buffer = ReplayBuffer(spec, capacity=64)
    buffer.add_online(make_columns(spec, 50), "a1")
    batch = buffer.sample(SamplingSpec(batch_size=32), np.random.default_rng(1))
    ids = batch.reward
    np.testing.assert_array_equal(batch.observation["state"][:, 0], ids)
    np.testing.assert_array_equal(batch.action[:, 1], ids)
    np.testing.assert_array_equal(batch.terminated, (ids % 2 == 1).astype(np.float32))
    assert batch.terminated.dtype == np.float32


@pytest.mark.parametrize("batch_size, ratio, expected_demo", [(256, 0.5, 128), (256, 0.25, 64), (10, 0.33, 3)])
def test_mixed_sampling_takes_exactly_the_demo_ratio(batch_size, ratio, expected_demo):
    spec = make_spec(image=False)
    buffer = ReplayBuffer(spec, capacity=1000, demo_capacity=1000)
    buffer.add_online(make_columns(spec, 500, start=0), "a1")
    buffer.add_demo(make_columns(spec, 100, start=10_000))
    batch = buffer.sample(SamplingSpec(batch_size, demo_ratio=ratio), np.random.default_rng(2))
    is_demo = batch.is_demo.astype(bool)
    assert batch.size == batch_size and is_demo.sum() == expected_demo
    # The flag tells the truth: demo rows carry ids >= 10000.
    np.testing.assert_array_equal(batch.reward >= 10_000, is_demo)


def test_sampling_falls_back_to_whichever_buffer_has_data():
    spec = make_spec(image=False)
    buffer = ReplayBuffer(spec, capacity=100, demo_capacity=100)
    with pytest.raises(ValueError, match="empty"):
        buffer.sample(SamplingSpec(8), np.random.default_rng(0))
    buffer.add_demo(make_columns(spec, 5))
    assert buffer.sample(SamplingSpec(8), np.random.default_rng(0)).is_demo.tolist() == [1.0] * 8
    fresh = ReplayBuffer(spec, capacity=100)
    fresh.add_online(make_columns(spec, 5), "a1")
    assert fresh.sample(SamplingSpec(8), np.random.default_rng(0)).is_demo.tolist() == [0.0] * 8


def test_demo_buffer_refuses_to_overwrite_demonstrations():
    spec = make_spec(image=False)
    buffer = ReplayBuffer(spec, capacity=10, demo_capacity=6)
    buffer.add_demo(make_columns(spec, 4))
    with pytest.raises(ValueError, match="demo_capacity"):
        buffer.add_demo(make_columns(spec, 3))
    assert buffer.demo_size == 4


def test_adding_while_sampling_from_another_thread():
    spec = make_spec()
    buffer = ReplayBuffer(spec, capacity=300)
    buffer.add_online(make_columns(spec, 1), "a1")
    errors: list[BaseException] = []
    sampling_started = threading.Event()

    def writer() -> None:
        try:
            sampling_started.wait(timeout=10)
            for chunk in range(1000):
                buffer.add_online(make_columns(spec, 7, start=chunk * 7), "a1")
        except BaseException as error:  # surfaced in the main thread below
            errors.append(error)

    thread = threading.Thread(target=writer)
    thread.start()
    rng = np.random.default_rng(3)
    sampling = SamplingSpec(batch_size=32)
    sampling_started.set()
    while thread.is_alive():
        batch = buffer.sample(sampling, rng)
        # Every sampled row must be internally consistent (never half-written).
        np.testing.assert_array_equal(batch.observation["state"][:, 0], batch.reward)
        np.testing.assert_array_equal(batch.observation["camera"][:, 0, 0, 0], batch.reward.astype(np.int64) % 256)
    thread.join(timeout=10)
    assert not thread.is_alive() and not errors
    assert buffer.online_size == 300


def _demo_transitions(spec: RobotSpec, count: int) -> list[Transition]:
    rng = np.random.default_rng(0)
    observations = [{k: s.zeros() + i for k, s in spec.observation.items()} for i in range(count + 1)]
    return [
        Transition(observations[i], rng.uniform(-1, 1, 2).astype(np.float32), float(i), i == count - 1, False,
                   observations[i + 1], episode=0, step=i)
        for i in range(count)
    ]


def test_demo_file_loads_into_the_demo_buffer(tmp_path):
    spec = make_spec()
    path = save_episodes(tmp_path / "demo.npz", spec, _demo_transitions(spec, 6))
    columns = load_demo_columns(path, spec)
    buffer = ReplayBuffer(spec, capacity=10)
    buffer.add_demo(columns)
    assert buffer.demo_size == 6
    assert columns["observation/camera"].dtype == np.uint8


def test_demo_file_from_another_spec_names_both_hashes(tmp_path):
    recorded = make_spec("franka")
    path = save_episodes(tmp_path / "demo.npz", recorded, _demo_transitions(recorded, 3))
    learner_spec = make_spec("franka", image=False)
    with pytest.raises(SpecError) as error:
        load_demo_columns(path, learner_spec)
    assert recorded.spec_hash in str(error.value) and learner_spec.spec_hash in str(error.value)
