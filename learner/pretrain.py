"""`learner pretrain`: an algorithm's offline stages on a demonstration, with no robot, saved as a policy file.

    learner pretrain --algo aloe --demo robots/sim/demos/limo_ball_to_goal.npz --out runs/aloe_bc.npz

The stages run until the first one that needs a robot (rollouts or online); the algorithm's named policy is
then written as `actor --policy` and `base_policy` read it (`learner.best_policy.save_weights`, with the
robot spec of the demo). What it is for:
- a frozen base for CSIL++ and XQC+OD: `learner --algo csil_pp --set base_policy=runs/aloe_bc.npz` (ALOE's
  flow-matching chunk policy after its BC stage: the BC chunk policy the paper's ensemble improves on);
- a BC policy for Q2RL without its demo: `learner --algo q2rl --set bc_policy=...` (from `--algo q2rl`);
- the base policy alone in a comparison: `actor --robot limo_sim --policy runs/aloe_bc.npz --episodes 20`.
"""

from __future__ import annotations

import itertools
import threading
from pathlib import Path

import click
import torch
from tqdm import tqdm

from common.episodes import demo_spec
from common.registry import UnknownNameError
from learner.algorithms import config_from_overrides, config_to_dict, make_algorithm
from learner.app import load_demo
from learner.best_policy import Tally, save_weights
from learner.replay.buffer import ReplayBuffer
from learner.reward_shaping import REWARDS
from learner.stages import StageRunner
from learner.train_loop import TrainConfig, TrainLoop, select_device


def pretrain(algo: str, demo: str, out: Path, overrides: dict[str, str] | None = None, seed: int = 0,
             policy: str = "online", reward: str = "shaped", device: str = "auto") -> Path:  # fmt: skip
    """Run `algo`'s offline stages on `demo` and save its `policy` to `out`; returns `out`."""
    overrides = overrides or {}
    spec = demo_spec(demo)
    if spec is None:
        raise ValueError(f"{demo} names no robot spec; record demos with `actor --record-demo` or make_demo")
    torch.manual_seed(seed)
    algorithm = make_algorithm(algo, spec, overrides, select_device(device), seed)
    algorithm.policy_program(policy)  # an unknown policy name fails now, not after the training
    replay = ReplayBuffer(spec, capacity=1, gamma=algorithm.sampling.gamma)  # demo only: no online rows
    load_demo(replay, demo, spec, reward)
    published = []
    policy_config = config_to_dict(config_from_overrides(algo, overrides))
    loop = TrainLoop(algorithm, algo, policy_config, replay, published.append, TrainConfig(checkpoint_every=0),
                     lambda: None, seed)  # fmt: skip
    runner = StageRunner(loop, lambda: None, algo)
    offline = list(itertools.takewhile(lambda stage: stage.kind == "offline", runner.stages))
    if not offline:
        raise ValueError(f"{algo} has no offline stage to pretrain: its first stage is {runner.stages[0].kind!r}")
    with tqdm(total=sum(s.length for s in offline), desc=f"{algo} {'+'.join(s.name for s in offline)}") as bar:
        runner.run_offline(threading.Event(), lambda: bar.update(1))
    loop.publish(policy)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_weights(published[-1], out, Tally(published[-1].version), spec)
    return out


@click.command(help="Run an algorithm's offline stages on a demonstration (no robot) and save its policy.")
@click.option("--algo", required=True, help="Registered algorithm with offline stages (aloe, q2rl, csil, ...).")
@click.option("--demo", required=True, type=click.Path(exists=True), help="Demo file or LeRobot dataset directory.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Policy file to write.")
@click.option("--set", "overrides", multiple=True, metavar="FIELD=VALUE", help="Algorithm config field (repeatable).")
@click.option("--seed", default=0, help="Seed of the algorithm and of sampling.")
@click.option("--policy", default="online", help="Which named policy of the algorithm to save.")
@click.option("--reward", type=click.Choice(REWARDS), default="shaped", help="Training reward, as for `learner`.")
@click.option("--device", default="auto", help="auto, cpu or cuda[:N].")
def pretrain_command(algo, demo, out, overrides, seed, policy, reward, device) -> None:
    from learner.__main__ import _parse_overrides

    try:
        path = pretrain(algo, demo, out, _parse_overrides(overrides), seed, policy, reward, device)
    except (ValueError, UnknownNameError) as error:
        raise click.UsageError(str(error)) from None
    click.echo(f"wrote {path}: {algo}'s {policy!r} policy after its offline stages")
