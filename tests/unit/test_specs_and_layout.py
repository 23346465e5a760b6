"""Specs (hash, validation, action normalisation) and the packed wire layout of transitions."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest

from common.episodes import episode_bounds, load_episodes, save_episodes
from common.specs import ArraySpec, BoundedSpec, ImageSpec, RobotSpec, SpecError, spec_differences
from common.codec import DecodeError, decode, encode
from common.protocol import Ack, TransitionBatch
from common.types import STEPS, Transition, concatenate_packed, pack_transitions, unpack_transitions
from tests.wire_layouts import column_layout, step_records


def make_spec(low=(-0.5, -1.5), high=(0.5, 1.5), hz=10.0) -> RobotSpec:
    return RobotSpec(
        "limo_sim",
        {"state": ArraySpec("state", (3,)), "image": ImageSpec("image", (8, 8, 1))},
        BoundedSpec("action", (2,), "float32", low, high),
        hz,
        {"simulated": "true"},
    )


def make_transitions(spec: RobotSpec, count: int, episode_end: int | None = None) -> list[Transition]:
    rng = np.random.default_rng(0)

    def obs(i: int) -> dict:
        return {"state": np.full(3, i, np.float32), "image": rng.integers(0, 255, (8, 8, 1), dtype=np.uint8)}

    current, out = obs(0), []
    for i in range(count):
        nxt = obs(i + 1)
        done = i == episode_end
        out.append(Transition(current, rng.uniform(-1, 1, 2).astype(np.float32), float(done), done, False, nxt, step=i))
        current = obs(1000 + i) if done else nxt
    return out


def test_spec_hash_is_stable_and_sensitive_to_what_matters():
    spec = make_spec()
    assert spec.spec_hash == RobotSpec.from_json(spec.to_json()).spec_hash
    assert spec.spec_hash != make_spec(high=(0.6, 1.5)).spec_hash
    assert spec.spec_hash != make_spec(hz=20.0).spec_hash
    relabelled = RobotSpec(spec.name, spec.observation, spec.action, spec.control_hz, {"note": "x"})
    assert relabelled.spec_hash == spec.spec_hash  # metadata does not change compatibility
    renamed = RobotSpec("limo", spec.observation, spec.action, spec.control_hz)
    assert renamed.spec_hash == spec.spec_hash  # nor the name: a twin and its real robot may share a hash


def test_field_names_are_part_of_the_spec_and_its_hash():
    def with_proprio(fields):
        proprio = ArraySpec("proprio", (2,), fields=fields)
        return RobotSpec("r", {"proprio": proprio}, BoundedSpec("action", (1,), "float32", -1.0, 1.0), 10.0)

    spec = with_proprio(("v", "w"))
    assert RobotSpec.from_json(spec.to_json()) == spec
    assert spec.spec_hash != with_proprio(("w", "v")).spec_hash != with_proprio(()).spec_hash
    assert "fields" not in make_spec().to_json(), "unnamed specs keep their JSON (and stored files' hashes)"
    with pytest.raises(SpecError, match="3 field names"):
        ArraySpec("proprio", (2,), fields=("a", "b", "c"))


def test_spec_differences_list_every_hashed_part_that_differs():
    spec = make_spec()
    assert spec_differences(spec, RobotSpec("other", spec.observation, spec.action, spec.control_hz)) == []
    other = RobotSpec("other", {"state": ArraySpec("state", (4,)), "extra": ArraySpec("extra", (1,), "int32")},
                      BoundedSpec("action", (2,), "float32", (-0.5, -1.0), (0.5, 1.5)), 5.0)
    assert spec_differences(spec, other) == [
        "observation 'extra' not expected (got int32[1])",
        "observation 'image' missing (expected uint8[8, 8, 1])",
        "observation 'state' shape: expected (3), got (4)",
        "action low: expected (-0.5, -1.5), got (-0.5, -1)",
        "control rate: expected 10 Hz, got 5 Hz",
    ]


def test_a_refused_handshake_lists_the_differences():
    from common.protocol import Hello
    from learner.server import _listed_differences

    spec, other = make_spec(), make_spec(hz=20.0)
    hello = Hello("a1", other.name, other.spec_hash, other.to_json())
    assert _listed_differences(spec, hello) == ": control rate: expected 10 Hz, got 20 Hz"
    assert _listed_differences(spec, Hello("a1", "x", "h", "not json")) == ""


def test_action_normalisation_round_trips_and_clips():
    spec = make_spec()
    physical = np.array([0.25, -0.75], np.float32)
    assert np.allclose(spec.denormalize_action(spec.normalize_action(physical)), physical)
    assert np.allclose(spec.denormalize_action(np.array([5.0, -5.0])), [0.5, -1.5])
    assert np.allclose(spec.normalize_action(np.array([0.5, -1.5])), [1.0, -1.0])


def test_observation_validation_names_the_problem():
    spec = make_spec()
    good = {"state": np.zeros(3, np.float32), "image": np.zeros((8, 8, 1), np.uint8)}
    spec.validate_observation(good)
    with pytest.raises(SpecError, match="state"):
        spec.validate_observation({**good, "state": np.zeros(4, np.float32)})
    with pytest.raises(SpecError, match="NaN"):
        spec.validate_observation({**good, "state": np.array([0, np.nan, 0], np.float32)})
    with pytest.raises(SpecError, match="keys"):
        spec.validate_observation({"state": good["state"]})


def test_bad_specs_are_refused():
    with pytest.raises(SpecError):
        BoundedSpec("a", (2,), "float32", (1.0, 0.0), (0.0, 1.0))
    with pytest.raises(SpecError):
        ImageSpec("img", (8, 8), "uint8")
    with pytest.raises(SpecError):
        ArraySpec("x", (2,), "object")


def test_packing_sends_each_observation_once_within_a_batch():
    spec = make_spec()
    transitions = make_transitions(spec, 10)
    packed = pack_transitions(transitions)
    assert packed["rows/image"].shape[0] == 11  # 10 steps share 11 frames
    columns = unpack_transitions(packed, spec)
    for i, tr in enumerate(transitions):
        assert np.array_equal(columns["observation/image"][i], tr.observation["image"])
        assert np.array_equal(columns["next_observation/image"][i], tr.next_observation["image"])
        assert np.array_equal(columns["action"][i], tr.action)


def test_packing_across_an_episode_end_keeps_both_observations():
    spec = make_spec()
    transitions = make_transitions(spec, 6, episode_end=2)
    columns = unpack_transitions(pack_transitions(transitions), spec)
    assert columns["terminated"].tolist() == [False, False, True, False, False, False]
    for i, tr in enumerate(transitions):  # the rows are gathered here, not a view of one run
        assert np.array_equal(columns["observation/state"][i], tr.observation["state"])
        assert np.array_equal(columns["next_observation/state"][i], tr.next_observation["state"])


@pytest.mark.parametrize("index", [[0], [3], [2, 3], [3, 2], [1, 2, 3, 4], [0, 2, 1, 3], [0, 1, 1, 3], [4, 3, 2, 1, 0]])
def test_expanded_rows_equal_numpy_indexing_whether_a_view_or_a_gather(index):
    """Consecutive indexes come back as a view of the rows, any others gathered; both equal rows[index]."""
    from common.types import _rows_at

    rows = np.arange(5 * 3, dtype=np.float32).reshape(5, 3)
    index = np.array(index, dtype=np.int32)
    expanded = _rows_at(rows, index)
    assert np.array_equal(expanded, rows[index])
    consecutive = bool((np.diff(index) == 1).all())
    assert np.shares_memory(expanded, rows) == consecutive


def test_packing_refuses_a_frame_of_another_shape_instead_of_reshaping_it():
    spec = make_spec()
    transitions = make_transitions(spec, 4)
    transitions[2].next_observation = {**transitions[2].next_observation, "image": np.zeros((8, 16, 1), np.uint8)}
    with pytest.raises(ValueError, match="same shape"):  # concatenating then reshaping would have accepted it
        pack_transitions(transitions)


def test_batches_concatenated_unpack_to_each_batchs_columns_in_turn_and_stay_unchanged():
    spec = make_spec()
    transitions = make_transitions(spec, 9, episode_end=3)
    batches = [pack_transitions(part) for part in (transitions[:1], transitions[1:6], transitions[6:])]
    originals = [{k: v.copy() for k, v in arrays.items()} for arrays in batches]
    merged = unpack_transitions(concatenate_packed(batches, spec), spec)
    each = [unpack_transitions(arrays, spec) for arrays in batches]
    assert merged.keys() == each[0].keys()
    for name in merged:
        assert np.array_equal(merged[name], np.concatenate([columns[name] for columns in each])), name
    assert all(np.array_equal(a[k], b[k]) for a, b in zip(batches, originals) for k in a), "an input was modified"


def test_an_index_past_its_own_batchs_rows_is_refused_though_the_merged_rows_would_hold_it():
    spec = make_spec()
    first, second = (dict(pack_transitions(make_transitions(spec, 2))) for _ in range(2))
    step_records(first, spec.action.shape)["next_obs_index"][-1] = len(first["rows/state"])  # row 0 of `second`
    with pytest.raises(SpecError, match="own batch"):
        concatenate_packed([first, second], spec)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a: a.pop("rows/image"), "differ in their arrays"),
        (lambda a: a.update({"rows/image": a["rows/image"][:, :4]}), "differ in shape"),
        (lambda a: a.update({STEPS: a[STEPS][:, :-1]}), "step records"),
    ],
)
def test_batches_that_do_not_fit_together_are_refused(change, message):
    spec = make_spec()
    first, second = (dict(pack_transitions(make_transitions(spec, 2))) for _ in range(2))
    change(second)
    with pytest.raises(SpecError, match=message):
        concatenate_packed([first, second], spec)


def corrupt_field(name: str, change):
    """Corrupt one step field of a packed batch in place."""

    def corrupt(arrays: dict, spec: RobotSpec) -> None:
        steps = step_records(arrays, spec.action.shape)
        steps[name] = change(steps[name])

    return corrupt


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (lambda a, spec: a.pop(STEPS), "expected"),
        (lambda a, spec: a.update(extra=a[STEPS]), "expected"),
        (corrupt_field("obs_index", lambda v: v + 100), "out of range"),
        (corrupt_field("next_obs_index", lambda v: v - 100), "out of range"),
        (corrupt_field("action", lambda v: v * 5), r"\[-1, 1\]"),
        (corrupt_field("action", lambda v: np.where(v > 0, np.nan, v)), "NaN"),
        (corrupt_field("reward", lambda v: v + np.inf), "NaN"),
        (lambda a, spec: a.update({"rows/state": a["rows/state"].astype(np.float64)}), "state"),
        (lambda a, spec: a.update({STEPS: a[STEPS][:, :-1]}), "step records"),
        (lambda a, spec: a.update({STEPS: a[STEPS].view(np.int8)}), "step records"),
        (lambda a, spec: a.update({STEPS: a[STEPS][:0]}), "empty"),
    ],
)
def test_unpack_rejects_inconsistent_batches(corrupt, message):
    spec = make_spec()
    arrays = dict(pack_transitions(make_transitions(spec, 4)))
    corrupt(arrays, spec)
    with pytest.raises(SpecError, match=message):
        unpack_transitions(arrays, spec)


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (lambda a: a.pop("reward"), "expected"),
        (lambda a: a.update(obs_index=a["obs_index"] + 100), "out of range"),
        (lambda a: a.update(action=a["action"] * 5), r"\[-1, 1\]"),
        (lambda a: a.update(reward=a["reward"][:-1]), "reward"),
        (lambda a: a.update(step=a["step"].astype(np.int64)), "step"),
    ],
)
def test_the_column_layout_of_protocol_4_still_unpacks_and_is_checked_as_strictly(corrupt, message):
    spec = make_spec()
    transitions = make_transitions(spec, 6, episode_end=2)
    packed = pack_transitions(transitions)
    old = column_layout(packed, spec.action.shape)
    new_columns, old_columns = unpack_transitions(packed, spec), unpack_transitions(old, spec)
    assert new_columns.keys() == old_columns.keys()
    assert all(np.array_equal(new_columns[k], old_columns[k]) for k in new_columns)
    corrupt(old)
    with pytest.raises(SpecError, match=message):
        unpack_transitions(old, spec)


def test_a_batch_is_a_header_its_observation_rows_and_one_frame_of_step_records():
    spec = make_spec()
    frames = encode(TransitionBatch(1, pack_transitions(make_transitions(spec, 5))))
    assert len(frames) == 1 + len(spec.observation) + 1  # header, one frame of rows per observation key, steps


def test_demo_file_round_trip(tmp_path):
    spec = make_spec()
    transitions = make_transitions(spec, 5, episode_end=4)
    path = save_episodes(tmp_path / "demo.npz", spec, transitions)
    loaded_spec, columns = load_episodes(path)
    assert loaded_spec.spec_hash == spec.spec_hash
    assert columns["terminated"].tolist() == [False] * 4 + [True]
    assert np.array_equal(columns["observation/image"][2], transitions[2].observation["image"])
    assert episode_bounds(np.array([3, 3, 4, 4, 4, 9])) == [(0, 2), (2, 5), (5, 6)]


def test_a_non_tandem_npz_is_refused(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, x=np.zeros(3))
    with pytest.raises(SpecError, match="format version"):
        load_episodes(path)


def with_version(frames: list, version: int) -> list:
    """The frames as a peer of protocol `version` would have encoded them (the header's "v")."""
    header = msgpack.unpackb(bytes(frames[0]), raw=False)
    return [msgpack.packb({**header, "v": version}, use_bin_type=True), *map(bytes, frames[1:])]


def test_batches_an_upgraded_actor_spooled_under_protocol_4_are_read_other_old_messages_are_not():
    spec = make_spec()
    packed = pack_transitions(make_transitions(spec, 5))
    spooled = with_version(encode(TransitionBatch(3, column_layout(packed, spec.action.shape))), 4)
    batch = decode(spooled)
    columns, expected = unpack_transitions(batch.arrays, spec), unpack_transitions(packed, spec)
    assert batch.seq == 3 and all(np.array_equal(columns[k], expected[k]) for k in expected)
    with pytest.raises(DecodeError, match="version"):
        decode(with_version(encode(Ack(3, 0, 0)), 4))
    with pytest.raises(DecodeError, match="version"):
        decode(with_version(encode(TransitionBatch(3, packed)), 3))
