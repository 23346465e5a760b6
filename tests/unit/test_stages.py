"""Training stages in-process: order, what each publishes and counts, the progress line and the stage gauges."""

from __future__ import annotations

import json
import shutil
import threading

import numpy as np
import pytest
import torch

from common.episodes import transitions_to_columns
from common.protocol import Weights
from common.transport import SequenceTracker
from common.types import Transition
from learner.algorithms import Stage
from learner.app import Learner, LearnerConfig
from learner.stages import StageError, StageRunner, check_stages
from learner.train_loop import TrainConfig
from tests.conftest import metric, wait_until
from tests.integration.test_transport import SPEC
from tests.stage_fixture import NAME

pytestmark = pytest.mark.timeout(60)

SMALL = {"hidden_dims": "16,16", "batch_size": "8", "bc_updates": "6", "bc_rollouts": "2"}


class _Server:
    """Stands in for the network side and keeps what was published."""

    def __init__(self) -> None:
        self.sequences = SequenceTracker()
        self.published: list[Weights] = []

    def publish(self, weights: Weights) -> None:
        self.published.append(weights)


def episode_transitions(version: int, steps: int = 4, evaluation: bool = False, number: int = 0) -> list:
    """One finished (truncated) episode acted with weights `version`."""
    rng = np.random.default_rng(number)
    items = []
    for step in range(steps):
        obs = {"state": rng.standard_normal(4).astype(np.float32)}
        items.append(Transition(obs, rng.uniform(-1, 1, 2).astype(np.float32), 0.0, False, step == steps - 1,
                                obs, number, step, version, evaluation=evaluation))  # fmt: skip
    return items


def episode(version: int, evaluation: bool = False, number: int = 0) -> dict[str, np.ndarray]:
    """The columns of `episode_transitions`, as the server hands them to `Learner.store`."""
    return transitions_to_columns(episode_transitions(version, evaluation=evaluation, number=number), SPEC)


def make_learner(tmp_path, overrides=SMALL, demo_steps: int = 16, **train) -> tuple[Learner, _Server]:
    config = LearnerConfig(algo=NAME, overrides=dict(overrides), run_dir=str(tmp_path), device="cpu",
                           metrics_port=0, train=TrainConfig(**{"learning_starts": 8, **train}))  # fmt: skip
    (tmp_path / "config.json").write_text(json.dumps({"algo": NAME, "overrides": dict(overrides)}))
    learner = Learner(config)
    learner.build(SPEC)
    learner.server = _Server()
    if demo_steps:
        learner.replay.add_demo(transitions_to_columns(episode_transitions(-1, demo_steps, number=99), SPEC))
    return learner, learner.server


def start(learner: Learner) -> tuple[threading.Thread, threading.Event, list[BaseException]]:
    """Run the learner's stages on a thread, like `Learner._train` does."""
    stop, errors = threading.Event(), []

    def run() -> None:
        try:
            learner.stages.run(stop)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, stop, errors


def test_stages_run_in_order_each_doing_only_its_own_work(tmp_path):
    learner, server = make_learner(tmp_path)
    algorithm, loop = learner.loop.algorithm, learner.loop
    thread, stop, errors = start(learner)
    wait_until(lambda: server.published or errors, what="the rollouts stage to publish the BC policy")
    assert not errors, errors
    # Offline: exactly bc_updates offline updates, no online ones, then end_stage("bc").
    assert algorithm.offline_updates == loop.offline_updates == 6 and loop.updates == 0
    assert algorithm.ended_stages == ["bc"]
    bc = server.published[0]
    assert (bc.version, bc.policy) == (1, "bc")
    program, program_config = algorithm.policy_program("bc")
    assert (bc.program, json.loads(bc.program_config_json)) == (program, program_config)
    expected = algorithm.named_policy_state_dict("bc")
    assert all(np.array_equal(bc.tensors[k], expected[k].numpy()) for k in expected)
    assert "stage 2/3 rollouts 'bc_rollouts' 0/2 episodes" in learner.progress_line()

    # Rollouts: only training episodes that ended acting with version 1 count; no updates meanwhile.
    learner.store("a1", episode(1, evaluation=True, number=1))
    learner.store("a1", episode(-1, number=2))
    learner.store("a1", episode(1, number=3))
    assert learner.stages.done() == 1 and loop.updates == 0 and algorithm.ended_stages == ["bc"]
    learner.store("a1", episode(1, number=4))

    # Online: updates follow the data, publishing the online policy.
    wait_until(lambda: loop.updates >= 2 or errors, what="online updates")
    stop.set()
    thread.join(10)
    assert not errors, errors
    assert algorithm.ended_stages == ["bc", "bc_rollouts"]
    online = server.published[1]
    assert (online.version, online.policy) == (2, "online") and algorithm.offline_updates == 6
    assert learner.stages.describe().startswith("stage 3/3 online 'online'")


def test_the_stage_gauges_and_progress_line_follow_the_stage(tmp_path):
    learner, server = make_learner(tmp_path)
    thread, stop, errors = start(learner)
    wait_until(lambda: server.published or errors, what="the rollouts stage")
    assert metric("tandem_learner_stage") == 2
    assert metric("tandem_learner_stage_info", stage="bc_rollouts", kind="rollouts") == 1
    assert metric("tandem_learner_stage_info", stage="bc", kind="offline") == 0
    learner.store("a1", episode(1, number=1))
    wait_until(lambda: metric("tandem_learner_stage_done") == 1, what="the gauge to count the episode")
    assert learner.progress_line().startswith("stage 2/3 rollouts 'bc_rollouts' 1/2 episodes | env steps")
    stop.set()
    thread.join(10)
    assert not errors and metric("tandem_learner_stage") == 2, "stopped mid-stage, the gauge stays there"


