"""`LeggedSim`: the MuJoCo twin shared by the legged robots (Go2, G1); go2.py and g1.py register them.

Action: (vx, vy, yaw_rate) body-frame base velocity in physical units, the Unitree high-level
locomotion command, bounded by the robot's VelocityLimits (robots/legged_limits.py, shared with the
real drivers), at limits.control_hz (10 Hz).

Stepping: physics advances inside `send_action`, by exactly one control period per call, independent of
wall time; `get_observation` only reads (and, in image mode, renders) the current state.

Observations (see legged_scene.py for the model):
  state mode: {"state": float32[11]} = body-frame xy of the three boxes and of the goal point
              (goal_x, 0), divided by 2 m and clipped to +-3, then measured vx, vy, yaw rate divided
              by the largest magnitude the limits allow;
  image mode: {"image": uint8[S, S, 1]} grayscale from the head camera;
  deploy mode: what the real `go2` / `g1` driver observes with `-o observation=deploy`: that image plus
              {"proprio": float32[5 or 6]} (robots/deployable.py; each twin's `_proprio`).
"""

from __future__ import annotations

import math

import mujoco
import numpy as np

from common.specs import ArraySpec, ImageSpec, RobotSpec
from common.types import Observation
from robots.deployable import DEPLOY, deploy_observation, deploy_observation_specs
from robots.legged_limits import VelocityLimits
from robots.lifecycle import Lifecycle
from robots.safety import ActionSafety
from robots.sim import legged_scene, slalom  # noqa: F401  (slalom registers the "slalom" task)
from robots.sim.legged_scene import N_BOXES, LeggedBody, LeggedSceneState, SlalomLayout, to_body_frame
from robots.sim.rendering import GrayscaleCamera, ViewPoint
from robots.sim.tasks import TASKS
from robots.sim.twin import MujocoTwin

STATE_DIM = 2 * N_BOXES + 2 + 3
POSITION_SCALE = 2.0  # metres -> order-1 observation units
OBSERVATION_MODES = ("state", "image", DEPLOY)
IMAGE_SIZES = (64, 128)


def make_legged_spec(name: str, limits: VelocityLimits, observation: str = "state", image_size: int = 64,
                     task: str = "slalom") -> RobotSpec:
    """A legged twin's spec for one observation mode (the action part is the real robot's envelope)."""
    if observation == "state":
        observation_specs = {"state": ArraySpec("state", (STATE_DIM,), "float32")}
    elif observation == DEPLOY:
        observation_specs = deploy_observation_specs(name.removesuffix("_sim"), image_size)
    else:
        observation_specs = {"image": ImageSpec("image", (image_size, image_size, 1))}
    return RobotSpec(
        name=name,
        observation=observation_specs,
        action=limits.bounded_action_spec(),
        control_hz=limits.control_hz,
        metadata={"simulated": "true", "task": task, "observation": observation, "action_units": "m/s,m/s,rad/s"},
    )


