"""`ArmSim`: the MuJoCo twin shared by the arms (Franka, RM65), parametrised by the arm's `ArmLimits`.

Action: end-effector Cartesian velocity (vx, vy, vz) in m/s, plus the finger opening rate in m/s for
arms with a gripper, at 10 Hz; bounds and the workspace box come from robots/arm_limits.py, which the
real drivers share. Every action goes through `ActionSafety` (clip; NaN/Inf -> stop action), then the
workspace hold, before it reaches the simulation. A task may lower the workspace ceiling further
(`max_tool_height`, see `within_task_box`); `self.limits` holds the box in force.

Stepping: physics advances inside `send_action`, by exactly one control period per call, independent of
wall time; `get_observation` only reads (and, in image mode, renders) the current state.

Observations (see arm_scene.py for the model):
  state mode: {"state": float32[12 or 13]} = tool tip position in the robot's safety workspace (scaled
              to [-1, 1]; the same scale on hardware, whatever the task box),
              cube xy relative to the tool tip and goal xy relative to the cube (both / 0.2 m),
              sin/cos of 4 x cube yaw (a cube looks the same every 90 degrees), tool velocity / max speed,
              and, with a gripper, the finger opening / its maximum; clipped to +-3;
  image mode: {"image": uint8[S, S, 1]} grayscale from the wrist camera;
  deploy mode: what the real `franka` / `rm65` driver observes with `-o observation=deploy`: that image
              plus {"proprio": float32[7 or 6]} (robots/deployable.py, `TWIN_PROPRIO` below).
"""

from __future__ import annotations

import math

import mujoco
import numpy as np

from common.specs import ArraySpec, BoundedSpec, ImageSpec, RobotSpec
from common.types import Observation
from robots.deployable import DEPLOY, deploy_observation, deploy_observation_specs, franka_proprio, rm65_proprio
from robots.arm_limits import ArmLimits, hold_inside_workspace, within_task_box
from robots.lifecycle import Lifecycle
from robots.safety import ActionSafety
from robots.sim import arm_scene
from robots.sim.arm_scene import ArmLayout, ArmSceneState
from robots.sim.rendering import GrayscaleCamera, ViewPoint
from robots.sim.tasks import TASKS
from robots.sim.twin import MujocoTwin

OBSERVATION_MODES = ("state", "image", DEPLOY)
IMAGE_SIZES = (64, 128)
ARM_TASKS = ("push_cube",)  # tasks whose scene is the tabletop of arm_scene.py
RELATIVE_SCALE = 0.2  # metres -> order-1 units for relative positions

# Real robot -> its deploy-mode proprioception from (scene, the robot's own envelope, the velocity last
# commanded after the workspace hold), computed as its driver computes it from the arm's state.
TWIN_PROPRIO = {
    "franka": lambda scene, limits, _commanded: franka_proprio(limits, scene.tool_xyz, scene.tool_velocity,
                                                               scene.gripper_width),
    "rm65": lambda scene, limits, commanded: rm65_proprio(limits, scene.tool_xyz, commanded),
}


def state_dim(limits: ArmLimits) -> int:
    """Length of the state-mode observation vector."""
    return 12 + (1 if limits.has_gripper else 0)


def make_arm_spec(name: str, limits: ArmLimits, observation: str = "state", image_size: int = 64,
                  task: str = "push_cube") -> RobotSpec:
    """An arm twin's spec for one observation mode (the action part is the real arm's envelope)."""
    if observation == "state":
        observation_specs = {"state": ArraySpec("state", (state_dim(limits),), "float32")}
    elif observation == DEPLOY:
        observation_specs = deploy_observation_specs(name.removesuffix("_sim"), image_size)
    else:
        observation_specs = {"image": ImageSpec("image", (image_size, image_size, 1))}
    units = "m/s,m/s,m/s" + (",m/s(gripper opening)" if limits.has_gripper else "")
    return RobotSpec(
        name=name,
        observation=observation_specs,
        action=BoundedSpec("action", (limits.action_dim,), "float32", low=limits.action_low, high=limits.action_high),
        control_hz=limits.control_hz,
        metadata={"simulated": "true", "task": task, "observation": observation, "action_units": units},
    )


