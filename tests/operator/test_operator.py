"""The operator state machine without a terminal: teleop actions, hold time, axes, e-stop precedence."""

from __future__ import annotations

import numpy as np
import pytest

from actor.operator import Operator, OperatorConfig, teleop_axes
from common.specs import ArraySpec, BoundedSpec, RobotSpec

pytestmark = pytest.mark.timeout(10)


def spec(size: int, **metadata: str) -> RobotSpec:
    return RobotSpec(name=f"r{size}", observation={"state": ArraySpec("state", (3,), "float32")},
                     action=BoundedSpec("action", (size,), "float32", low=(-1.0,) * size, high=(1.0,) * size),
                     control_hz=10.0, metadata=metadata)  # fmt: skip


def test_axes_follow_the_action_size_or_the_spec():
    assert teleop_axes(spec(2)) == {"x": 0, "y": 1, "yaw": 1}  # differential base (v, w)
    assert teleop_axes(spec(3)) == {"x": 0, "y": 1, "yaw": 2}  # (vx, vy, wz) or arm (x, y, z)
    assert teleop_axes(spec(7))["gripper"] == 6
    assert teleop_axes(spec(7, teleop_axes="x:0,y:1,yaw:2,gripper:3")) == {"x": 0, "y": 1, "yaw": 2, "gripper": 3}


def test_a_teleop_key_drives_for_hold_s_then_the_action_falls_back_to_zero():
    stops = []
    operator = Operator(spec(3), lambda: stops.append(1), OperatorConfig(hold_s=0.4, speed=0.5))
    operator.handle_key("w", pressed_at=100.0)  # not intervening: teleop keys are ignored
    assert not operator.teleop_action(now=100.1).any()
    operator.handle_key("i", pressed_at=100.0)
    operator.handle_key("w", pressed_at=100.0)
    operator.handle_key("q", pressed_at=100.0)
    np.testing.assert_allclose(operator.teleop_action(now=100.3), [0.5, 0.0, 0.5])
    assert not operator.teleop_action(now=100.5).any(), "released keys must stop the robot"
    for _ in range(10):
        operator.handle_key("+")
    operator.handle_key("s", pressed_at=200.0)  # backward while intervening, not "success"
    np.testing.assert_allclose(operator.teleop_action(now=200.0), [-1.0, 0.0, 0.0])
    assert operator.take_end() is None and not stops


def test_a_device_action_drives_clipped_for_hold_s_wins_over_keys_and_is_dropped_when_control_returns():
    operator = Operator(spec(3), lambda: None, OperatorConfig(hold_s=0.4, speed=0.5))
    operator.handle_key("i", pressed_at=100.0)
    operator.handle_key("w", pressed_at=100.0)
    operator.set_device_action(np.array([0.2, -3.0, 0.7]), at=100.0)
    np.testing.assert_allclose(operator.teleop_action(now=100.3), [0.2, -1.0, 0.7])
    np.testing.assert_allclose(operator.teleop_action(now=100.45), [0.0, 0.0, 0.0])  # device and key both stale
    operator.set_device_action(np.array([0.2, 0.1, 0.7]), at=101.0)
    operator.handle_key("i", pressed_at=101.0)  # the policy drives again: the device action is forgotten
    operator.handle_key("i", pressed_at=101.1)
    assert not operator.teleop_action(now=101.2).any()
    for bad in (np.array([0.1, 0.2]), np.array([0.1, np.nan, 0.0])):
        with pytest.raises(ValueError, match="3 finite numbers"):
            operator.set_device_action(bad)


def test_estop_wins_until_released_and_labels_stop_the_robot_at_once():
    stops = []
    operator = Operator(spec(4), lambda: stops.append(1), OperatorConfig())
    operator.handle_key("s")
    assert stops and operator.take_end() == "success"
    operator.handle_key("ESC")
    with operator.motion_gate() as allowed:
        assert not allowed
    for key in ("s", "i", "SPACE", "r"):
        operator.handle_key(key)
    assert operator.estopped and not operator.intervening and not operator.paused
    assert operator.take_end() == "estop" and operator.take_end() is None
    operator.begin_episode()
    operator.handle_key("c")
    with operator.motion_gate() as allowed:
        assert allowed
    operator.handle_key("i")
    assert operator.teleop_action()[3] == 0.0, "the gripper is left alone until g"
    operator.handle_key("g")
    assert operator.teleop_action()[3] == -1.0, "g closes the gripper (last dimension)"
    operator.handle_key("g")
    assert operator.teleop_action()[3] == 1.0, "and opens it again"


def test_demo_mode_keeps_intervention_on():
    operator = Operator(spec(2), lambda: None, OperatorConfig(record_demo="demo.npz"))
    assert operator.intervening
    operator.handle_key("i")
    assert operator.intervening
