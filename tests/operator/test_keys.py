"""Each operator key's effect on the real control loop, typed into a real pty (see conftest.Rig)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import wait_until

pytestmark = pytest.mark.timeout(30)
# How fast a key stops the robot is a figure, not a pass/fail here (a loaded machine delays the pty
# read itself): benchmarks/operator_latency.py measures it. These tests check what a key does and that
# no action reaches the robot after the stop it causes.


def stop_after(rig, t: float) -> float:
    """Time of the first robot.stop() at or after `t`."""
    return wait_until(lambda: next((s for s in rig.robot.stops if s >= t), None), 5, "robot.stop() after the key")


def episode_rows(rig, summary, name: str) -> np.ndarray:
    """Column `name` of the episode `summary` describes, as the learner stored it."""
    wait_until(lambda: np.sum(rig.columns("episode") == summary.episode) >= summary.steps, 10, "the episode's rows")
    return rig.columns(name)[rig.columns("episode") == summary.episode]


def actions_sent_before(rig, t: float) -> int:
    return sum(1 for sent_at, _ in rig.robot.sent if sent_at < t)


@pytest.mark.parametrize("key, success, reward", [("s", True, 1.0), ("\r", True, 1.0), ("f", False, 0.0)])
def test_a_label_ends_the_episode_at_once_with_the_tasks_own_reward_and_termination(rig, key, success, reward):
    rig.wait_steps(5)
    pressed = rig.press(key)
    stopped = stop_after(rig, pressed)
    summary = rig.wait_episodes(1)
    assert (summary.success, summary.outcome_source) == (success, "operator")
    assert summary.steps == actions_sent_before(rig, stopped), "an action reached the robot after the label"
    rewards, terminated = episode_rows(rig, summary, "reward"), episode_rows(rig, summary, "terminated")
    # Exactly what BallToGoalTask.reward gives on success (1.0, terminated) or failure (0.0, terminated).
    assert (rewards[-1], bool(terminated[-1])) == rig.robot.task.operator_label(success) == (reward, True)
    assert not terminated[:-1].any() and not episode_rows(rig, summary, "truncated").any()
    assert summary.episode_return == pytest.approx(reward)


def test_reset_stops_the_robot_runs_the_task_reset_and_starts_a_new_episode(rig):
    rig.wait_steps(5)
    resets = rig.robot.resets
    pressed = rig.press("r")
    stop_after(rig, pressed)
    summary = rig.wait_episodes(1)
    assert (summary.success, summary.outcome_source) == (False, "operator")
    truncated, terminated = episode_rows(rig, summary, "truncated"), episode_rows(rig, summary, "terminated")
    assert truncated[-1] and not terminated.any(), "a reset cuts the episode (bootstrap through it)"
    wait_until(lambda: rig.robot.resets == resets + 1, 5, "the task's reset")
    rig.wait_steps(3, "steps of the new episode")


def test_pause_holds_the_robot_until_resumed(rig):
    rig.wait_steps(5)
    pressed = rig.press(" ")
    stop_after(rig, pressed)
    wait_until(lambda: rig.operator.paused, 5, "paused")
    sent = len(rig.robot.sent)
    holds = len(rig.robot.stops)
    wait_until(lambda: len(rig.robot.stops) >= holds + 3, 5, "three held control periods")
    assert len(rig.robot.sent) == sent, "an action was sent while paused"
    assert rig.robot.scene_state().robot_w == pytest.approx(0.0, abs=1e-6)
    rig.press(" ")
    rig.wait_steps(3, "actions after resuming")
    assert not rig.summaries, "pausing must not end the episode"


def test_intervention_actions_are_executed_flagged_and_reach_the_learner(rig):
    rig.wait_steps(3)
    rig.press("i")
    wait_until(lambda: rig.operator.intervening, 5, "intervention on")
    rig.press("++")  # speed 0.5 -> 0.7 -> 1.0
    wait_until(lambda: rig.operator.speed == 1.0, 5, "teleop speed 100%")
    rig.press("-")  # -> 0.7
    wait_until(lambda: rig.operator.speed == pytest.approx(0.7), 5, "teleop speed 70%")
    pressed = rig.press("w")
    forward = wait_until(lambda: [a for t, a in rig.robot.sent if t >= pressed and a[0] > 0], 5, "a forward action")
    np.testing.assert_allclose(forward[0], [0.7 * 0.5, 0.0], atol=1e-6)  # 70% of 0.5 m/s, through ActionSafety
    rig.press("i")
    wait_until(lambda: not rig.operator.intervening, 5, "intervention off")
    rig.wait_steps(2)
    rig.press("s")
    summary = rig.wait_episodes(1)
    flags, actions = episode_rows(rig, summary, "intervention"), episode_rows(rig, summary, "action")
    assert summary.interventions == int(flags.sum()) > 0
    assert np.any(np.all(np.isclose(actions[flags], [0.7, 0.0]), axis=1)), "the teleop action, normalised"
    np.testing.assert_allclose(actions[~flags], np.tile([0.0, 0.6], (int((~flags).sum()), 1)), atol=1e-6)
    assert np.all(np.abs(actions[flags][:, 1]) < 1e-6), "the teleop forward key never turns"


def test_estop_stops_the_robot_and_holds_until_released(rig):
    rig.wait_steps(5)
    pressed = rig.press("x")
    stopped = stop_after(rig, pressed)
    summary = rig.wait_episodes(1)
    assert summary.steps == actions_sent_before(rig, stopped)
    sent, holds = len(rig.robot.sent), len(rig.robot.stops)
    rig.press("s\x1b[A")  # labels and teleop are ignored while e-stopped
    wait_until(lambda: len(rig.robot.stops) >= holds + 3, 5, "held control periods")
    assert len(rig.robot.sent) == sent and rig.operator.estopped and len(rig.summaries) == 1
    resets = rig.robot.resets
    rig.press("c")
    rig.wait_steps(3, "actions after the release")
    assert rig.robot.resets == resets + 1, "a released e-stop starts a fresh episode with a task reset"