class ArmSim(MujocoTwin):
    """A Cartesian-velocity arm twin on a table with a cube and a goal region (see module docstring)."""

    VIEW = ViewPoint(distance=0.9, azimuth=150.0, elevation=-40.0)  # videos: the table, from the front left

    def __init__(self, name: str, limits: ArmLimits, *, observation: str = "state", image_size: int = 64,
                 task: str = "push_cube", seed: int = 0, **task_options: float) -> None:
        if observation not in OBSERVATION_MODES:
            raise ValueError(f"observation must be one of {OBSERVATION_MODES}, got {observation!r}")
        if image_size not in IMAGE_SIZES:
            raise ValueError(f"image_size must be one of {IMAGE_SIZES}, got {image_size}")
        if task not in ARM_TASKS:
            raise ValueError(f"{name} runs the arm tasks {ARM_TASKS}, not {task!r}")
        self._spec = make_arm_spec(name, limits, observation, image_size, task)
        self.task = TASKS.get(task)(**task_options)
        self.safety_limits = limits  # the robot's own envelope, as its real driver has it
        self.limits = within_task_box(limits, getattr(self.task, "max_tool_height", None))  # envelope in force
        self.safety = ActionSafety(self._spec.action)
        self.rng = np.random.default_rng(seed)  # tasks draw episode layouts from here
        self._lifecycle = Lifecycle(name)
        self._model = arm_scene.build_arm_model(limits)
        self._data = mujoco.MjData(self._model)
        self._substeps = round(1.0 / (limits.control_hz * self._model.opt.timestep))
        self._command = np.zeros(limits.action_dim)
        self._gripper_target = 0.0  # finger opening being tracked, metres
        self._camera = GrayscaleCamera(self._model, "wrist", image_size, image_size) if observation != "state" else None
        self._proprio = TWIN_PROPRIO[name.removesuffix("_sim")] if observation == DEPLOY else None
        self._commanded = np.zeros(3)  # the velocity last commanded after the workspace hold, as rm65 reports it
        self._ids = self._lookup_ids()
        self._apply_layout(default_layout(limits))

    def _default_layout(self) -> ArmLayout:
        return default_layout(self.limits)

    def _halt(self) -> None:
        # Zero the command and the tool's velocity, hold the fingers where they are (the cube keeps its
        # velocity).
        self._command = np.zeros(self.limits.action_dim)
        self._commanded = np.zeros(3)
        self._data.qvel[self._ids["tool_vel"]] = 0.0
        self._gripper_target = self._gripper_width()

    # ---- privileged access for tasks, experts and tests (never part of the policy's observation) ----

    @property
    def sim_time(self) -> float:
        """Simulated seconds since the last reset."""
        return float(self._data.time)

    def scene_state(self) -> ArmSceneState:
        """Positions and velocities of the tool, cube and goal (base frame)."""
        qpos, qvel, ids = self._data.qpos, self._data.qvel, self._ids
        cube = qpos[ids["cube"]:ids["cube"] + 7]
        w, x, y, z = cube[3:7]
        return ArmSceneState(
            tool_xyz=qpos[ids["tool"]].copy(),
            tool_velocity=qvel[ids["tool_vel"]].copy(),
            gripper_width=self._gripper_width(),
            cube_xyz=cube[:3].copy(),
            cube_yaw=float(math.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))),
            goal_xy=self._data.mocap_pos[ids["goal"], :2].copy(),
            tool_half_width=arm_scene.tool_half_width(self.limits),
            limits=self.limits,
        )

    def set_cube_pose(self, xy, yaw: float = 0.0) -> None:
        """Teleport the cube to `xy` with heading `yaw`, at rest on the table; for tasks and tests."""
        with self._lifecycle.lock:
            start, vel_start = self._ids["cube"], self._ids["cube_vel"]
            half_yaw = yaw / 2.0
            self._data.qpos[start:start + 7] = [xy[0], xy[1], arm_scene.CUBE_HALF,
                                                math.cos(half_yaw), 0.0, 0.0, math.sin(half_yaw)]
            self._data.qvel[vel_start:vel_start + 6] = 0.0
            mujoco.mj_forward(self._model, self._data)

    # ---- internals ----

    def _lookup_ids(self) -> dict:
        joint, model = self._model.joint, self._model
        ids = {
            "tool": _as_slice([int(joint(f"tool_{a}").qposadr[0]) for a in "xyz"]),
            "tool_vel": _as_slice([int(joint(f"tool_{a}").dofadr[0]) for a in "xyz"]),
            "cube": int(joint("cube_joint").qposadr[0]), "cube_vel": int(joint("cube_joint").dofadr[0]),
            "goal": int(model.body("goal").mocapid[0]),
            "drives": _as_slice([int(model.actuator(f"drive_{a}").id) for a in "xyz"]),
        }
        if self.limits.has_gripper:
            ids["fingers"] = [int(joint(f"finger_{s}").qposadr[0]) for s in ("left", "right")]
            ids["finger_drives"] = [int(model.actuator(f"finger_{s}").id) for s in ("left", "right")]
        return ids

    def _gripper_width(self) -> float:
        if not self.limits.has_gripper:
            return 0.0
        return float(np.sum(self._data.qpos[self._ids["fingers"]]))

    def _apply_layout(self, layout: ArmLayout) -> None:
        mujoco.mj_resetData(self._model, self._data)
        self._command = np.zeros(self.limits.action_dim)
        self._commanded = np.zeros(3)
        self._gripper_target = 0.0
        self._data.qpos[self._ids["tool"]] = layout.tool_xyz
        self._data.mocap_pos[self._ids["goal"]] = [*layout.goal_xy, 0.0]
        self.set_cube_pose(layout.cube_xy, layout.cube_yaw)

    def _step_one_control_period(self) -> None:
        qpos, qvel, ctrl = self._data.qpos, self._data.qvel, self._data.ctrl
        tool, tool_vel, drives = self._ids["tool"], self._ids["tool_vel"], self._ids["drives"]
        velocity = self._command[:3]
        has_gripper, max_width = self.limits.has_gripper, self.limits.gripper_max_width
        gripper_step = float(self._command[3]) * self._model.opt.timestep if has_gripper else 0.0
        for _ in range(self._substeps):
            # Brake 1.5 tracking time constants early (the stopping distance is about one, plus the
            # discretisation), so the tip stops at the box face, not past it.
            lookahead = qpos[tool] + qvel[tool_vel] * (1.5 * arm_scene.TRACKING_TAU)
            ctrl[drives] = hold_inside_workspace(lookahead, velocity, self.limits)
            if has_gripper:
                self._gripper_target = min(max(self._gripper_target + gripper_step, 0.0), max_width)
                ctrl[self._ids["finger_drives"]] = self._gripper_target / 2.0
            mujoco.mj_step(self._model, self._data)

    def _execute(self, action: np.ndarray) -> np.ndarray:
        # What a real driver commands: the action with the components leaving the box zeroed, from here.
        self._commanded = hold_inside_workspace(self._data.qpos[self._ids["tool"]], action[:3], self.limits)
        return super()._execute(action)

    def _observe(self) -> Observation:
        if self._proprio is not None:
            proprio = self._proprio(self.scene_state(), self.safety_limits, self._commanded)
            return deploy_observation(self._camera.render(self._data), proprio)
        if self._camera is not None:
            return {"image": self._camera.render(self._data)}
        # Scaled by the robot's own envelope (not the task box), so the state means the same as on hardware.
        return {"state": arm_state_vector(self.scene_state(), self.safety_limits)}


