"""What every twin's MJCF scene starts with, in one place.

The physics option; the 256 x 256 offscreen buffer the observation cameras render into, with the cheap
rendering settings that keep llvmpipe fast (no multisampling, no shadows: environment.md §2.4); a flat
headlight; default friction; the robot's collision class (its own contype, so it never collides with the
visual geoms) and the mass-less, collision-less "visual" class. The scene goes on inside <worldbody>.

The LIMO and the legged twins move a planar base (`planar_base_joints`: x and y slides and a yaw hinge)
by velocity servos on those joints (`planar_base_drives`), whose force and torque limits are the robot's.
"""

from __future__ import annotations


def scene_preamble(model: str, timestep: float, friction: float, robot_class: str, robot_gray: float,
                   headlight: tuple[float, float] = (0.45, 0.5)) -> str:
    """MJCF from `<mujoco>` to the opening `<worldbody>` tag (headlight: ambient and diffuse gray levels)."""
    ambient, diffuse = headlight
    gray = robot_gray
    return f"""
<mujoco model="{model}">
  <option timestep="{timestep}" integrator="implicitfast"/>
  <visual>
    <global offwidth="256" offheight="256"/>
    <quality offsamples="0" shadowsize="0"/>
    <headlight ambient="{ambient} {ambient} {ambient}" diffuse="{diffuse} {diffuse} {diffuse}" specular="0 0 0"/>
  </visual>
  <default>
    <geom friction="{friction} 0.005 0.0001"/>
    <default class="{robot_class}"><geom contype="2" conaffinity="2" rgba="{gray} {gray} {gray} 1"/></default>
    <default class="visual"><geom contype="0" conaffinity="0" mass="0"/></default>
  </default>
  <worldbody>"""


def planar_base_joints() -> str:
    """The planar base's three joints (inside the robot's <body>): slides along x and y, a hinge about z."""
    return ('<joint name="base_x" type="slide" axis="1 0 0" damping="0"/>\n'
            '      <joint name="base_y" type="slide" axis="0 1 0" damping="0"/>\n'
            '      <joint name="base_yaw" type="hinge" axis="0 0 1" damping="0"/>')


def planar_base_drives(kv_linear: float, kv_yaw: float, max_force: float, max_torque: float) -> str:
    """Velocity servos on the planar base's joints (inside <actuator>), force- and torque-limited."""
    limits = (("x", kv_linear, max_force), ("y", kv_linear, max_force), ("yaw", kv_yaw, max_torque))
    return "\n    ".join(f'<velocity name="drive_{axis}" joint="base_{axis}" kv="{kv}" forcelimited="true" '
                           f'forcerange="{-limit} {limit}"/>' for axis, kv, limit in limits)


def goal_disc(pos: str, radius: float, half_height: float, gray: float) -> str:
    """The goal: a flat visual disc on the floor in a mocap body "goal" (a task moves it between episodes)."""
    return (f'<body name="goal" mocap="true" pos="{pos}">\n'
            f'      <geom name="goal_marker" class="visual" type="cylinder" size="{radius} {half_height}" '
            f'pos="0 0 {half_height}"\n            rgba="{gray} {gray} {gray} 1"/>\n'
            f'    </body>')
