"""The twins as gymnasium environments (robots/sim/gym_envs.py): gymnasium's own checker on every registered id,
seeding, episode ends, action clipping and refusal, rendering and release of the MuJoCo resources."""

from __future__ import annotations

import threading
import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from robots.base import ROBOTS, RobotError
from robots.sim import gym_envs
from robots.sim.tasks import TASKS

TANDEM_IDS = sorted(env_id for env_id in gymnasium.registry if env_id.startswith("tandem/"))
STATE_IDS = [env_id for env_id in TANDEM_IDS if gym_envs.IMAGE_SUFFIX + "-v" not in env_id]
LIMO = "tandem/LimoBallToGoal-v0"


@pytest.fixture
def limo():
    """The LIMO environment, unwrapped (no TimeLimit), closed after the test."""
    env = gymnasium.make(LIMO, max_episode_steps=-1).unwrapped
    yield env
    env.close()


def render_threads() -> int:
    return sum(thread.name.startswith("mujoco-render") for thread in threading.enumerate())


def test_every_twin_and_every_task_is_registered():
    twins = {name for name in ROBOTS.names() if name.endswith("_sim")}
    registered = {robot for robot, _task in gym_envs.TWIN_TASKS.values()}
    assert registered == twins
    assert {task for _robot, task in gym_envs.TWIN_TASKS.values()} == set(TASKS.names())
    assert TANDEM_IDS == sorted(gym_envs.env_ids())
    assert len(TANDEM_IDS) == 2 * len(gym_envs.TWIN_TASKS)  # a state and an image variant each


def test_registering_again_changes_nothing():
    before = {env_id: gymnasium.spec(env_id) for env_id in TANDEM_IDS}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # gymnasium warns when an id is overridden
        gym_envs.register_envs()
    assert {env_id: gymnasium.spec(env_id) for env_id in TANDEM_IDS} == before


@pytest.mark.parametrize("env_id", TANDEM_IDS)
def test_gymnasiums_checker_passes_with_warnings_as_errors(env_id):
    env = gymnasium.make(env_id, render_mode="rgb_array")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            check_env(env.unwrapped)  # the checker wants the bare env; it makes more through env.spec itself
    finally:
        env.close()


@pytest.mark.parametrize("env_id", TANDEM_IDS)
def test_registered_time_limit_is_the_tasks_step_limit(env_id):
    env = gymnasium.make(env_id)
    try:
        assert env.spec.max_episode_steps == env.unwrapped.task.max_steps
    finally:
        env.close()


def test_image_variant_observes_the_uint8_camera():
    env = gymnasium.make("tandem/Go2SlalomImage-v0")
    try:
        space = env.observation_space["image"]
        assert (space.shape, space.dtype, space.low.min(), space.high.max()) == ((64, 64, 1), np.uint8, 0, 255)
        observation, _ = env.reset(seed=0)
        assert observation["image"].dtype == np.uint8 and observation["image"].std() > 0  # a picture, not blank
    finally:
        env.close()


def test_same_seed_same_episode_and_the_same_as_the_actors_seed_option(limo):
    first, _ = limo.reset(seed=7)
    again, _ = limo.reset(seed=7)
    other, _ = limo.reset(seed=8)
    np.testing.assert_array_equal(first["state"], again["state"])
    assert not np.array_equal(first["state"], other["state"])
    twin = ROBOTS.get("limo_sim")(seed=7)  # as `actor --robot limo_sim -o seed=7` builds it
    twin.connect()
    np.testing.assert_array_equal(twin.task.reset(twin)["state"], first["state"])


def test_a_seed_is_an_argument_of_reset_not_an_option():
    with pytest.raises(ValueError, match="reset\\(seed"):
        gymnasium.make(LIMO, seed=3)


def test_success_terminates_and_is_reported(limo):
    limo.reset(seed=0)
    limo.robot.set_object_position("ball", limo.robot.scene_state().goal_xy)
    _, reward, terminated, truncated, info = limo.step(np.zeros(2, dtype=np.float32))
    assert (reward, terminated, truncated, info["success"]) == (1.0, True, False, True)