def test_a_single_online_stage_keeps_the_progress_line_as_it_was(tmp_path):
    learner, _ = make_learner(tmp_path, {"hidden_dims": "16,16", "batch_size": "8"}, 0)
    learner.stages.stages = [Stage("online", "online", 0)]
    assert learner.progress_line().startswith("env steps")


def test_an_offline_stage_with_nothing_to_train_on_names_the_stage(tmp_path):
    learner, _ = make_learner(tmp_path, demo_steps=0)
    with pytest.raises(StageError, match="offline stage 'bc' has nothing to train on"):
        learner.stages.run(threading.Event())


def test_an_offline_stage_checkpoints_and_a_resume_continues_at_its_count(tmp_path):
    learner, _ = make_learner(tmp_path, checkpoint_every=4)
    thread, stop, errors = start(learner)
    wait_until(lambda: learner.server.published or errors, what="the offline stage to finish")
    stop.set()
    thread.join(10)
    inside, *later = sorted((tmp_path / "checkpoints").glob("ckpt-*"))
    state = torch.load(inside / "state.pt", weights_only=True)
    assert state["stages"]["index"] == 0 and state["stages"]["done"] == 4, "the checkpoint inside the stage"
    assert state["algorithm"]["offline_updates"] == 4 and later, "and the one at the stage's end"
    for path in later:  # as if the learner had been killed before writing them
        shutil.rmtree(path)
    # A learner resumed from that checkpoint does the stage's remaining 2 updates, not 6 more.
    resumed, server = make_learner(tmp_path, checkpoint_every=4)
    resumed._resume()
    assert resumed.stages.describe() == "stage 1/3 offline 'bc' 4/6 updates"
    thread, stop, errors = start(resumed)
    wait_until(lambda: server.published or errors, what="the resumed offline stage to finish")
    stop.set()
    thread.join(10)
    assert not errors and resumed.loop.algorithm.offline_updates == 6 == resumed.loop.offline_updates


def test_a_checkpoint_from_before_stages_resumes_in_the_online_stage(tmp_path):
    learner, _ = make_learner(tmp_path)
    learner.stages.load_state_dict(None)
    assert learner.stages.current.kind == "online"


@pytest.mark.parametrize("stages, problem", [
    ([], "non-empty list"),
    ([Stage("a", "offline", 1)], "must end with an online stage"),
    ([Stage("a", "offline", 1), Stage("a", "online", 0)], "names a stage twice"),
])  # fmt: skip
def test_bad_stage_lists_are_refused_with_the_reason(stages, problem):
    with pytest.raises(StageError, match=problem):
        check_stages(stages, "algo")


def test_the_runner_refuses_a_bad_declaration_before_training(tmp_path):
    learner, _ = make_learner(tmp_path)
    runner = StageRunner(learner.loop, lambda: None, "fixture")
    runner.stages = [Stage("bc", "offline", 1)]
    with pytest.raises(StageError, match="fixture.stages"):
        runner.run(threading.Event())
    assert learner.loop.offline_updates == 0


def test_a_resumed_rollouts_stage_recounts_its_episodes_from_the_durable_replay(tmp_path):
    from common.types import pack_transitions
    from learner.replay.durable import SegmentJournal

    learner, server = make_learner(tmp_path, {**SMALL, "bc_rollouts": "3"})
    thread, stop, errors = start(learner)
    wait_until(lambda: server.published or errors, what="the rollouts stage")
    stop.set()
    thread.join(10)
    journal = SegmentJournal(tmp_path / "replay", 10_000, fsync=False)  # what the server journaled meanwhile
    for seq, (version, evaluation) in enumerate([(1, False), (1, True), (-1, False), (1, False)], start=1):
        journal.append("a1", seq, pack_transitions(episode_transitions(version, evaluation=evaluation, number=seq)))
    journal.close()

    resumed, server = make_learner(tmp_path, {**SMALL, "bc_rollouts": "3"})
    resumed._resume()
    assert resumed.stages.describe() == "stage 2/3 rollouts 'bc_rollouts' 2/3 episodes"
    thread, stop, errors = start(resumed)
    wait_until(lambda: server.published or errors, what="the version published again")
    assert (server.published[0].version, server.published[0].policy) == (1, "bc"), "the same version, not a new one"
    resumed.store("a1", episode(1, number=9))
    wait_until(lambda: resumed.loop.algorithm.ended_stages == ["bc", "bc_rollouts"] or errors, what="the stage end")
    stop.set()
    thread.join(10)
    assert not errors, errors


def test_a_run_stopped_before_its_online_stage_publishes_no_final_policy(tmp_path):
    """Publishing the untrained online policy then would also outdate the rollouts version a resume republishes."""
    learner, server = make_learner(tmp_path)
    thread, stop, errors = start(learner)
    wait_until(lambda: server.published or errors, what="the rollouts stage")
    stop.set()
    thread.join(10)
    summary = learner._finish(0.0)
    assert [w.version for w in server.published] == [1] and "evaluated_policy" not in summary
    assert summary["stage"] == "stage 2/3 rollouts 'bc_rollouts' 0/2 episodes"
