"""The arm twins (franka_sim, rm65_sim), the push-cube task, its expert, the arm demos and demo variants."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from common.episodes import episode_bounds, load_episodes
from robots.arm_limits import FRANKA_LIMITS, RM65_LIMITS, ArmLimits, hold_inside_workspace, within_task_box
from robots.base import ROBOTS
from robots.sim import arm_scene, demo_variants, make_demo
from robots.sim.arm_scene import ArmLayout, ArmSceneState
from robots.sim.arm_twin import arm_state_vector, make_arm_spec
from robots.sim.expert import EXPERTS
from robots.sim.push_cube import MAX_TOOL_HEIGHT, START_HEIGHT, PushCubeExpert, cube_in_goal, cube_on_table

ARMS = {"franka_sim": FRANKA_LIMITS, "rm65_sim": RM65_LIMITS}
DEMO_DIR = Path(make_demo.__file__).parent / "demos"


def make_arm(name: str, **options):
    robot = ROBOTS.get(name)(**options)
    robot.connect()
    robot.enable()
    return robot


@pytest.fixture(params=sorted(ARMS))
def arm(request):
    """A connected, enabled arm twin in state mode, reset to a seeded push-cube episode."""
    robot = make_arm(request.param, seed=5)
    robot.task.reset(robot)
    yield robot
    robot.disconnect()


def clear_layout(limits: ArmLimits) -> ArmLayout:
    """Tool in the middle of the workspace, cube far to the side, out of the way."""
    center = limits.workspace_center
    return ArmLayout(tool_xyz=(center[0], center[1], 0.035),
                     cube_xy=(limits.workspace_low[0], limits.workspace_high[1]), cube_yaw=0.0,
                     goal_xy=(limits.workspace_high[0] - 0.05, 0.0))


# ---- spec and limits ----

def test_franka_spec_has_cartesian_velocity_and_gripper():
    spec = ROBOTS.get("franka_sim")().spec
    assert spec.name == "franka_sim" and spec.control_hz == 10.0
    assert spec.action.shape == (4,)
    assert spec.action.low == (-0.15, -0.15, -0.15, -0.05) and spec.action.high == (0.15, 0.15, 0.15, 0.05)
    assert spec.observation["state"].shape == (13,)


def test_rm65_spec_has_cartesian_velocity_only():
    spec = ROBOTS.get("rm65_sim")().spec
    assert spec.action.shape == (3,) and not RM65_LIMITS.has_gripper
    assert spec.action.low == (-0.1,) * 3 and spec.action.high == (0.1,) * 3
    assert spec.observation["state"].shape == (12,)


@pytest.mark.parametrize("name", sorted(ARMS))
def test_image_spec_and_options(name):
    assert ROBOTS.get(name)(observation="image", image_size=128).spec.observation["image"].shape == (128, 128, 1)
    with pytest.raises(ValueError):
        ROBOTS.get(name)(observation="depth")
    with pytest.raises(ValueError):
        ROBOTS.get(name)(observation="image", image_size=100)
    with pytest.raises(ValueError):
        ROBOTS.get(name)(task="ball_to_goal")  # a LIMO task has no tabletop scene


def test_limits_validate_and_hold_inside_workspace():
    with pytest.raises(ValueError):
        ArmLimits("bad", 10.0, 0.1, (0.0, 0.0, -0.1), (1.0, 1.0, 1.0))  # below the table
    with pytest.raises(ValueError):
        ArmLimits("bad", 10.0, 0.1, (0.5, 0.0, 0.0), (0.4, 1.0, 1.0))  # empty box
    limits = FRANKA_LIMITS
    at_floor_corner = np.array([limits.workspace_high[0], 0.0, limits.workspace_low[2]])
    held = hold_inside_workspace(at_floor_corner, np.array([0.1, -0.1, -0.1]), limits)
    np.testing.assert_allclose(held, [0.0, -0.1, 0.0])  # outward x and z stopped, y still free
    np.testing.assert_allclose(hold_inside_workspace(at_floor_corner, np.array([-0.1, 0.0, 0.1]), limits),
                               [-0.1, 0.0, 0.1])  # moving back inside is allowed


# ---- dynamics and safety ----

def test_each_send_action_advances_exactly_one_control_period(arm):
    start = arm.sim_time
    for _ in range(4):
        arm.send_action(arm.spec.action.zeros())
    assert arm.sim_time - start == pytest.approx(0.4)
    arm.get_observation()
    assert arm.sim_time == pytest.approx(start + 0.4)  # reading never steps the simulation


def test_tool_tracks_commanded_velocity(arm):
    arm.reset(clear_layout(arm.limits))
    command = arm.spec.action.zeros()
    command[:3] = [0.08, -0.05, -0.03]
    for _ in range(3):
        arm.send_action(command)
    np.testing.assert_allclose(arm.scene_state().tool_velocity, [0.08, -0.05, -0.03], atol=0.005)


def test_oversized_actions_are_clipped_before_they_reach_the_sim(arm):
    arm.reset(clear_layout(arm.limits))
    huge = np.full(arm.spec.action.shape, 50.0)
    huge[1] = -50.0
    for _ in range(3):
        executed = arm.send_action(huge)
        np.testing.assert_allclose(executed, arm.spec.action.clip(huge))
        speed = np.abs(arm.scene_state().tool_velocity)
        assert np.all(speed <= arm.limits.max_speed * 1.02)  # the sim never saw the 50 m/s request
    assert arm.safety.clipped == 3


def test_nan_action_stops_the_tool(arm):
    arm.reset(clear_layout(arm.limits))
    for _ in range(3):
        arm.send_action(arm.spec.action.high_array)
    executed = arm.send_action(np.full(arm.spec.action.shape, np.nan))
    np.testing.assert_array_equal(executed, arm.safety.stop_action)
    arm.send_action(np.full(arm.spec.action.shape, np.inf))
    assert np.all(np.abs(arm.scene_state().tool_velocity) < 0.01) and arm.safety.nan_stops == 2


def test_workspace_box_holds_the_tool_tip(arm):
    arm.reset(clear_layout(arm.limits))
    down_and_forward = arm.spec.action.zeros()
    down_and_forward[[0, 2]] = [arm.limits.max_speed, -arm.limits.max_speed]
    for _ in range(40):
        arm.send_action(down_and_forward)
    tip = arm.scene_state().tool_xyz
    assert tip[2] >= arm.limits.workspace_low[2] - 0.002  # never digs into the table
    assert tip[0] <= arm.limits.workspace_high[0] + 0.002


def test_push_task_box_keeps_the_tool_below_the_cube_top(arm):
    assert arm.limits.workspace_high[2] == MAX_TOOL_HEIGHT  # the task box is in force
    up = arm.spec.action.zeros()
    up[2] = arm.limits.max_speed
    for _ in range(10):
        arm.send_action(up)
    assert arm.scene_state().tool_xyz[2] <= MAX_TOOL_HEIGHT + 0.002


def test_task_box_only_ever_lowers_the_ceiling():
    assert within_task_box(RM65_LIMITS, None) is RM65_LIMITS
    assert within_task_box(RM65_LIMITS, 5.0) is RM65_LIMITS  # never above the safety box
    lowered = within_task_box(RM65_LIMITS, 0.04)
    assert lowered.workspace_high == (*RM65_LIMITS.workspace_high[:2], 0.04)
    assert lowered.workspace_low == RM65_LIMITS.workspace_low and lowered.max_speed == RM65_LIMITS.max_speed
    robot = ROBOTS.get("rm65_sim")(max_tool_height=0.3)  # a task option lifts it back to the safety box
    assert robot.limits.workspace_high == RM65_LIMITS.workspace_high


def test_stop_zeroes_tool_velocity_at_once(arm):
    arm.reset(clear_layout(arm.limits))
    for _ in range(3):
        arm.send_action(arm.spec.action.high_array)
    arm.stop()
    assert np.all(arm.scene_state().tool_velocity == 0.0)


def test_franka_gripper_opens_within_its_range_and_holds_on_stop():
    robot = make_arm("franka_sim", seed=1)
    try:
        robot.reset(clear_layout(FRANKA_LIMITS))
        assert robot.scene_state().gripper_width == pytest.approx(0.0, abs=1e-3)  # starts closed
        for _ in range(10):
            robot.send_action(np.array([0.0, 0.0, 0.0, 0.05]))
        width = robot.scene_state().gripper_width
        assert 0.03 < width <= FRANKA_LIMITS.gripper_max_width + 1e-3
        robot.stop()
        robot.send_action(robot.safety.stop_action)
        assert robot.scene_state().gripper_width == pytest.approx(width, abs=2e-3)
    finally:
        robot.disconnect()


def test_tool_pushes_the_cube(arm):
    limits = arm.limits
    x0 = limits.workspace_low[0]
    arm.reset(ArmLayout(tool_xyz=(x0 + 0.05, 0.0, 0.02), cube_xy=(x0 + 0.12, 0.0), cube_yaw=0.0,
                        goal_xy=(x0 + 0.33, 0.0)))
    forward = arm.spec.action.zeros()
    forward[0] = limits.max_speed
    for _ in range(10):
        arm.send_action(forward)
    assert arm.scene_state().cube_xyz[0] > x0 + 0.14  # pushed, not passed through


# ---- observations ----

def test_state_vector_is_scaled_and_ordered():
    limits = FRANKA_LIMITS
    center = limits.workspace_center
    scene = ArmSceneState(
        tool_xyz=center.copy(), tool_velocity=np.array([0.15, 0.0, -0.075]), gripper_width=0.04,
        cube_xyz=np.array([center[0] + 0.2, center[1], 0.025]), cube_yaw=math.pi / 8,
        goal_xy=np.array([center[0] + 0.2, center[1] - 0.1]), tool_half_width=0.01, limits=limits,
    )
    state = arm_state_vector(scene, limits)
    assert state.dtype == np.float32 and state.shape == (13,)
    np.testing.assert_allclose(state, [0, 0, 0, 1, 0, 0, -0.5, 1, 0, 1, 0, -0.5, 0.5], atol=1e-6)


def test_state_observation_stays_order_one(arm):
    for _ in range(15):
        arm.send_action(arm.spec.action.high_array)
        assert np.all(np.abs(arm.get_observation()["state"]) <= 3.0)


@pytest.mark.parametrize("name", sorted(ARMS))
def test_wrist_image_is_non_constant_gray_and_moves(name):
    robot = make_arm(name, observation="image", image_size=64, seed=2)
    try:
        before = robot.task.reset(robot)["image"]
        assert before.dtype == np.uint8 and before.shape == (64, 64, 1)
        assert int(before.max()) - int(before.min()) > 100  # white cube on a dark table
        sideways = robot.spec.action.zeros()
        sideways[1] = robot.limits.max_speed
        for _ in range(4):
            robot.send_action(sideways)
        after = robot.get_observation()["image"]
        assert np.mean(np.abs(after.astype(int) - before.astype(int)) > 10) > 0.02
    finally:
        robot.disconnect()


# ---- task ----

def test_success_and_failure_detection_on_hand_built_states(arm):
    task, limits = arm.task, arm.limits
    goal = arm.scene_state().goal_xy
    arm.set_cube_pose(goal + [0.03, -0.02], yaw=0.3)
    assert task.reward(arm.get_observation()) == (1.0, True) and task.end_reason == "success"
    arm.set_cube_pose(goal - [task.goal_radius + 0.02, 0.0])
    assert task.reward(arm.get_observation()) == (0.0, False)
    arm.set_cube_pose((limits.workspace_high[0] + 0.2, 0.0))  # off the table area
    assert task.reward(arm.get_observation()) == (0.0, True) and task.end_reason == "cube_off_table"


def test_lifted_or_fallen_cube_is_not_a_success():
    limits = RM65_LIMITS
    goal = np.array([0.5, 0.0])
    scene = dict(tool_xyz=np.zeros(3), tool_velocity=np.zeros(3), gripper_width=0.0, cube_yaw=0.0,
                 goal_xy=goal, tool_half_width=0.01, limits=limits)
    lifted = ArmSceneState(cube_xyz=np.array([0.5, 0.0, 0.2]), **scene)
    fallen = ArmSceneState(cube_xyz=np.array([0.5, 0.0, -0.3]), **scene)
    assert not cube_in_goal(lifted) and cube_on_table(lifted, limits)
    assert not cube_on_table(fallen, limits)


def test_layouts_are_random_and_inside_the_workspace(arm):
    positions = []
    for _ in range(5):
        arm.task.reset(arm)
        scene = arm.scene_state()
        positions.append(scene.cube_xyz[:2])
        low, high = np.asarray(arm.limits.workspace_low), np.asarray(arm.limits.workspace_high)
        assert np.all(scene.tool_xyz >= low) and np.all(scene.tool_xyz <= high)
        assert cube_on_table(scene, arm.limits) and not cube_in_goal(scene)
    assert np.ptp(np.array(positions), axis=0).min() > 0.01


@pytest.mark.parametrize("name", sorted(ARMS))
def test_expert_succeeds_on_randomised_starts(name):
    robot = make_arm(name, seed=100)
    try:
        expert = EXPERTS.get("push_cube")()
        results = [make_demo.run_expert_episode(robot, expert, episode) for episode in range(20)]
    finally:
        robot.disconnect()
    assert sum(result.success for result in results) >= 19  # >= 95 %
    assert max(result.length for result in results if result.success) < robot.task.max_steps


# ---- demos and their degraded variants ----

SHIPPED = {
    "franka_push_cube.npz": make_arm_spec("franka_sim", FRANKA_LIMITS),
    "franka_push_cube_image64.npz": make_arm_spec("franka_sim", FRANKA_LIMITS, "image", 64),
    "rm65_push_cube.npz": make_arm_spec("rm65_sim", RM65_LIMITS),
    "rm65_push_cube_image64.npz": make_arm_spec("rm65_sim", RM65_LIMITS, "image", 64),
}


@pytest.mark.parametrize("filename", sorted(SHIPPED))
def test_shipped_arm_demo_is_one_successful_episode(filename):
    spec, columns = load_episodes(DEMO_DIR / filename)
    assert spec.spec_hash == SHIPPED[filename].spec_hash  # still matches the twin's current spec
    assert episode_bounds(columns["episode"]) == [(0, len(columns["reward"]))]
    assert columns["reward"][-1] == 1.0 and columns["terminated"][-1] and not columns["terminated"][:-1].any()
    assert np.all(np.abs(columns["action"]) <= 1.0) and 10 <= len(columns["reward"]) <= 80
    for key in spec.observation:
        np.testing.assert_array_equal(columns["next_observation/" + key][:-1], columns["observation/" + key][1:])


def test_make_demo_writes_an_arm_variant(tmp_path):
    out = tmp_path / "rm65.npz"
    make_demo.main(["--robot", "rm65_sim", "--task", "push_cube", "--out", str(out), "--seed", "4",
                    "--variant", "action_noise"], standalone_mode=False)
    spec, columns = load_episodes(out)
    assert spec.name == "rm65_sim" and columns["reward"][-1] == 1.0 and np.all(np.abs(columns["action"]) <= 1.0)


@pytest.fixture
def demo_columns():
    return load_episodes(DEMO_DIR / "franka_push_cube.npz")


def test_drop50_keeps_half_in_order_and_the_success(demo_columns):
    _, columns = demo_columns
    dropped = demo_variants.degrade(columns, "drop50", seed=1)
    count = len(columns["reward"])
    assert len(dropped["reward"]) == round(count / 2)
    assert np.all(np.diff(dropped["step"]) > 0) and dropped["step"][-1] == columns["step"][-1]
    assert dropped["reward"][-1] == 1.0 and dropped["terminated"][-1]


def test_noise_variants_are_deterministic_and_bounded(demo_columns):
    _, columns = demo_columns
    noisy = demo_variants.degrade(columns, "action_noise", seed=3)
    again = demo_variants.degrade(columns, "action_noise", seed=3)
    np.testing.assert_array_equal(noisy["action"], again["action"])
    assert np.all(np.abs(noisy["action"]) <= 1.0) and noisy["action"].dtype == columns["action"].dtype
    assert 0.1 < np.std(noisy["action"] - columns["action"]) < 0.25
    states = demo_variants.degrade(columns, "state_noise", seed=3)
    difference = states["observation/state"] - columns["observation/state"]
    assert abs(float(np.std(difference)) - 0.2) < 0.03
    np.testing.assert_array_equal(states["action"], columns["action"])
    with pytest.raises(ValueError):
        demo_variants.degrade(columns, "nope")


def test_state_noise_on_images_stays_uint8():
    _, columns = load_episodes(DEMO_DIR / "rm65_push_cube_image64.npz")
    noisy = demo_variants.degrade(columns, "state_noise", seed=0)["observation/image"]
    assert noisy.dtype == np.uint8 and noisy.shape == columns["observation/image"].shape
    assert not np.array_equal(noisy, columns["observation/image"])


def test_variant_file_loads_like_a_demo(tmp_path):
    out = demo_variants.write_variant(DEMO_DIR / "franka_push_cube.npz", tmp_path / "v.npz", "drop50", seed=0)
    spec, columns = load_episodes(out)
    assert spec.name == "franka_sim" and columns["reward"][-1] == 1.0


def test_scene_constants_are_consistent():
    # The tool pushes below the cube's centre of mass and its task box keeps it below the cube's top.
    assert PushCubeExpert.push_height < arm_scene.CUBE_HALF
    assert START_HEIGHT < MAX_TOOL_HEIGHT < 2 * arm_scene.CUBE_HALF
