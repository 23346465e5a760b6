"""The `proposal` column on the wire, in demo files and replay journals, and the program fields of saved policies."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from common.episodes import load_episodes, save_episodes
from common.protocol import Weights
from common.specs import SpecError
from common.types import PROPOSAL_NONE, PROPOSAL_SECOND, SCALAR_COLUMNS, Transition
from common.types import pack_transitions, unpack_transitions
from learner.best_policy import Tally, load_weights, save_weights
from robots.fake import FakeRobot
from tests.wire_layouts import column_layout

SPEC = FakeRobot().spec
DEMOS = sorted((Path(__file__).resolve().parents[2] / "robots" / "sim" / "demos").glob("*.npz"))


def transitions(proposals: list[int]) -> list[Transition]:
    state = {"state": np.zeros(4, np.float32)}
    return [Transition(state, np.zeros(2, np.float32), 0.0, i == len(proposals) - 1, False, state, episode=1, step=i,
                       proposal=p) for i, p in enumerate(proposals)]  # fmt: skip


def test_the_proposal_travels_on_the_wire_and_through_demo_files(tmp_path):
    proposals = [PROPOSAL_NONE, 0, PROPOSAL_SECOND]
    assert unpack_transitions(pack_transitions(transitions(proposals)), SPEC)["proposal"].tolist() == proposals
    save_episodes(tmp_path / "demo.npz", SPEC, transitions(proposals))
    columns = load_episodes(tmp_path / "demo.npz")[1]
    assert columns["proposal"].tolist() == proposals and columns["proposal"].dtype == np.int8


@pytest.mark.parametrize("demo", DEMOS, ids=[path.stem for path in DEMOS])
def test_bundled_demos_written_before_the_column_load_with_no_proposal(demo):
    with np.load(demo) as data:
        assert "proposal" not in data.files, "this demo was re-recorded: the test no longer covers an old file"
    _, columns = load_episodes(demo)
    assert columns["proposal"].dtype == np.int8 and np.all(columns["proposal"] == PROPOSAL_NONE)
    assert len(columns["proposal"]) == len(columns["reward"])


def test_a_journal_batch_from_before_the_column_gets_its_implied_value_but_other_gaps_are_refused():
    packed = column_layout(pack_transitions(transitions([0, 1])), SPEC.action.shape)  # journals of that time
    old = {k: v for k, v in packed.items() if k != "proposal"}
    assert unpack_transitions(old, SPEC)["proposal"].tolist() == [PROPOSAL_NONE] * 2
    with pytest.raises(SpecError):
        unpack_transitions({k: v for k, v in old.items() if k != "reward"}, SPEC)
    with pytest.raises(SpecError):
        unpack_transitions({**packed, "proposal": packed["proposal"].astype(np.int64)}, SPEC)
    assert SCALAR_COLUMNS["proposal"] == "int8"


def test_a_demo_file_missing_an_original_column_is_still_refused(tmp_path):
    save_episodes(tmp_path / "demo.npz", SPEC, transitions([0]))
    with np.load(tmp_path / "demo.npz") as data:
        kept = {k: data[k] for k in data.files if k != "reward"}
    np.savez(tmp_path / "broken.npz", **kept)
    with pytest.raises(SpecError, match="missing columns"):
        load_episodes(tmp_path / "broken.npz")


def test_a_saved_policy_keeps_its_program_and_an_older_file_runs_one_step(tmp_path):
    weights = Weights(4, "sac", "{}", "hash", {"w": np.ones(3, np.float32)}, policy="bc", program="chunked",
                      program_config_json='{"execute": 3}')  # fmt: skip
    save_weights(weights, tmp_path / "best.npz", Tally(4, 2, 3))
    loaded, _ = load_weights(tmp_path / "best.npz")
    assert (loaded.policy, loaded.program, loaded.program_config_json) == ("bc", "chunked", '{"execute": 3}')
    meta = {"version": 2, "algorithm": "sac", "spec_hash": "hash", "policy_config_json": "{}", "successes": 1,
            "episodes": 1}  # fmt: skip
    np.savez(tmp_path / "old.npz", meta_json=np.array(json.dumps(meta)), **{"tensor/w": np.ones(3, np.float32)})
    old, tally = load_weights(tmp_path / "old.npz")
    assert (old.policy, old.program, old.program_config_json, tally.successes) == ("online", "one_step", "{}", 1)
