"""`go2_sim`: the Unitree Go2 quadruped twin (velocity-tracked base; see legged.py and legged_scene.py).

Geometry: simple shapes with the Go2's main dimensions (trunk 0.376 x 0.094 x 0.114 m at 0.30 m,
overall ~0.70 x 0.31 x 0.40 m standing, thigh and calf 0.213 m, 15 kg), legs frozen in the standing
pose. Head camera: the Go2's front camera, on the head 0.33 m above the floor, tilted 25 deg down
(more than the real one, so less of the 64x64 image is sky).
"""

from __future__ import annotations

from robots.base import ROBOTS
from robots.deployable import go2_proprio
from robots.legged_limits import GO2_LIMITS
from robots.sim.legged import LeggedSim
from robots.sim.legged_scene import LeggedBody, LeggedSceneState

_HIP_X, _FOOT_Y, _HIP_Z, _KNEE_DX, _KNEE_Z = 0.1934, 0.142, 0.29, -0.07, 0.16


def _legs_xml() -> str:
    legs = []
    for x in (_HIP_X, -_HIP_X):
        for y in (_FOOT_Y, -_FOOT_Y):
            knee = (x + _KNEE_DX, y, _KNEE_Z)
            legs.append(
                f'<geom class="robot" type="capsule" size="0.03" fromto="{x} {y} {_HIP_Z} {knee[0]} {y} {knee[2]}"/>'
                f'<geom class="robot" type="capsule" size="0.02" fromto="{knee[0]} {y} {knee[2]} {x} {y} 0.022"/>'
            )
    return "".join(legs)


GO2_BODY = LeggedBody(
    name="go2",
    mass=15.0,
    yaw_inertia=0.6,
    half_length=0.35,
    half_width=0.16,
    collision_xml=(
        '<geom name="trunk" class="robot" type="box" size="0.1881 0.04675 0.057" pos="0 0 0.30"/>'
        '<geom name="head" class="robot" type="box" size="0.06 0.045 0.04" pos="0.27 0 0.32"/>'
        + _legs_xml()
    ),
    visual_xml='<geom class="visual" type="box" size="0.005 0.03 0.015" pos="0.331 0 0.33" rgba="0.1 0.1 0.1 1"/>',
    camera_pos=(0.34, 0.0, 0.33),
    camera_pitch_deg=25.0,
    camera_fovy=75.0,
    tracking_tau=0.15,
    max_force=90.0,
    max_torque=10.0,
)


@ROBOTS.register("go2_sim")
class Go2Sim(LeggedSim):
    """Unitree Go2 twin; action (vx, vy, yaw_rate) within GO2_LIMITS (robots/legged_limits.py)."""

    NAME = "go2_sim"
    BODY = GO2_BODY
    LIMITS = GO2_LIMITS
    TASK_DEFAULTS = {"max_steps": 200}

    def _proprio(self, scene: LeggedSceneState) -> list[float]:
        # rt/sportmodestate's velocity (rotated into the body frame) and yaw_speed, and the IMU yaw
        return go2_proprio(self.LIMITS, [*scene.robot_velocity, scene.robot_yaw_rate], scene.robot_yaw)
