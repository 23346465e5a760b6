"""`actor --robot NAME --learner HOST:PORT`: drive one robot with the learner's newest policy."""

from __future__ import annotations

import logging
import signal
import sys

import click

from actor.app import EXIT_ROBOT, ActorOptions, run_actor
from actor.loop import LoopConfig
from actor.operator import OperatorConfig
from actor.sender import SenderConfig, key_actor_id
from common.protocol import DEFAULT_EVAL_EPISODES
from common.allocator import keep_freed_memory
from common.lifetime import exit_with_parent
from common.registry import UnknownNameError
from common.transport import DEFAULT_PORT
from robots.base import RobotError


def _parse_pairs(pairs: tuple[str, ...], hint: str) -> dict[str, str]:
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint=hint)
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
@click.option("--eval-episodes", default=DEFAULT_EVAL_EPISODES, help="Episodes per evaluation block.")
@click.option("--eval-only", is_flag=True, help="Only evaluation blocks, each of one policy version (an evaluator).")
@click.option("--time-scale", default=1.0, help="Run a simulated robot this many times faster than real time.")
@click.option("--pace-utd", default=0.0,
              help="Simulated robots: wait for the learner while sent transitions x R > its updates + slack (0: off).")
@click.option("--pace-slack", default=-1,
              help="With --pace-utd: updates of slack (-1: R x (200 + one episode + one batch)).")
@click.option("--no-eval-data", is_flag=True, help="Evaluation transitions stay out of replay (summaries are sent).")
@click.option("--eval-every-updates", default=0,
              help="With --eval-only and no --episodes: start a block at most once per N learner updates (0: off).")
@click.option("--render-videos", default="", metavar="DIR",
              help="With --eval-only on a simulated twin: render the scene of evaluation episodes to MP4 files in DIR.")
@click.option("--render-every", default=1,
              help="With --render-videos: the first episode of every Nth evaluation block (0: none).")
@click.option("--record-video", default="", metavar="DIR",
              help="Record the camera images of every episode labelled success or failure to one MP4 each in DIR.")
@click.option("--batch-size", default=32, help="Transitions per batch sent to the learner.")
@click.option("--metrics-port", default=9401, help="Prometheus /metrics port (0: off).")
@click.option("--period-log", default="", metavar="FILE",
              help="Write every control tick's monotonic time, period and policy version to FILE (float64 triples) "
                   "for jitter analysis (benchmarks/control_period.py reads it).")
@click.option("--seed", default=0, help="Seed of the random policy used before the first weights.")
@click.option("--explore-before-weights", is_flag=True,
              help="Real robots: act with random actions before the learner's first weights (default: hold still "
                   "until they arrive or the operator presses t).")
@click.option("--record-demo", default="", metavar="PATH",
              help="Record teleoperated episodes for learner --demo, no learner needed: PATH.npz is a Tandem demo "
                   "file, any other PATH a LeRobot dataset directory (rewritten after each kept episode).")
@click.option("--policy", "policy_file", default="", metavar="FILE",
              help="Run a saved policy (a run's best_policy.npz) deterministically; no learner needed.")
@click.option("--keep-failures", is_flag=True, help="With --record-demo: also keep episodes not labelled success.")
@click.option("--key", "keys", multiple=True, metavar="COMMAND=KEYS",
              help="Rebind an operator command, e.g. --key success=y,ENTER --key estop=ESC,x.")
@click.option("--teleop-speed", default=0.5, help="Initial teleop speed, a fraction of the action bounds.")
@click.option("--no-console", is_flag=True, help="Ignore the keyboard even on a terminal (unattended).")
@click.option("--keys", "keys_dir", default="", metavar="DIR",
              help="CURVE keys (`learner keys D --actor NAME` makes D/actors/NAME); needed off loopback.")
@click.option("--insecure", is_flag=True, help="No encryption even with --keys (loopback learners only).")
@click.option("--spool", "spool_dir", default="", metavar="DIR",
              help="Keep every recorded transition on disk here until the learner acks it: each step is written "
                   "before the next one, each batch fsynced before it is sent, and a restarted actor (same DIR) "
                   "sends the rest. kill -9 or a crash loses nothing recorded; a power cut at most the transitions "
                   "not yet in a batch (--batch-size, or 0.25 s). WITHOUT --spool a killed or crashed actor loses "
                   "every transition the learner has not acked yet: the batch being filled (up to --batch-size, "
                   "0.25 s), the batches awaiting their ack and, while the learner is away, everything since it "
                   "went (up to 512 batches plus 50,000 queued transitions).")
@click.option("--spool-fsync/--no-spool-fsync", default=True,
              help="fsync each batch before sending it (off: a power cut can lose the unacked batches too).")
@click.option("--spool-max-mb", default=1024.0, help="Spool limit; when full the robot is paused (see --when-full).")
@click.option("--when-full", type=click.Choice(["pause", "drop"]), default="pause",
              help="Spool/queue full: pause the episode (robot stopped) or keep acting and drop data.")
@click.option("--check", is_flag=True,
              help="Check the robot instead: connect, print the spec, stream observations with rates and ages.")
@click.option("--check-observations", default=20, help="With --check: how many observations to stream.")
@click.option("--move", is_flag=True, help="With --check: also a small, bounded motion and back.")
@click.option("--correct-after", default=0, metavar="STEPS",
              help="Twins: a scripted operator takes over by teleop after STEPS policy steps of a training episode, "
                   "as ALOE's humans correct failures (actor/corrector.py; 0: never).")
