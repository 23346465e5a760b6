"""BallToGoalTask: layouts, success and failure detection, and the scripted expert's success rate."""

from __future__ import annotations

import numpy as np
import pytest

from robots.sim.expert import BallToGoalExpert
from robots.sim.limo import LimoSim
from robots.sim.limo_scene import ARENA_CENTER, ARENA_HALF_SIZE, GOAL_RADIUS
from robots.sim.make_demo import run_expert_episode
from robots.sim.tasks import BallToGoalTask, distance_to_segment, sample_ball_to_goal_layout


def test_layouts_follow_the_randomisation_ranges():
    rng = np.random.default_rng(0)
    for _ in range(200):
        layout = sample_ball_to_goal_layout(rng)
        robot, ball, goal = (np.array(xy) for xy in (layout.robot_xy, layout.ball_xy, layout.goal_xy))
        obstacle = np.array(layout.obstacle_xy)
        assert np.all(np.abs(robot) <= 0.05) and abs(layout.robot_yaw) <= 0.1
        assert 0.4 <= ball[0] <= 0.6 and abs(ball[1]) <= 0.12
        assert 1.2 <= goal[0] <= 1.5 and abs(goal[1]) <= 0.3
        # The obstacle never sits on the straight robot -> ball -> goal path.
        assert distance_to_segment(obstacle, robot, ball) >= 0.35
        assert distance_to_segment(obstacle, ball, goal) >= 0.35


def test_reset_is_deterministic_given_the_seed():
    def first_layouts(seed):
        robot = LimoSim(seed=seed)
        robot.connect()
        states = []
        for _ in range(3):
            robot.task.reset(robot)
            states.append(robot.scene_state())
        return states

    same_a, same_b, other = first_layouts(5), first_layouts(5), first_layouts(6)
    for a, b in zip(same_a, same_b):
        np.testing.assert_array_equal(a.ball_xy, b.ball_xy)
        np.testing.assert_array_equal(a.obstacle_xy, b.obstacle_xy)
    assert not np.array_equal(same_a[0].ball_xy, other[0].ball_xy)
    assert not np.array_equal(same_a[0].ball_xy, same_a[1].ball_xy)  # episodes differ from one another


def test_fresh_episode_is_neither_success_nor_failure(limo):
    assert limo.task.reward(limo.get_observation()) == (0.0, False)


def test_ball_in_goal_is_success(limo):
    goal = limo.scene_state().goal_xy
    limo.set_object_position("ball", goal + np.array([0.0, GOAL_RADIUS * 0.8]))
    assert limo.task.reward(limo.get_observation()) == (1.0, True)
    assert limo.task.end_reason == "success"


def test_ball_just_outside_goal_is_not_success(limo):
    goal = limo.scene_state().goal_xy
    limo.set_object_position("ball", goal + np.array([GOAL_RADIUS * 1.2, 0.0]))
    assert limo.task.reward(limo.get_observation()) == (0.0, False)


@pytest.mark.parametrize("offset", [(ARENA_HALF_SIZE + 0.1, 0.0), (0.0, -ARENA_HALF_SIZE - 0.1)])
def test_ball_out_of_arena_terminates_without_reward(limo, offset):
    limo.set_object_position("ball", np.array(ARENA_CENTER) + np.array(offset))
    assert limo.task.reward(limo.get_observation()) == (0.0, True)
    assert limo.task.end_reason == "ball_left_arena"


def test_robot_out_of_arena_terminates_without_reward(limo):
    limo.reset()  # nominal layout, then drive backwards out of the arena (its back edge is 1.25 m behind)
    for _ in range(40):
        limo.send_action(np.array([-0.5, 0.0]))
        reward, terminated = limo.task.reward(limo.get_observation())
        if terminated:
            break
    assert (reward, terminated) == (0.0, True) and limo.task.end_reason == "robot_left_arena"
    assert limo.scene_state().robot_xy[0] < ARENA_CENTER[0] - ARENA_HALF_SIZE


def test_reward_before_reset_is_an_error():
    with pytest.raises(RuntimeError):
        BallToGoalTask().reward({})


def test_max_steps_is_ten_seconds_at_ten_hertz():
    assert LimoSim().task.max_steps == 100


def test_expert_succeeds_on_95_percent_of_randomised_starts():
    robot = LimoSim(seed=1234)
    robot.connect()
    robot.enable()
    expert = BallToGoalExpert()
    results = [run_expert_episode(robot, expert, episode=i) for i in range(40)]
    success_rate = np.mean([r.success for r in results])
    mean_length = np.mean([r.length for r in results if r.success])
    assert success_rate >= 0.95, f"expert success {success_rate:.2f}"
    assert 20 <= mean_length <= 50, f"expert mean episode length {mean_length:.1f}"
