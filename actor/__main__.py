"""`actor --robot NAME --learner HOST:PORT`: drive one robot with the learner's newest policy."""

from __future__ import annotations

import logging
import signal
import sys

import click

from actor.app import ActorOptions, run_actor
from actor.loop import LoopConfig
from actor.sender import SenderConfig
from common.registry import UnknownNameError
from common.transport import DEFAULT_PORT


def _parse_options(pairs: tuple[str, ...]) -> dict[str, str]:
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint="--robot-option")
        options[key] = value
    return options


@click.command(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.option("--robot", required=True, help="Robot to drive (e.g. limo_sim, fake); an unknown name lists all.")
@click.option("--learner", "learner_address", default=f"127.0.0.1:{DEFAULT_PORT}", help="Learner HOST:PORT.")
@click.option("--actor-id", default="", help="Stable name of this actor (default: the robot name).")
@click.option("-o", "--robot-option", "robot_options", multiple=True, metavar="KEY=VALUE",
              help="Robot/twin option, e.g. -o observation=image -o image_size=64 -o seed=3.")
@click.option("--episodes", default=0, help="Stop after this many episodes (0: run until Ctrl-C).")
@click.option("--eval-every", default=0, help="After every N training episodes run --eval-episodes deterministic ones.")
@click.option("--eval-episodes", default=5, help="Episodes per evaluation block.")
@click.option("--eval-only", is_flag=True, help="Every episode deterministic (evaluate a trained policy).")
@click.option("--time-scale", default=1.0, help="Run a simulated robot this many times faster than real time.")
@click.option("--batch-size", default=32, help="Transitions per batch sent to the learner.")
@click.option("--metrics-port", default=9401, help="Prometheus /metrics port (0: off).")
@click.option("--seed", default=0, help="Seed of the random policy used before the first weights.")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def main(robot, learner_address, actor_id, robot_options, episodes, eval_every, eval_episodes, eval_only,
         time_scale, batch_size, metrics_port, seed, verbose) -> None:  # fmt: skip
    """Run the control loop on ROBOT, streaming transitions to the learner and acting with its weights.

    Before the first weights arrive the actor explores with uniform random actions. Ctrl-C stops the
    robot, flushes what is unsent and exits.
    """
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s actor %(levelname)s %(message)s")  # fmt: skip
    try:
        options = ActorOptions(
            robot=robot,
            learner=learner_address,
            actor_id=actor_id or robot,
            robot_options=_parse_options(robot_options),
            loop=LoopConfig(episodes, eval_every, eval_episodes, eval_only, time_scale, seed),
            sender=SenderConfig(batch_size=batch_size),
            metrics_port=metrics_port,
        )
        code = run_actor(options, install_signals=lambda stop: _on_signals(stop))
    except (UnknownNameError, ValueError) as exc:
        raise click.UsageError(str(exc)) from None
    sys.exit(code)


def _on_signals(stop) -> None:
    def handler(signum, _frame):
        logging.getLogger("actor").info("%s: stopping the robot and flushing", signal.Signals(signum).name)
        stop()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


if __name__ == "__main__":
    main()