def _as_slice(indices: list[int]) -> slice:
    """Consecutive indices as a slice: numpy views instead of fancy-index copies in the physics loop."""
    if indices != list(range(indices[0], indices[0] + len(indices))):
        raise ValueError(f"expected consecutive indices, got {indices}")
    return slice(indices[0], indices[0] + len(indices))


def arm_state_vector(scene: ArmSceneState, limits: ArmLimits) -> np.ndarray:
    """The state-mode observation (see the module docstring), float32, clipped to +-3."""
    tool = (scene.tool_xyz - limits.workspace_center) / limits.workspace_half_size
    cube = (scene.cube_xyz[:2] - scene.tool_xyz[:2]) / RELATIVE_SCALE
    goal = (scene.goal_xy - scene.cube_xyz[:2]) / RELATIVE_SCALE
    yaw = [math.sin(4 * scene.cube_yaw), math.cos(4 * scene.cube_yaw)]
    velocity = scene.tool_velocity / limits.max_speed
    parts = [tool, cube, goal, yaw, velocity]
    if limits.has_gripper:
        parts.append([scene.gripper_width / limits.gripper_max_width])
    return np.clip(np.concatenate(parts), -3.0, 3.0).astype(np.float32)


def default_layout(limits: ArmLimits) -> ArmLayout:
    """The nominal start: tool above the near edge of the workspace, cube ahead, goal further ahead."""
    x0 = limits.workspace_low[0]
    return ArmLayout(tool_xyz=(x0 + 0.05, 0.0, 0.03), cube_xy=(x0 + 0.16, 0.0), cube_yaw=0.0,
                     goal_xy=(x0 + 0.33, 0.0))