@click.option("--correct-for", default=20, metavar="STEPS",
              help="With --correct-after: steps of each correction before the policy drives again (0: to the end).")
@click.option("--layout-seed", type=int, default=None,
              help="Simulated robots: the seed of their episode layouts, as -o seed= (the learner gives each of its "
                   "actors its own); a real robot ignores it.")
@click.option("--parent-pid", default=0, hidden=True, help="Exit with this process (learner --local-actor).")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def main(robot, learner_address, actor_id, robot_options, episodes, eval_every, eval_episodes, eval_only,
         time_scale, pace_utd, pace_slack, no_eval_data, eval_every_updates, render_videos, render_every, record_video,
         batch_size, metrics_port, period_log, seed, explore_before_weights, record_demo, policy_file, keep_failures,
         keys, teleop_speed, no_console, keys_dir, insecure, spool_dir, spool_fsync, spool_max_mb, when_full,
         correct_after, correct_for, layout_seed, parent_pid, verbose,
         check=False, check_observations=20, move=False) -> None:  # fmt: skip
    """Run the control loop on ROBOT, streaming transitions to the learner and acting with its weights.

    Before the first weights arrive a simulated robot explores with uniform random actions; a real robot
    holds still until they arrive or the operator presses t (start), unless --explore-before-weights.
    Ctrl-C stops the robot, flushes what is unsent and exits. A robot that does not answer ends the actor
    with one line saying what was tried and what to check (exit code 4; -v adds the traceback).

    \b
    Operator keys (when stdin is a terminal; a live status line shows the state):
      t          start: a real robot acts (randomly) before the first weights
      s / Enter  success: end the episode with the task's success reward
      f          failure: end the episode with the task's failure outcome
      r          reset: stop, reset the task, start a new episode
      space      pause/resume (the robot holds while paused)
      i          intervention on/off: teleop keys replace the policy
      arrows/WASD, q/e, g, +/-   teleop (while intervening; s is then backward)
      Esc / x    EMERGENCY STOP (robot held, actor stays up); c releases
      ?          show the keys          Ctrl-C  stop the robot, flush, exit
    """
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s actor %(levelname)s %(message)s")  # fmt: skip
    if move and not check:
        raise click.UsageError("--move only goes with --check")
    keep_freed_memory()  # batches stacked for the wire reuse their pages (common/allocator.py)
    if parent_pid:
        exit_with_parent(parent_pid)
    if check:
        sys.exit(_check(robot, robot_options, check_observations, move))
    try:
        options = ActorOptions(
            robot=robot,
            learner=learner_address,
            actor_id=actor_id or key_actor_id(keys_dir) or robot,
            robot_options=_parse_pairs(robot_options, "--robot-option"),
            loop=LoopConfig(episodes, eval_every, eval_episodes, eval_only, time_scale, seed, period_log=period_log),
            sender=SenderConfig(batch_size=batch_size, spool_dir=spool_dir, spool_max_bytes=int(spool_max_mb * 2**20),
                                spool_fsync=spool_fsync),
            metrics_port=metrics_port,
            operator=OperatorConfig(console=not no_console, keymap=_parse_pairs(keys, "--key"), speed=teleop_speed,
                                    record_demo=record_demo, keep_failures=keep_failures),
            keys=keys_dir, insecure=insecure, pause_when_full=when_full == "pause", policy_file=policy_file,
            pace_utd=pace_utd, pace_slack=pace_slack, eval_data=not no_eval_data,
            eval_every_updates=eval_every_updates, render_videos=render_videos, render_every=render_every,
            record_video=record_video, explore_before_weights=explore_before_weights,
            correct_after=correct_after, correct_for=correct_for, layout_seed=layout_seed,
        )
        code = run_actor(options, install_signals=lambda stop: _on_signals(stop))
    except (UnknownNameError, ValueError) as exc:
        raise click.UsageError(str(exc)) from None
    except RobotError as exc:
        sys.exit(_robot_failed(exc))
    sys.exit(code)


def _robot_failed(exc: RobotError) -> int:
    """A robot that does not answer (or fails) is the operator's to fix, not a bug: one line saying what was
    tried and what to check, no traceback (debug logging, -v, still logs it)."""
    logging.getLogger("actor").debug("robot error", exc_info=exc)
    click.echo("actor: " + " ".join(str(exc).split()), err=True)
    return EXIT_ROBOT


def _check(robot: str, robot_options: tuple[str, ...], observations: int, move: bool) -> int:
    from actor.app import make_robot
    from actor.check import run_check

    try:
        built = make_robot(robot, _parse_pairs(robot_options, "--robot-option"))
    except (UnknownNameError, ValueError, TypeError) as exc:
        raise click.UsageError(str(exc)) from None

    def interrupt(signum, _frame):  # SIGTERM/SIGHUP as Ctrl-C: run_check's finally stops the robot
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = {signum: signal.signal(signum, interrupt) for signum in (signal.SIGTERM, signal.SIGHUP)}
    try:
        return run_check(built, observations=observations, move=move)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _on_signals(stop) -> None:
    def handler(signum, _frame):
        logging.getLogger("actor").info("%s: stopping the robot and flushing", signal.Signals(signum).name)
        stop()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGHUP, handler)  # the operator's SSH session dropped: stop the robot, don't just die


if __name__ == "__main__":
    main()
