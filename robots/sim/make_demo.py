"""Record scripted-expert demonstrations from a twin into the Tandem demo file format.

    python -m robots.sim.make_demo --robot limo_sim --task ball_to_goal \\
        --out robots/sim/demos/limo_ball_to_goal.npz --episodes 1 [--observation image --image-size 64]

Only successful episodes are kept (a demonstration of failure teaches the wrong thing); seeds are tried
in order from --seed until --episodes successes are written. The episode loop is the actor loop's:
obs = task.reset(robot); executed = robot.send_action(a); next_obs = robot.get_observation();
reward, terminated = task.reward(next_obs). Actions are stored normalised with spec.normalize_action.
"""

from __future__ import annotations

from dataclasses import dataclass

import click

import robots  # noqa: F401  (registers every robot)
from common.episodes import save_episodes
from common.types import Transition
from robots.base import ROBOTS, Robot
from robots.sim import demo_variants
from robots.sim.expert import EXPERTS


@dataclass
class EpisodeResult:
    """One expert rollout: its transitions (episode/step stamped) and whether it reached the goal."""

    transitions: list[Transition]
    success: bool

    @property
    def length(self) -> int:
        return len(self.transitions)


def run_expert_episode(robot: Robot, expert, episode: int = 0) -> EpisodeResult:
    """Run one episode of `robot.task` with `expert` acting; the robot must be connected and enabled."""
    task = robot.task
    expert.reset()
    observation = task.reset(robot)
    transitions: list[Transition] = []
    for step in range(task.max_steps):
        executed_action = robot.send_action(expert.act(robot.scene_state()))
        next_observation = robot.get_observation()
        reward, terminated = task.reward(next_observation)
        truncated = not terminated and step + 1 == task.max_steps
        transitions.append(Transition(
            observation=observation, action=robot.spec.normalize_action(executed_action), reward=float(reward),
            terminated=bool(terminated), truncated=truncated, next_observation=next_observation,
            episode=episode, step=step, policy_version=-1,
        ))
        observation = next_observation
        if terminated:
            break
    return EpisodeResult(transitions, success=bool(transitions[-1].terminated and transitions[-1].reward > 0))


def record_successful_episodes(robot: Robot, expert, episodes: int, max_attempts: int = 1000) -> list[Transition]:
    """Transitions of the first `episodes` successful expert rollouts, renumbered 0..episodes-1."""
    kept: list[Transition] = []
    successes = 0
    for _ in range(max_attempts):
        if successes == episodes:
            return kept
        result = run_expert_episode(robot, expert, episode=successes)
        if result.success:
            kept.extend(result.transitions)
            successes += 1
    if successes < episodes:
        raise RuntimeError(f"only {successes}/{episodes} successful episodes in {max_attempts} attempts")
    return kept


@click.command(help="Record successful scripted-expert episodes from a sim twin into a Tandem demo file.")
@click.option("--robot", default="limo_sim", show_default=True, help="Registered robot name (a sim twin).")
@click.option("--task", default="ball_to_goal", show_default=True, help="Task name; also selects the expert.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Output .npz path.")
@click.option("--episodes", default=1, show_default=True, type=click.IntRange(min=1),
              help="Successful episodes to write.")
@click.option("--observation", default="state", show_default=True, type=click.Choice(["state", "image"]),
              help="Observation mode of the recorded episodes.")
@click.option("--image-size", default=64, show_default=True, type=int, help="Image side in pixels (image mode).")
@click.option("--seed", default=0, show_default=True, type=int, help="Robot RNG seed (episode layouts).")
@click.option("--lateral-spread", default=1.0, show_default=True, type=float,
              help="Sideways randomisation of ball and goal (ball-to-goal), as for `actor -o lateral_spread=`.")
@click.option("--variant", default="clean", show_default=True, type=click.Choice(demo_variants.VARIANTS),
              help="Degrade the written demo as in the paper's robustness study (see robots/sim/demo_variants.py).")
@click.option("--task-option", "task_options", multiple=True, metavar="KEY=NUMBER",
              help="Another numeric task option, as for `actor -o` (e.g. n_boxes=2 for slalom). Repeatable.")
def main(robot: str, task: str, out: str, episodes: int, observation: str, image_size: int, seed: int,
         lateral_spread: float, variant: str = "clean", task_options: tuple[str, ...] = ()) -> None:
    options = {"task": task, "observation": observation, "seed": seed, "lateral_spread": lateral_spread}
    options.update(_numeric_options(task_options))
    if observation == "image":
        options["image_size"] = image_size
    twin = ROBOTS.get(robot)(**options)
    with twin:
        twin.enable()
        transitions = record_successful_episodes(twin, EXPERTS.get(task)(), episodes)
    path = save_episodes(out, twin.spec, transitions)
    if variant != "clean":
        demo_variants.write_variant(path, path, variant, seed)
    click.echo(f"wrote {len(transitions)} transitions ({episodes} episodes) to {path}")


def _numeric_options(pairs: tuple[str, ...]) -> dict[str, float]:
    """KEY=NUMBER pairs as a dict; integers stay int (n_boxes=2), others become float."""
    parsed = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=NUMBER, got {pair!r}", param_hint="--task-option")
        try:
            parsed[key] = int(value)
        except ValueError:
            try:
                parsed[key] = float(value)
            except ValueError:
                raise click.BadParameter(f"{key}: {value!r} is not a number", param_hint="--task-option") from None
    return parsed


if __name__ == "__main__":
    main()
