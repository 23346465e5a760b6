"""Sim to real: a policy trained on a twin in `observation=deploy` runs on the matching real driver.

For each twin/driver pair the deployable specs are equal (hash and field by field), the twin's deploy
observation validates against the driver's spec, a policy saved from a twin-spec run is accepted by the
driver-side loading code (`actor --policy`), and one saved for another spec is refused with the
differences listed. The drivers are built without connecting: their spec exists before connect().
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from actor.policy import WeightsSchemaError, load_saved_policy
from common.protocol import Weights
from common.specs import spec_differences
from learner.best_policy import Tally, save_weights
from robots.base import ROBOTS
from robots.deployable import PROPRIO_FIELDS
from robots.limo import LimoRobot
from tests.robots.peers.limo_base import FakeLimoBase
from tests.robots.peers.video import write_test_video

pytestmark = pytest.mark.timeout(120)

PAIRS = [("limo_sim", "limo"), ("go2_sim", "go2"), ("g1_sim", "g1"), ("franka_sim", "franka"), ("rm65_sim", "rm65")]
CAMERA = "/nonexistent/front.avi"  # a camera source; never opened, since no driver here connects


def twin(name: str, **options):
    robot = ROBOTS.get(name)(observation="deploy", seed=3, **options)
    robot.connect()
    robot.enable()
    robot.reset()
    return robot


def driver(name: str, **options):
    return ROBOTS.get(name)(observation="deploy", camera=CAMERA, **options)


def saved_policy(path, spec) -> str:
    """A small SAC policy for `spec`, saved the way the learner saves best_policy.npz."""
    from learner.algorithms import config_from_overrides, config_to_dict, make_algorithm

    overrides = {"hidden_dims": "16,16"}
    algorithm = make_algorithm("sac", spec, overrides, torch.device("cpu"), 0)
    tensors = {k: v.detach().numpy().copy() for k, v in algorithm.policy_state_dict().items()}
    config_json = json.dumps(config_to_dict(config_from_overrides("sac", overrides)), sort_keys=True)
    save_weights(Weights(3, "sac", config_json, spec.spec_hash, tensors), path, Tally(3, 4, 5), spec)
    return str(path)


@pytest.mark.parametrize("twin_name, real", PAIRS)
def test_sim_to_real_deployable_specs_are_equal(twin_name, real):
    sim_spec, real_spec = ROBOTS.get(twin_name)(observation="deploy").spec, driver(real).spec
    assert sim_spec.spec_hash == real_spec.spec_hash
    assert spec_differences(sim_spec, real_spec) == []
    assert sim_spec.observation == real_spec.observation and sim_spec.action == real_spec.action
    assert sim_spec.control_hz == real_spec.control_hz
    assert set(real_spec.observation) == {"image", "proprio"}
    assert real_spec.observation["image"].shape == (64, 64, 1)
    assert real_spec.observation["proprio"].fields == PROPRIO_FIELDS[real]
    assert sim_spec.name != real_spec.name, "the name is not what the hash covers"


@pytest.mark.parametrize("twin_name, real", PAIRS)
def test_sim_to_real_twin_deploy_observations_validate_against_the_driver_spec(twin_name, real):
    robot, real_spec = twin(twin_name), driver(real).spec
    try:
        real_spec.validate_observation(robot.get_observation())
        for _ in range(3):
            robot.send_action(robot.spec.action.high_array * 0.5)
            observation = robot.get_observation()
            real_spec.validate_observation(observation)
            assert np.all(np.abs(observation["proprio"]) <= 3.0)
    finally:
        robot.disconnect()


@pytest.mark.parametrize("twin_name, real", PAIRS)
def test_sim_to_real_a_twin_policy_is_accepted_by_the_driver(tmp_path, twin_name, real):
    robot = twin(twin_name)
    try:
        path = saved_policy(tmp_path / "best_policy.npz", robot.spec)
        policy, record = load_saved_policy(path, driver(real).spec)
        action = policy.act(robot.get_observation(), deterministic=True)
    finally:
        robot.disconnect()
    assert record == "v3: 4/5 evaluation successes"
    assert action.shape == robot.spec.action.shape and np.all(np.abs(action) <= 1.0)


@pytest.mark.parametrize("twin_name, real", PAIRS)
def test_sim_to_real_a_policy_for_another_spec_is_refused_with_the_differences(tmp_path, twin_name, real):
    image_spec = ROBOTS.get(twin_name)(observation="image").spec  # the twin's image-only mode: no proprio
    path = saved_policy(tmp_path / "image_policy.npz", image_spec)
    with pytest.raises(WeightsSchemaError) as refused:
        load_saved_policy(path, driver(real).spec)
    message = str(refused.value)
    assert f"trained for robot spec {twin_name} {image_spec.spec_hash}" in message
    assert f"{real} (observation=deploy) has spec" in message
    assert "observation 'proprio' not expected (got float32[" in message


def test_sim_to_real_a_policy_for_another_robot_lists_shape_bounds_and_field_differences(tmp_path):
    path = saved_policy(tmp_path / "go2.npz", ROBOTS.get("go2_sim")(observation="deploy").spec)
    with pytest.raises(WeightsSchemaError) as refused:
        load_saved_policy(path, driver("g1").spec)
    message = str(refused.value)
    assert "observation 'proprio' shape: expected (5), got (6)" in message
    assert "observation 'proprio' fields: expected (vx, vy, yaw_rate, sin_yaw, cos_yaw)" in message
    assert "action low: expected (-0.6, -0.5, -1.5), got (-0.4, -0.3, -1)" in message


def test_sim_to_real_actor_cli_refuses_a_mismatch_before_connecting_and_accepts_the_twin_policy(tmp_path):
    """`actor --robot limo --policy FILE -o observation=deploy -o camera=...` on a port with no base: the
    wrong policy is refused (usage error, differences listed, no traceback) before any connect; the twin's
    policy passes the check and only then does the missing base stop the run."""
    def actor(policy: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "actor", "--robot", "limo", "--policy", policy, "-o", "observation=deploy",
                   "-o", f"camera={CAMERA}", "-o", f"port={tmp_path / 'no-tty'}", "--episodes", "1",
                   "--metrics-port", "0", "--no-console"]
        return subprocess.run(command, capture_output=True, text=True, timeout=120)

    wrong = actor(saved_policy(tmp_path / "image.npz", ROBOTS.get("limo_sim")(observation="image").spec))
    assert wrong.returncode == 2 and "observation 'proprio' not expected" in wrong.stderr
    assert "Traceback" not in wrong.stderr and "cannot open serial port" not in wrong.stderr
    right = actor(saved_policy(tmp_path / "deploy.npz", ROBOTS.get("limo_sim")(observation="deploy").spec))
    assert "cannot open serial port" in right.stderr and "Traceback" not in right.stderr, right.stderr[-2000:]


# ---- the proprioceptive fields follow the motion, on the twins (and on the LIMO driver against its peer) ----

def proprio(observation, real: str) -> dict[str, float]:
    return dict(zip(PROPRIO_FIELDS[real], observation["proprio"].tolist()))


def drive(robot, action, steps: int = 5) -> dict:
    for _ in range(steps):
        robot.send_action(np.asarray(action, dtype=np.float32))
    return robot.get_observation()


def test_sim_to_real_limo_twin_proprio_follows_its_motion():
    robot = twin("limo_sim")
    try:
        start = proprio(robot.get_observation(), "limo")
        forward = proprio(drive(robot, [0.4, 0.0]), "limo")
        turning = proprio(drive(robot, [0.0, 1.0]), "limo")
    finally:
        robot.disconnect()
    assert start["v"] == pytest.approx(0.0, abs=1e-3) and math.hypot(start["sin_yaw"], start["cos_yaw"]) == \
        pytest.approx(1.0, abs=1e-5)
    assert forward["v"] == pytest.approx(0.4 / 0.5, abs=0.1), "measured v / 0.5"
    assert 0.3 < turning["w"] <= 1.0 / 1.5 + 0.05 and turning["sin_yaw"] > start["sin_yaw"] + 0.3  # w / 1.5


@pytest.mark.parametrize("twin_name, real", [("go2_sim", "go2"), ("g1_sim", "g1")])
def test_sim_to_real_legged_twin_proprio_follows_its_motion(twin_name, real):
    robot = twin(twin_name)
    try:
        high = robot.spec.action.high_array
        forward = proprio(drive(robot, [high[0], 0.0, 0.0], steps=10), real)
        turning = proprio(drive(robot, [0.0, 0.0, high[2]], steps=10), real)
        robot.stop()
        stopped = proprio(robot.get_observation(), real)
    finally:
        robot.disconnect()
    if real == "go2":  # measured body velocity / the envelope's scale
        assert forward["vx"] > 0.5 and abs(forward["vy"]) < 0.1
    else:  # the command in force / the envelope's scale (rt/lowstate measures no base velocity)
        assert forward["command_vx"] == pytest.approx(1.0) and stopped["command_vx"] == 0.0
        assert turning["command_yaw_rate"] == pytest.approx(1.0)
    assert turning["yaw_rate"] > 0.5 and turning["sin_yaw"] > forward["sin_yaw"] + 0.3
    assert stopped["yaw_rate"] == 0.0


@pytest.mark.parametrize("twin_name, real", [("franka_sim", "franka"), ("rm65_sim", "rm65")])
def test_sim_to_real_arm_twin_proprio_follows_its_motion(twin_name, real):
    robot = twin(twin_name)
    try:
        start = proprio(robot.get_observation(), real)
        action = np.zeros(robot.spec.action.shape, np.float32)
        action[1] = robot.spec.action.high[1]  # sideways, clear of the cube ahead
        moving = proprio(drive(robot, action), real)
        robot.stop()
        stopped = proprio(robot.get_observation(), real)
    finally:
        robot.disconnect()
    assert moving["y"] > start["y"] + 0.1, "position scaled over the workspace box"
    velocity = "vy" if real == "franka" else "command_vy"  # measured (franky) or last commanded (RealMan)
    assert moving[velocity] == pytest.approx(1.0, abs=0.15) and stopped[velocity] == pytest.approx(0.0, abs=1e-6)


def test_sim_to_real_limo_driver_deploy_observation_from_its_base_and_camera(tmp_path):
    """The driver side of the same quantities, against the pty peer of the LIMO base and a video camera."""
    base = FakeLimoBase(str(tmp_path / "ttyLIMO")).start()
    video = write_test_video(tmp_path / "front.avi", frames=30, size=(80, 60))
    robot = LimoRobot(port=base.port, camera=str(video), observation="deploy", state_timeout_ms=1000)
    try:
        robot.connect()
        robot.enable()
        robot.send_action(np.array([0.3, 0.6], np.float32))
        with robot.state.received:  # the base reports the commanded motion in its next state frames
            assert robot.state.received.wait_for(lambda: robot.state.motion[0] > 0, timeout=3.0)
        observation = robot.get_observation()
    finally:
        robot.disconnect()
        base.close()
    ROBOTS.get("limo_sim")(observation="deploy").spec.validate_observation(observation)
    yaw = math.radians(base.yaw_deg)
    np.testing.assert_allclose(observation["proprio"], [0.3 / 0.5, 0.6 / 1.5, math.sin(yaw), math.cos(yaw)],
                               atol=2e-3)