class LeggedSim(MujocoTwin):
    """A legged robot twin: velocity-tracked floating base, head camera, slalom boxes. Subclasses set the
    class attributes `NAME`, `BODY`, `LIMITS` and `TASK_DEFAULTS` (task options such as max_steps)."""

    NAME: str = ""
    BODY: LeggedBody
    LIMITS: VelocityLimits
    TASK_DEFAULTS: dict[str, float] = {}
    VIEW = ViewPoint(body="robot", distance=4.5, azimuth=120.0, elevation=-30.0)  # videos: follow it down the corridor

    def __init__(self, *, observation: str = "state", image_size: int = 64, task: str = "slalom",
                 seed: int = 0, **task_options: float) -> None:
        if observation not in OBSERVATION_MODES:
            raise ValueError(f"observation must be one of {OBSERVATION_MODES}, got {observation!r}")
        if image_size not in IMAGE_SIZES:
            raise ValueError(f"image_size must be one of {IMAGE_SIZES}, got {image_size}")
        self._spec = make_legged_spec(self.NAME, self.LIMITS, observation, image_size, task)
        self.task = TASKS.get(task)(**{**self.TASK_DEFAULTS, **task_options})
        self.safety = ActionSafety(self._spec.action)
        self.rng = np.random.default_rng(seed)  # tasks draw episode layouts from here
        self._lifecycle = Lifecycle(self.NAME)
        self._model = legged_scene.build_legged_model(self.BODY)
        self._data = mujoco.MjData(self._model)
        self._substeps = round(1.0 / (self.LIMITS.control_hz * self._model.opt.timestep))
        self._command = np.zeros(3)  # body-frame (vx, vy, yaw_rate) being tracked
        self._camera = GrayscaleCamera(self._model, "head", image_size, image_size) if observation != "state" else None
        self._deploy = observation == DEPLOY
        self._ids = self._lookup_ids()
        self._apply_layout(SlalomLayout())

    def _default_layout(self) -> SlalomLayout:
        return SlalomLayout()

    def _halt(self) -> None:
        # Like StopMove on the real robot, but immediate: zero the command and the base's velocity
        # (boxes keep theirs).
        self._command = np.zeros(3)
        self._data.qvel[self._ids["base_dofs"]] = 0.0

    # ---- privileged access for tasks, experts and tests (never part of the policy's observation) ----

    @property
    def sim_time(self) -> float:
        """Simulated seconds since the last reset."""
        return float(self._data.time)

    def scene_state(self) -> LeggedSceneState:
        """Positions and velocities of the robot and boxes, world frame (robot velocity in body frame)."""
        qpos, qvel, ids = self._data.qpos, self._data.qvel, self._ids
        x, y, yaw = qpos[ids["base_qpos"]]
        world_vx, world_vy, yaw_rate = qvel[ids["base_dofs"]]
        cos_yaw, sin_yaw = math.cos(yaw), math.sin(yaw)
        return LeggedSceneState(
            robot_xy=np.array([x, y]),
            robot_yaw=float(yaw),
            robot_velocity=np.array(
                [cos_yaw * world_vx + sin_yaw * world_vy, -sin_yaw * world_vx + cos_yaw * world_vy]
            ),
            robot_yaw_rate=float(yaw_rate),
            box_xy=np.array([qpos[start:start + 2] for start in ids["boxes"]]),
            goal_x=float(self._data.mocap_pos[ids["goal"], 0]),
            limits=self.LIMITS,
            half_length=self.BODY.half_length,
            half_width=self.BODY.half_width,
        )

    def set_box_position(self, index: int, xy) -> None:
        """Teleport box `index` to `xy` (at rest, upright, on the floor); for tasks and tests."""
        with self._lifecycle.lock:
            start, vel_start = self._ids["boxes"][index], self._ids["box_dofs"][index]
            self._data.qpos[start:start + 7] = [xy[0], xy[1], legged_scene.BOX_HALF, 1.0, 0.0, 0.0, 0.0]
            self._data.qvel[vel_start:vel_start + 6] = 0.0
            mujoco.mj_forward(self._model, self._data)

    def set_robot_pose(self, xy, yaw: float = 0.0) -> None:
        """Teleport the robot (at rest); for tests of the task's outcome detection."""
        with self._lifecycle.lock:
            self._data.qpos[self._ids["base_qpos"]] = [xy[0], xy[1], yaw]
            self._data.qvel[self._ids["base_dofs"]] = 0.0
            mujoco.mj_forward(self._model, self._data)

    # ---- internals ----

    def _lookup_ids(self) -> dict:
        joint = self._model.joint
        base = [joint(name) for name in ("base_x", "base_y", "base_yaw")]
        boxes = [joint(f"box{i}_joint") for i in range(N_BOXES)]
        return {
            "base_qpos": [int(j.qposadr[0]) for j in base],
            "base_dofs": [int(j.dofadr[0]) for j in base],
            "boxes": [int(j.qposadr[0]) for j in boxes],
            "box_dofs": [int(j.dofadr[0]) for j in boxes],
            "goal": int(self._model.body("goal").mocapid[0]),
        }

    def _apply_layout(self, layout: SlalomLayout) -> None:
        if len(layout.box_xy) != N_BOXES:
            raise ValueError(f"a slalom layout needs {N_BOXES} boxes, got {len(layout.box_xy)}")
        mujoco.mj_resetData(self._model, self._data)
        self._command = np.zeros(3)
        self._data.mocap_pos[self._ids["goal"]] = [layout.goal_x, 0.0, 0.0]
        for index, xy in enumerate(layout.box_xy):
            self.set_box_position(index, xy)
        self.set_robot_pose(layout.robot_xy, layout.robot_yaw)

    def _step_one_control_period(self) -> None:
        vx, vy, yaw_rate = self._command
        yaw_index = self._ids["base_qpos"][2]
        for _ in range(self._substeps):
            # The command is in the body frame; re-aim the world-frame targets every physics step.
            yaw = self._data.qpos[yaw_index]
            cos_yaw, sin_yaw = math.cos(yaw), math.sin(yaw)
            self._data.ctrl[:] = (cos_yaw * vx - sin_yaw * vy, sin_yaw * vx + cos_yaw * vy, yaw_rate)
            mujoco.mj_step(self._model, self._data)

    def _observe(self) -> Observation:
        if self._deploy:
            return deploy_observation(self._camera.render(self._data), self._proprio(self.scene_state()))
        if self._camera is not None:
            return {"image": self._camera.render(self._data)}
        return {"state": egocentric_state(self.scene_state(), self.LIMITS)}

    def _proprio(self, scene: LeggedSceneState) -> list[float]:
        """The deploy mode's proprioceptive values, as the real robot's driver computes them."""
        raise NotImplementedError


def egocentric_state(scene: LeggedSceneState, limits: VelocityLimits) -> np.ndarray:
    """The state-mode observation: boxes and goal point in the body frame, scaled to order 1, plus velocities."""
    points = np.vstack([scene.box_xy, [[scene.goal_x, 0.0]]])
    positions = to_body_frame(scene.robot_xy, scene.robot_yaw, points).reshape(-1) / POSITION_SCALE
    scales = [max(abs(low), abs(high)) for low, high in (limits.vx, limits.vy, limits.yaw_rate)]
    velocities = np.array([*scene.robot_velocity, scene.robot_yaw_rate]) / scales
    return np.clip(np.concatenate([positions, velocities]), -3.0, 3.0).astype(np.float32)
