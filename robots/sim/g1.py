"""`g1_sim`: the Unitree G1 humanoid twin (velocity-tracked base; see legged.py and legged_scene.py).

Geometry: simple shapes with the G1's main dimensions (1.32 m tall, pelvis at ~0.79 m, shoulders
~0.4 m wide with the arms hanging, 35 kg), limbs frozen in the standing pose. Head camera: the G1's
head depth/RGB camera at 1.22 m, tilted 35 deg down so the floor from ~0.6 m ahead is in view.
The gait's whole-body balance is the robot's own controller's job at this interface; the twin tracks
velocity with a slower time constant and lower limits than the Go2.
"""

from __future__ import annotations

from robots.base import ROBOTS
from robots.deployable import g1_proprio
from robots.legged_limits import G1_LIMITS
from robots.sim.legged import LeggedSim
from robots.sim.legged_scene import LeggedBody, LeggedSceneState


def _limbs_xml() -> str:
    limbs = []
    for y in (0.1, -0.1):  # legs: thigh, shin, foot
        limbs.append(
            f'<geom class="robot" type="capsule" size="0.055" fromto="0 {y} 0.72 0.02 {y} 0.42"/>'
            f'<geom class="robot" type="capsule" size="0.045" fromto="0.02 {y} 0.42 0 {y} 0.07"/>'
            f'<geom class="robot" type="box" size="0.1 0.04 0.025" pos="0.03 {y} 0.025"/>'
        )
    for y in (0.2, -0.2):  # arms hanging, elbows slightly bent forward
        limbs.append(
            f'<geom class="robot" type="capsule" size="0.04" fromto="0 {y} 1.13 0.02 {y} 0.92"/>'
            f'<geom class="robot" type="capsule" size="0.035" fromto="0.02 {y} 0.92 0.12 {y} 0.78"/>'
        )
    return "".join(limbs)


G1_BODY = LeggedBody(
    name="g1",
    mass=35.0,
    yaw_inertia=1.0,
    half_length=0.13,
    half_width=0.25,
    collision_xml=(
        '<geom name="pelvis" class="robot" type="box" size="0.07 0.11 0.07" pos="0 0 0.78"/>'
        '<geom name="torso" class="robot" type="box" size="0.075 0.15 0.17" pos="0 0 1.0"/>'
        '<geom name="head" class="robot" type="sphere" size="0.085" pos="0 0 1.23"/>'
        + _limbs_xml()
    ),
    visual_xml='<geom class="visual" type="box" size="0.01 0.05 0.015" pos="0.085 0 1.22" rgba="0.1 0.1 0.1 1"/>',
    camera_pos=(0.1, 0.0, 1.22),
    camera_pitch_deg=35.0,
    camera_fovy=60.0,
    tracking_tau=0.3,
    max_force=120.0,
    max_torque=15.0,
)


@ROBOTS.register("g1_sim")
class G1Sim(LeggedSim):
    """Unitree G1 twin; action (vx, vy, yaw_rate) within G1_LIMITS (robots/legged_limits.py)."""

    NAME = "g1_sim"
    BODY = G1_BODY
    LIMITS = G1_LIMITS
    TASK_DEFAULTS = {"max_steps": 250}

    def _proprio(self, scene: LeggedSceneState) -> list[float]:
        # rt/lowstate's IMU gyroscope z and yaw, and the SetVelocity command in force (zeroed by a stop)
        return g1_proprio(self.LIMITS, scene.robot_yaw_rate, scene.robot_yaw, self._command)
