"""`LimoSim`: the MuJoCo twin of the AgileX LIMO, with the same action spec as the real driver.

Action: (v, w) in physical units, v in [-0.5, 0.5] m/s and w in [-1.5, 1.5] rad/s, at 10 Hz. This
envelope is the safety envelope the real LIMO driver shares.

Stepping: physics advances inside `send_action`, by exactly one control period (20 x 5 ms) per call,
independent of wall time; `get_observation` only reads (and, in image mode, renders) the current state.
So the actor loop `send_action -> get_observation -> task.reward` sees the result of its own action.

Observations (see limo_scene.py for the model):
  state mode: {"state": float32[10]} = robot-frame ball xy, goal xy, ball->goal xy, obstacle xy
              (all divided by 2 m and clipped to +-3), then v / 0.5 and w / 1.5 as measured;
  image mode: {"image": uint8[S, S, 1]} grayscale from the front camera on the LIMO;
  deploy mode: what the real `limo` driver observes with `-o observation=deploy` (robots/deployable.py):
              that image plus {"proprio": float32[4]} = v / 0.5, w / 1.5, sin(yaw), cos(yaw).
"""

from __future__ import annotations

import math

import mujoco
import numpy as np

from common.specs import ArraySpec, BoundedSpec, ImageSpec, RobotSpec
from common.types import Observation
from robots.base import ROBOTS
from robots.deployable import DEPLOY, deploy_observation, deploy_observation_specs, limo_proprio
from robots.lifecycle import Lifecycle
from robots.safety import ActionSafety
from robots.sim import limo_scene
from robots.sim.limo_scene import SceneLayout, SceneState, to_robot_frame
from robots.sim.rendering import GrayscaleCamera, ViewPoint
from robots.sim.tasks import TASKS
from robots.sim.twin import MujocoTwin

LIMO_CONTROL_HZ = 10.0
MAX_V, MAX_W = 0.5, 1.5
STATE_DIM = 10
POSITION_SCALE = 2.0  # metres -> order-1 observation units
OBSERVATION_MODES = ("state", "image", DEPLOY)
IMAGE_SIZES = (64, 128)


def make_limo_spec(observation: str = "state", image_size: int = 64, task: str = "ball_to_goal") -> RobotSpec:
    """The LIMO twin's spec for one observation mode (the action part is the real LIMO's envelope)."""
    if observation == "state":
        observation_specs = {"state": ArraySpec("state", (STATE_DIM,), "float32")}
    elif observation == DEPLOY:
        observation_specs = deploy_observation_specs("limo", image_size)
    else:
        observation_specs = {"image": ImageSpec("image", (image_size, image_size, 1))}
    return RobotSpec(
        name="limo_sim",
        observation=observation_specs,
        action=BoundedSpec("action", (2,), "float32", low=(-MAX_V, -MAX_W), high=(MAX_V, MAX_W)),
        control_hz=LIMO_CONTROL_HZ,
        metadata={"simulated": "true", "task": task, "observation": observation, "action_units": "m/s,rad/s"},
    )


