"""The legged twins (go2_sim, g1_sim), the slalom task, its scripted expert and the shipped slalom demos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from common.episodes import episode_bounds, load_episodes
from robots.base import ROBOTS
from robots.legged_limits import G1_LIMITS, GO2_LIMITS, VelocityLimits
from robots.sim import make_demo
from robots.sim.expert import EXPERTS
from robots.sim.legged import STATE_DIM, make_legged_spec
from robots.sim.legged_scene import BOX_HALF, LeggedSceneState, SlalomLayout
from robots.sim.slalom import SlalomExpert, SlalomProgress

LIMITS = {"go2_sim": GO2_LIMITS, "g1_sim": G1_LIMITS}
DEMO_DIR = Path(make_demo.__file__).parent / "demos"
# A fixed course: boxes straight ahead on the centre line, goal line at x = 5.6.
COURSE = SlalomLayout(box_xy=((1.4, 0.0), (2.8, 0.0), (4.2, 0.0)), goal_x=5.6)


def connected(name: str, **options):
    robot = ROBOTS.get(name)(**options)
    robot.connect()
    robot.enable()
    return robot


@pytest.fixture(params=sorted(LIMITS))
def legged(request):
    """A connected, enabled legged twin in state mode on the fixed course, progress tracking started."""
    robot = connected(request.param, observation="state", seed=5)
    robot.task.reset(robot)
    robot.reset(COURSE)
    robot.task.start_from_current_state()
    yield robot
    robot.disconnect()


def walk(robot, xy_path):
    """Teleport the robot along `xy_path`, scoring every pose; returns the outcome at each pose."""
    outcomes = []
    for xy in xy_path:
        robot.set_robot_pose(xy)
        robot.task.reward(robot.get_observation())
        outcomes.append(robot.task.end_reason)
    return outcomes


# ---- spec, limits and clipping ----

@pytest.mark.parametrize("name", sorted(LIMITS))
def test_spec_is_the_real_robots_velocity_envelope(name):
    spec = ROBOTS.get(name)(observation="state").spec
    limits = LIMITS[name]
    assert spec.name == name and spec.control_hz == limits.control_hz == 10.0
    assert spec.action.shape == (3,) and spec.action.low == limits.low and spec.action.high == limits.high
    assert spec.observation["state"].shape == (STATE_DIM,)
    image_spec = ROBOTS.get(name)(observation="image", image_size=128).spec
    assert image_spec.observation["image"].shape == (128, 128, 1)
    assert make_legged_spec(name, limits).spec_hash == spec.spec_hash


def test_limits_are_inside_walking_speeds_and_reject_bad_bounds():
    for limits in (GO2_LIMITS, G1_LIMITS):
        assert limits.vx[1] <= 1.0 and max(map(abs, limits.vy)) <= 0.5 and max(map(abs, limits.yaw_rate)) <= 1.5
    assert max(map(abs, G1_LIMITS.vy)) < max(map(abs, GO2_LIMITS.vy))  # the biped is slower sideways
    with pytest.raises(ValueError):
        VelocityLimits(vx=(0.1, 1.0), vy=(-0.5, 0.5), yaw_rate=(-1.0, 1.0))  # zero (stop) must be allowed


def test_out_of_range_command_is_clipped_and_tracked_at_the_limit(legged):
    limits = legged.LIMITS
    executed = legged.send_action(np.array([5.0, -5.0, 9.0]))
    np.testing.assert_allclose(executed, [limits.vx[1], limits.vy[0], limits.yaw_rate[1]], rtol=1e-6)
    assert legged.safety.clipped == 1
    for index in range(3):  # clear the way
        legged.set_box_position(index, (1.4 * (index + 1), 1.2))
    legged.set_robot_pose((0.0, 0.0))
    for _ in range(15):
        legged.send_action(np.array([5.0, 0.0, 0.0]))
    vx, vy = legged.scene_state().robot_velocity
    assert vx == pytest.approx(limits.vx[1], abs=0.05) and abs(vy) < 0.05


def test_command_is_body_frame(legged):
    legged.set_robot_pose((0.0, 0.0), yaw=np.pi / 2)  # facing +y
    for _ in range(10):
        legged.send_action(np.array([0.0, legged.LIMITS.vy[1], 0.0]))  # sideways left = world -x
    state = legged.scene_state()
    assert state.robot_xy[0] < -0.15 and abs(state.robot_xy[1]) < 0.02
    assert state.robot_velocity[1] > 0.8 * legged.LIMITS.vy[1]


def test_stop_zeroes_base_velocity(legged):
    for _ in range(5):
        legged.send_action(legged.spec.action.high_array)
    legged.stop()
    assert np.allclose(legged.scene_state().robot_velocity, 0.0) and legged.scene_state().robot_yaw_rate == 0.0


def test_robot_pushes_a_box_it_walks_into(legged):
    legged.set_box_position(0, (0.8, 0.0))
    for _ in range(20):
        legged.send_action(np.array([legged.LIMITS.vx[1], 0.0, 0.0]))
    box = legged.scene_state().box_xy[0]
    assert box[0] > 1.0  # pushed forward, not walked through
    assert legged.scene_state().robot_xy[0] < box[0]


# ---- slalom success and failure detection ----

def _scene(robot_xy, box_xy=((1.4, 0.0), (2.8, 0.0), (4.2, 0.0)), goal_x=5.6) -> LeggedSceneState:
    return LeggedSceneState(np.asarray(robot_xy, float), 0.0, np.zeros(2), 0.0, np.asarray(box_xy, float), goal_x,
                            GO2_LIMITS, 0.35, 0.16)


def _progress_along(path):
    progress = SlalomProgress.start(_scene(path[0]))
    return [progress.update(_scene(xy)) for xy in path[1:]]


def test_progress_success_on_alternating_sides():
    path = [(0, 0), (1.3, 0.5), (1.5, 0.5), (2.7, -0.5), (2.9, -0.5), (4.1, 0.5), (4.3, 0.5), (5.7, 0.0)]
    assert _progress_along(path) == ["running"] * 6 + ["success"]


@pytest.mark.parametrize("path, failure", [
    ([(0, 0), (1.3, -0.5), (1.5, -0.5)], "wrong_side"),  # box 0 must stay on the robot's right
    ([(0, 0), (1.3, 0.5), (1.5, 0.5), (2.7, 0.5), (2.9, 0.5)], "wrong_side"),
    ([(0, 1.0), (3.0, 1.0)], "wrong_side"),  # past box 0 and box 1 in one step, both on their left
    ([(0, 0), (1.3, 0.5), (1.3, 1.6)], "left_corridor"),
    ([(0, 0), (-0.9, 0.0)], "left_corridor"),
])
def test_progress_failures(path, failure):
    assert _progress_along(path)[-1] == failure


def test_crossing_a_later_box_first_is_out_of_order():
    boxes = ((1.4, 0.0), (1.0, 0.0), (4.2, 0.0))  # box 1 pushed back behind box 0
    progress = SlalomProgress.start(_scene((0, 0), boxes))
    assert progress.update(_scene((1.2, -0.5), boxes)) == "out_of_order"


def test_walking_back_over_a_box_unpasses_it():
    progress = SlalomProgress.start(_scene((0, 0)))
    for xy in [(1.3, 0.5), (1.5, 0.5), (1.3, 0.5)]:
        progress.update(_scene(xy))
    assert progress.passed == 0


def test_a_robot_gaining_no_new_ground_for_stall_steps_has_stalled_and_only_with_the_option():
    """Dithering (back and forth, sideways) and creeping under 10 cm count as no progress; 10 cm of new ground
    restarts the count. Off (0, the default) a robot may stand until the step limit."""
    dither = [(0, 0)] + [(0.05 * (i % 2), 0.1 * (i % 3)) for i in range(1, 12)]
    stalling = SlalomProgress.start(_scene(dither[0]), stall_steps=5)
    outcomes = [stalling.update(_scene(xy)) for xy in dither[1:]]
    assert outcomes == ["running"] * 4 + ["stalled"] * 7
    moving = SlalomProgress.start(_scene((0, 0)), stall_steps=5)
    walk = [(0.025 * i, 0.0) for i in range(1, 40)]  # 10 cm every 4 steps: never 5 steps without progress
    assert {moving.update(_scene(xy)) for xy in walk} == {"running"}
    assert set(_progress_along(dither)) == {"running"}


def test_goal_line_with_a_box_pushed_past_it_is_a_failure():
    boxes = ((1.4, 0.0), (2.8, 0.0), (6.0, 0.0))  # box 2 shoved beyond the goal line
    progress = SlalomProgress.start(_scene((0, 0), boxes))
    path = [(1.3, 0.5), (1.5, 0.5), (2.7, -0.5), (2.9, -0.5), (5.7, 0)]
    outcomes = [progress.update(_scene(xy, boxes)) for xy in path]
    assert outcomes[-1] == "missed_box"


def test_task_reward_on_the_twin(legged):
    weave = [(1.3, 0.6), (1.5, 0.6), (2.7, -0.6), (2.9, -0.6), (4.1, 0.6), (4.3, 0.6)]
    assert walk(legged, weave) == ["running"] * 6
    assert legged.task.reward(legged.get_observation()) == (0.0, False)
    legged.set_robot_pose((5.7, 0.0))
    assert legged.task.reward(legged.get_observation()) == (1.0, True)


def test_task_reward_failure_on_the_twin(legged):
    legged.set_robot_pose((1.5, -0.6))
    assert legged.task.reward(legged.get_observation()) == (0.0, True)
    assert legged.task.end_reason == "wrong_side"


def test_task_uses_pushed_box_positions(legged):
    legged.set_box_position(0, (1.4, 0.8))  # box 0 pushed to the left: passing at y = 0.6 is now its right side
    walk(legged, [(1.3, 0.6), (1.5, 0.6)])
    assert legged.task.end_reason == "wrong_side"


def test_random_courses_stay_inside_the_corridor_and_are_seeded():
    robot = ROBOTS.get("go2_sim")(seed=11)
    robot.connect()
    layouts = []
    for _ in range(20):
        robot.task.reset(robot)
        layouts.append(robot.scene_state().box_xy)
    boxes = np.concatenate(layouts)
    assert np.all(np.abs(boxes[:, 1]) <= 0.25) and np.ptp(boxes[:, 1]) > 0.2
    assert np.all(np.diff(np.stack(layouts)[:, :, 0], axis=1) > 2 * BOX_HALF + 0.5)
    robot.disconnect()


def test_two_box_course_parks_the_third_box_and_ends_earlier():
    robot = connected("go2_sim", seed=4, n_boxes=2)
    robot.task.reset(robot)
    scene = robot.scene_state()
    assert scene.goal_x == pytest.approx(4.2) and scene.box_xy[2, 0] < -2.0  # parked behind the start
    box0, box1 = scene.box_xy[:2]
    outcomes = walk(robot, [(box0[0] - 0.1, box0[1] + 0.6), (box0[0] + 0.1, box0[1] + 0.6),
                            (box1[0] - 0.1, box1[1] - 0.6), (box1[0] + 0.1, box1[1] - 0.6), (4.3, 0.0)])
    robot.disconnect()
    assert outcomes == ["running"] * 4 + ["success"]


@pytest.mark.parametrize(
    "options", [{"max_steps": 0}, {"lateral_spread": -1.0}, {"box_spacing": 1.0}, {"n_boxes": 0}, {"n_boxes": 4},
                {"stall_steps": -1}, {"stall_steps": 2.5}]
)
def test_invalid_slalom_options_are_rejected(options):
    with pytest.raises(ValueError):
        ROBOTS.get("go2_sim")(**options)


def test_twins_set_their_own_step_limits_and_options_override_them():
    assert ROBOTS.get("go2_sim")().task.max_steps == 200 and ROBOTS.get("g1_sim")().task.max_steps == 250
    assert ROBOTS.get("g1_sim")(max_steps=50).task.max_steps == 50


# ---- scripted expert and demos ----

@pytest.mark.parametrize("name", sorted(LIMITS))
def test_expert_succeeds_on_random_courses(name):
    assert EXPERTS.get("slalom") is SlalomExpert
    robot = connected(name, observation="state", seed=100, stall_steps=30)  # the expert never stalls 3 s
    results = [make_demo.run_expert_episode(robot, SlalomExpert()) for _ in range(10)]
    robot.disconnect()
    short = connected(name, observation="state", seed=100, n_boxes=2)
    results += [make_demo.run_expert_episode(short, SlalomExpert()) for _ in range(4)]
    short.disconnect()
    assert sum(result.success for result in results) >= 0.95 * len(results)
    for result in results:
        actions = np.stack([t.action for t in result.transitions])  # normalised executed actions
        assert np.all(np.abs(actions) <= 1.0 + 1e-6)
        assert result.length < robot.task.max_steps


@pytest.mark.parametrize("filename, name, observation", [
    ("go2_slalom.npz", "go2_sim", "state"), ("g1_slalom.npz", "g1_sim", "state"),
    ("go2_slalom_2box.npz", "go2_sim", "state"), ("g1_slalom_2box.npz", "g1_sim", "state"),
    ("go2_slalom_image64.npz", "go2_sim", "image"), ("g1_slalom_image64.npz", "g1_sim", "image"),
])
def test_shipped_demo_is_one_successful_episode(filename, name, observation):
    spec, columns = load_episodes(DEMO_DIR / filename)
    assert spec.spec_hash == make_legged_spec(name, LIMITS[name], observation).spec_hash
    assert episode_bounds(columns["episode"]) == [(0, len(columns["reward"]))]
    assert columns["reward"][-1] == 1.0 and columns["terminated"][-1] and not columns["terminated"][:-1].any()
    assert np.all(np.abs(columns["action"]) <= 1.0)
    for key in spec.observation:
        np.testing.assert_array_equal(columns["next_observation/" + key][:-1], columns["observation/" + key][1:])


# ---- images ----

@pytest.mark.parametrize("name, size", [("go2_sim", 64), ("g1_sim", 64), ("go2_sim", 128)])
def test_head_camera_image(name, size):
    robot = connected(name, observation="image", image_size=size, seed=2)
    try:
        robot.task.reset(robot)
        robot.reset(COURSE)
        before = robot.get_observation()["image"]
        assert before.dtype == np.uint8 and before.shape == (size, size, 1)
        assert int(before.max()) - int(before.min()) > 100  # white box on a gray floor
        bright_columns = np.nonzero(before[:, :, 0] >= before.max() - 5)[1]
        assert abs(bright_columns.mean() - size / 2) < size / 4  # the white box is straight ahead
        for _ in range(3):
            robot.send_action(np.array([0.0, 0.0, robot.LIMITS.yaw_rate[1]]))
        after = robot.get_observation()["image"]
        assert np.mean(np.abs(after.astype(int) - before.astype(int)) > 10) > 0.01
    finally:
        robot.disconnect()


def test_make_demo_passes_task_options(tmp_path):
    out = tmp_path / "two_boxes.npz"
    make_demo.main(["--robot", "go2_sim", "--task", "slalom", "--task-option", "n_boxes=2", "--out", str(out),
                    "--seed", "1"], standalone_mode=False)
    _, columns = load_episodes(out)
    assert columns["reward"][-1] == 1.0 and len(columns["reward"]) < 80  # 2 boxes: well under the 3-box ~86 steps
    parked = columns["observation/state"][0, 4:6] * 2.0  # box 2 in the body frame, metres
    assert parked[0] < -2.0
