"""LimoSim physics and observation: control period, velocity tracking, pusher, obstacle, egocentric state."""

from __future__ import annotations

import math

import numpy as np
import pytest

from robots.sim.limo import LIMO_CONTROL_HZ, LimoSim, egocentric_state
from robots.sim.limo_scene import PUSHER_CUP_X, SceneLayout, SceneState, to_robot_frame


def test_action_envelope_is_the_real_limo_envelope():
    spec = LimoSim().spec
    assert spec.control_hz == 10.0
    assert spec.action.low == (-0.5, -1.5) and spec.action.high == (0.5, 1.5)


def test_rejects_unknown_options():
    with pytest.raises(ValueError):
        LimoSim(observation="depth")
    with pytest.raises(ValueError):
        LimoSim(observation="image", image_size=100)


def test_each_send_action_advances_exactly_one_control_period(limo):
    start = limo.sim_time
    for _ in range(5):
        limo.send_action(np.array([0.2, 0.0]))
    assert limo.sim_time - start == pytest.approx(5 / LIMO_CONTROL_HZ)
    observed_time = limo.sim_time
    limo.get_observation()
    assert limo.sim_time == observed_time  # reading never steps the simulation


def test_base_tracks_commanded_velocities_without_side_slip(limo):
    limo.reset(SceneLayout(ball_xy=(1.5, 1.5), obstacle_xy=(-1.0, 1.5)))  # nothing in the way
    for _ in range(15):
        limo.send_action(np.array([0.4, 0.8]))
    scene = limo.scene_state()
    assert scene.robot_v == pytest.approx(0.4, abs=0.02)
    assert scene.robot_w == pytest.approx(0.8, abs=0.02)
    # Differential drive: the world velocity points along the heading.
    previous = limo.scene_state().robot_xy
    limo.send_action(np.array([0.4, 0.0]))  # straight, so the displacement shows the velocity direction
    step = limo.scene_state().robot_xy - previous
    lateral = -math.sin(scene.robot_yaw) * step[0] + math.cos(scene.robot_yaw) * step[1]
    assert abs(lateral) < 0.01  # metres of side slip in one control period


def test_stop_halts_the_base_immediately(limo):
    for _ in range(5):
        limo.send_action(np.array([0.5, 1.0]))
    assert limo.scene_state().robot_v > 0.3
    limo.stop()
    scene = limo.scene_state()
    assert scene.robot_v == 0.0 and scene.robot_w == 0.0
    # The stop action keeps it at rest.
    limo.send_action(limo.safety.stop_action)
    assert abs(limo.scene_state().robot_v) < 0.01


def test_pusher_pushes_the_ball_and_keeps_it_in_front(limo):
    limo.reset(SceneLayout(ball_xy=(0.4, 0.03), goal_xy=(1.8, 0.0), obstacle_xy=(0.5, 1.2)))
    for _ in range(15):
        limo.send_action(np.array([0.4, 0.0]))
    scene = limo.scene_state()
    ball_in_robot = to_robot_frame(scene, scene.ball_xy)
    assert scene.ball_xy[0] > 0.7  # the ball was pushed forward
    assert abs(ball_in_robot[1]) < 0.08 and ball_in_robot[0] < PUSHER_CUP_X + 0.15  # and stayed in the cup


def test_obstacle_is_movable_and_collidable(limo):
    limo.reset(SceneLayout(ball_xy=(0.5, 1.2), obstacle_xy=(0.5, 0.0)))
    for _ in range(15):
        limo.send_action(np.array([0.4, 0.0]))
    scene = limo.scene_state()
    assert scene.obstacle_xy[0] > 0.6  # pushed, not passed through
    assert scene.robot_xy[0] < scene.obstacle_xy[0]


def test_egocentric_state_rotates_into_the_robot_frame():
    scene = SceneState(
        robot_xy=np.array([1.0, 1.0]), robot_yaw=math.pi / 2, robot_v=0.25, robot_w=-0.75,
        ball_xy=np.array([1.0, 2.0]), goal_xy=np.array([0.0, 1.0]), obstacle_xy=np.array([1.0, 0.0]),
    )
    state = egocentric_state(scene)
    assert state.dtype == np.float32 and state.shape == (10,)
    # Facing +y: the ball 1 m ahead, the goal 1 m to the left, the obstacle 1 m behind (all / 2 m).
    np.testing.assert_allclose(state, [0.5, 0, 0, 0.5, -0.5, 0.5, -0.5, 0, 0.5, -0.5], atol=1e-6)


def test_state_observation_is_order_one(limo):
    for _ in range(20):
        limo.send_action(np.array([0.5, 1.5]))
        assert np.all(np.abs(limo.get_observation()["state"]) <= 3.0)