@ROBOTS.register("limo_sim")
class LimoSim(MujocoTwin):
    """AgileX LIMO twin: differential-drive base with a U-shaped pusher, a ball, a goal and an obstacle."""

    VIEW = ViewPoint(distance=3.6, elevation=-55.0)  # videos: the whole arena from above

    def __init__(self, *, observation: str = "state", image_size: int = 64, task: str = "ball_to_goal",
                 seed: int = 0, **task_options: float) -> None:
        if observation not in OBSERVATION_MODES:
            raise ValueError(f"observation must be one of {OBSERVATION_MODES}, got {observation!r}")
        if image_size not in IMAGE_SIZES:
            raise ValueError(f"image_size must be one of {IMAGE_SIZES}, got {image_size}")
        self._spec = make_limo_spec(observation, image_size, task)
        self.task = TASKS.get(task)(**task_options)  # e.g. -o lateral_spread=0.5
        self.safety = ActionSafety(self._spec.action)
        self.rng = np.random.default_rng(seed)  # tasks draw episode layouts from here
        self._lifecycle = Lifecycle("limo_sim")
        self._model = limo_scene.build_limo_model()
        self._data = mujoco.MjData(self._model)
        self._substeps = round(1.0 / (LIMO_CONTROL_HZ * self._model.opt.timestep))
        self._command = np.zeros(2)  # (v, w) being tracked
        self._camera = GrayscaleCamera(self._model, "front", image_size, image_size) if observation != "state" else None
        self._deploy = observation == DEPLOY
        self._ids = self._lookup_ids()
        self._apply_layout(SceneLayout())

    def _default_layout(self) -> SceneLayout:
        return SceneLayout()

    def _halt(self) -> None:
        # Zero the command and the base's velocity (the ball and obstacle keep theirs).
        self._command = np.zeros(2)
        ids = self._ids
        self._data.qvel[[ids["x_vel"], ids["y_vel"], ids["yaw_vel"]]] = 0.0

    # ---- privileged access for tasks, experts and tests (never part of the policy's observation) ----

    @property
    def sim_time(self) -> float:
        """Simulated seconds since the last reset."""
        return float(self._data.time)

    def scene_state(self) -> SceneState:
        """Positions and velocities of everything in the scene, world frame."""
        qpos, qvel, ids = self._data.qpos, self._data.qvel, self._ids
        yaw = float(qpos[ids["yaw"]])
        world_v = qvel[ids["x_vel"]], qvel[ids["y_vel"]]
        return SceneState(
            robot_xy=np.array([qpos[ids["x"]], qpos[ids["y"]]]),
            robot_yaw=yaw,
            robot_v=float(world_v[0] * math.cos(yaw) + world_v[1] * math.sin(yaw)),
            robot_w=float(qvel[ids["yaw_vel"]]),
            ball_xy=qpos[ids["ball"]:ids["ball"] + 2].copy(),
            goal_xy=self._data.mocap_pos[ids["goal"], :2].copy(),
            obstacle_xy=qpos[ids["obstacle"]:ids["obstacle"] + 2].copy(),
        )

    def set_object_position(self, name: str, xy) -> None:
        """Teleport "ball" or "obstacle" to `xy` (at rest, on the floor); for tasks and tests."""
        if name not in ("ball", "obstacle"):
            raise ValueError(f"unknown object {name!r}")
        with self._lifecycle.lock:
            height = limo_scene.BALL_RADIUS if name == "ball" else limo_scene.OBSTACLE_HALF
            start, vel_start = self._ids[name], self._ids[name + "_vel"]
            self._data.qpos[start:start + 7] = [xy[0], xy[1], height, 1.0, 0.0, 0.0, 0.0]
            self._data.qvel[vel_start:vel_start + 6] = 0.0
            mujoco.mj_forward(self._model, self._data)

    # ---- internals ----

    def _lookup_ids(self) -> dict[str, int]:
        joint = self._model.joint
        return {
            "x": int(joint("base_x").qposadr[0]), "y": int(joint("base_y").qposadr[0]),
            "yaw": int(joint("base_yaw").qposadr[0]),
            "x_vel": int(joint("base_x").dofadr[0]), "y_vel": int(joint("base_y").dofadr[0]),
            "yaw_vel": int(joint("base_yaw").dofadr[0]),
            "ball": int(joint("ball_joint").qposadr[0]), "ball_vel": int(joint("ball_joint").dofadr[0]),
            "obstacle": int(joint("obstacle_joint").qposadr[0]),
            "obstacle_vel": int(joint("obstacle_joint").dofadr[0]),
            "goal": int(self._model.body("goal").mocapid[0]),
        }

    def _apply_layout(self, layout: SceneLayout) -> None:
        mujoco.mj_resetData(self._model, self._data)
        self._command = np.zeros(2)
        ids = self._ids
        self._data.qpos[[ids["x"], ids["y"], ids["yaw"]]] = [*layout.robot_xy, layout.robot_yaw]
        self._data.mocap_pos[ids["goal"]] = [*layout.goal_xy, 0.0]
        self.set_object_position("ball", layout.ball_xy)
        self.set_object_position("obstacle", layout.obstacle_xy)

    def _step_one_control_period(self) -> None:
        v, w = self._command
        yaw_index = self._ids["yaw"]
        for _ in range(self._substeps):
            # Re-aim the world-frame velocity target every physics step: zero lateral velocity in the
            # robot frame is the differential-drive constraint.
            yaw = self._data.qpos[yaw_index]
            self._data.ctrl[:] = (v * math.cos(yaw), v * math.sin(yaw), w)
            mujoco.mj_step(self._model, self._data)

    def _observe(self) -> Observation:
        if self._deploy:
            scene = self.scene_state()
            proprio = limo_proprio(scene.robot_v, scene.robot_w, scene.robot_yaw, MAX_V, MAX_W)
            return deploy_observation(self._camera.render(self._data), proprio)
        if self._camera is not None:
            return {"image": self._camera.render(self._data)}
        return {"state": egocentric_state(self.scene_state())}


def egocentric_state(scene: SceneState) -> np.ndarray:
    """The state-mode observation: scene positions in the robot frame, scaled to order 1, plus (v, w)."""
    ball, goal, obstacle = (to_robot_frame(scene, xy) for xy in (scene.ball_xy, scene.goal_xy, scene.obstacle_xy))
    positions = np.concatenate([ball, goal, goal - ball, obstacle]) / POSITION_SCALE
    velocities = [scene.robot_v / MAX_V, scene.robot_w / MAX_W]
    return np.clip(np.concatenate([positions, velocities]), -3.0, 3.0).astype(np.float32)
