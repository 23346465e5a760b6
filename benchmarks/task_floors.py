"""What a policy that ignores its observation scores on each benchmark task: the floor under every success table.

Each task of `benchmarks.one_demo` is run on its twin with constant normalised actions (straight ahead at
full and half speed, and a few turns or directions), the seeded resets of the twin, no learning. A learned
policy's success only means something above the best of these.

    python -m benchmarks.task_floors [--episodes 40] [--tasks ball_to_goal,slalom_go2,...]
"""

from __future__ import annotations

import argparse

import numpy as np

from benchmarks.one_demo import TASKS

# Normalised constant actions per robot: the first entry of each is "straight ahead at full speed".
CONSTANT_ACTIONS = {
    "limo_sim": [(1.0, 0.0), (0.5, 0.0), (1.0, 0.2), (1.0, -0.2)],  # (v, w)
    "go2_sim": [(1.0, 0.0, 0.0), (0.5, 0.0, 0.0), (1.0, 0.5, 0.0), (1.0, -0.5, 0.0)],  # (vx, vy, yaw rate)
    "g1_sim": [(1.0, 0.0, 0.0), (0.5, 0.0, 0.0), (1.0, 0.5, 0.0), (1.0, -0.5, 0.0)],
    "franka_sim": [(1.0, 0.0, 0.0, 0.0), (-1.0, 0.0, 0.0, 0.0), (0.0, 1.0, 0.0, 0.0), (0.0, -1.0, 0.0, 0.0)],  # tool
}


class ConstantPolicy:
    """An "expert" for `robots.sim.make_demo.run_expert_episode` that ignores the scene: one command always."""

    def __init__(self, command: np.ndarray) -> None:
        self.command = command

    def reset(self) -> None:
        pass

    def act(self, _scene) -> np.ndarray:
        return self.command


def constant_action_success(robot_name: str, action: tuple[float, ...], episodes: int,
                            seed: int = 0) -> tuple[int, float]:
    """(successes, mean episode length) of `episodes` episodes acting `action` (normalised) at every step."""
    from actor.app import make_robot
    from robots.sim.make_demo import run_expert_episode

    robot = make_robot(robot_name, {"seed": str(seed)})
    robot.connect()
    robot.enable()
    try:
        policy = ConstantPolicy(robot.spec.denormalize_action(np.asarray(action, np.float32)))
        results = [run_expert_episode(robot, policy) for _ in range(episodes)]
        return sum(r.success for r in results), float(np.mean([r.length for r in results]))
    finally:
        robot.disconnect()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=40)
    parser.add_argument("--tasks", default=",".join(TASKS), help="comma-separated subset of " + ",".join(TASKS))
    args = parser.parse_args(argv)
    print("| task | robot | constant normalised action | successes | mean steps |")
    print("|---|---|---|---|---|")
    for task in args.tasks.split(","):
        robot_name = TASKS[task][0]
        for action in CONSTANT_ACTIONS[robot_name]:
            successes, steps = constant_action_success(robot_name, action, args.episodes)
            print(f"| {task} | {robot_name} | {action} | {successes}/{args.episodes} "
                  f"({successes / args.episodes:.0%}) | {steps:.0f} |", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