def test_failure_terminates_without_success(limo):
    limo.reset(seed=0)
    limo.robot.set_object_position("ball", (5.0, 0.0))  # off the 4 m arena
    _, reward, terminated, truncated, info = limo.step(np.zeros(2, dtype=np.float32))
    assert (reward, terminated, truncated, info["success"]) == (0.0, True, False, False)


def test_the_step_limit_truncates_and_does_not_terminate(limo):
    limo.reset(seed=0)
    ends = [limo.step(np.zeros(2, dtype=np.float32))[2:4] for _ in range(limo.task.max_steps)]
    assert ends[:-1] == [(False, False)] * (limo.task.max_steps - 1)
    assert ends[-1] == (False, True)


def test_gymnasiums_time_limit_agrees_with_the_tasks_step_limit():
    env = gymnasium.make(LIMO, max_steps=5, max_episode_steps=5)
    try:
        env.reset(seed=0)
        truncations = [env.step(np.zeros(2, dtype=np.float32))[3] for _ in range(5)]
        assert truncations == [False] * 4 + [True]
    finally:
        env.close()


@pytest.mark.parametrize("env_id", STATE_IDS)
def test_actions_outside_the_unit_box_are_clipped_like_every_tandem_action(env_id):
    env = gymnasium.make(env_id).unwrapped
    try:
        dim = env.action_space.shape[0]
        too_big = np.array([5.0, -5.0] * dim, dtype=np.float32)[:dim]
        env.reset(seed=1)
        clipped_obs, *_, clipped_info = env.step(too_big)
        env.reset(seed=1)
        edge_obs, *_, edge_info = env.step(np.clip(too_big, -1.0, 1.0))
        np.testing.assert_array_equal(clipped_info["executed_action"], np.clip(too_big, -1.0, 1.0))
        np.testing.assert_array_equal(clipped_obs["state"], edge_obs["state"])
        np.testing.assert_array_equal(clipped_info["executed_action"], edge_info["executed_action"])
    finally:
        env.close()


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_a_non_finite_action_is_refused_before_the_robot_moves(limo, bad):
    limo.reset(seed=0)
    with pytest.raises(ValueError, match="NaN or Inf"):
        limo.step(np.array([0.5, bad], dtype=np.float32))
    assert limo.robot.sim_time == 0.0


def test_a_wrongly_shaped_action_is_refused(limo):
    limo.reset(seed=0)
    with pytest.raises(ValueError, match="shape"):
        limo.step(np.zeros(3, dtype=np.float32))


def test_step_before_reset_is_refused(limo):
    with pytest.raises(gymnasium.error.ResetNeeded):
        limo.step(np.zeros(2, dtype=np.float32))


@pytest.mark.parametrize("env_id", TANDEM_IDS)
def test_a_random_agent_runs_50_steps(env_id):
    env = gymnasium.make(env_id)
    try:
        env.action_space.seed(0)
        observation, _ = env.reset(seed=0)
        for _ in range(50):
            observation, reward, terminated, truncated, info = env.step(env.action_space.sample())
            assert observation in env.observation_space
            assert reward in (0.0, 1.0) and info["success"] == (terminated and reward > 0)
            assert info["executed_action"] in env.action_space
            if terminated or truncated:
                observation, _ = env.reset()
    finally:
        env.close()


def test_render_gives_a_colour_frame_and_close_frees_the_renderers():
    before = render_threads()
    env = gymnasium.make("tandem/FrankaPushCubeImage-v0", render_mode="rgb_array")
    env.reset(seed=0)
    env.step(env.action_space.sample())
    frame = env.render()
    assert frame.shape == (240, 320, 3) and frame.dtype == np.uint8 and frame.std() > 0
    assert render_threads() == before + 2  # the observation camera and the view
    env.close()
    env.close()  # idempotent, as gymnasium asks
    assert render_threads() == before
    with pytest.raises(RobotError):
        env.unwrapped.robot.send_action(np.zeros(4, dtype=np.float32))  # the twin is disconnected


def test_no_render_mode_renders_nothing(limo):
    limo.reset(seed=0)
    assert limo.render() is None
