"""`learner --algo NAME`: train from actors' transitions and publish weights back to them."""

from __future__ import annotations

import dataclasses
import json
import logging
import sys

import click
import torch

from common.allocator import keep_freed_memory
from common.lifetime import exit_with_parent
from common.registry import UnknownNameError
from common.transport import DEFAULT_PORT
from learner.app import Learner, LearnerConfig, LocalRunConfig, install_signal_handlers
from learner.stages import StageError
from learner.reward_shaping import REWARDS
from learner.train_loop import TrainConfig


def _parse_overrides(pairs: tuple[str, ...]) -> dict[str, str]:
    overrides = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint="--set")
        overrides[key] = value
    return overrides


def _algorithm_names() -> str:
    from learner.algorithms import ALGORITHMS

    return ", ".join(ALGORITHMS.names())


class _TrainCommand(click.Command):
    """`--help` ends with the chosen algorithm's config fields (`--set` keys, stage lengths among them)."""

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_epilog(ctx, formatter)
        from learner.algorithms import ALGORITHMS, config_docs

        algo = ctx.params.get("algo") or "sigent_sac"  # --algo is eager: known here when given before --help
        try:
            config_cls = ALGORITHMS.get(algo).Config
        except UnknownNameError as exc:
            formatter.write_paragraph()
            formatter.write_text(str(exc))
            return
        docs, defaults = config_docs(config_cls), config_cls()
        rows = [(f"{f.name}={_cli_value(getattr(defaults, f.name))}", docs.get(f.name, ""))
                for f in dataclasses.fields(config_cls) if f.init]  # fmt: skip
        with formatter.section(f"{algo} config fields (--set KEY=VALUE; `learner --algo NAME --help` for another)"):
            formatter.write_dl(rows)


def _cli_value(value: object) -> str:
    """A default as `--set` takes it (tuples comma-separated)."""
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)


@click.command(cls=_TrainCommand, context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.option("--algo", default="sigent_sac", is_eager=True,
              help="Algorithm to train (an unknown name lists all; before --help: its config fields).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Change an algorithm config field.")
@click.option("--demo", default="",
              help="Demonstrations for the demo buffer: a .npz file or a LeRobot dataset directory (its features "
                   "must match the robot); a Tandem-written one also fixes the robot spec.")
@click.option("--bind", default="127.0.0.1", help="Address to listen on; 0.0.0.0 to accept robots on the network.")
@click.option("--port", default=DEFAULT_PORT, help="Transitions port; weights go out on PORT+1.")
@click.option("--run-dir", default="runs/latest", help="Checkpoints, learning curve and logs.")
@click.option("--device", default="auto", help="auto (CUDA if present), cpu, or cuda:N.")
@click.option(
    "--threads", default=1,
    help="Torch CPU threads (1: small nets gain little from more; on a shared CPU extra OpenMP threads stall updates).",
)
@click.option("--seed", default=0)
@click.option("--utd", default=1.0, help="Gradient updates per online transition received.")
@click.option("--learning-starts", default=200, help="Online transitions before the first update.")
@click.option("--publish-every", default=25, help="Updates between weight publications.")
@click.option("--checkpoint-every", default=5000,
              help="Updates between checkpoints, in offline stages too (0: only at stage ends and the end).")
@click.option("--max-updates", default=0,
              help="Stop after this many online updates (0: no limit); offline-stage updates do not count.")
@click.option("--max-minutes", default=0.0, help="Stop training after this much wall time (0: no limit).")
@click.option("--metrics-port", default=9400, help="Prometheus /metrics port (0: off).")
@click.option("--local-actor", default="", metavar="ROBOT",
              help="Also start a simulated actor of ROBOT on this machine.")
@click.option("--actor-arg", "actor_args", multiple=True,
              help="Extra argument for the local actor and the fleet's actors (repeatable).")
@click.option("--fleet", multiple=True, metavar="ROBOT=N",
              help="Also start N simulated training actors of ROBOT, named ROBOT-0.. (repeatable; locally, or spread "
                   "over a Ray cluster with --launcher ray).")
@click.option("--launcher", type=click.Choice(["local", "ray"]), default="local",
              help="local: this process trains and starts its actors here. ray: place the learner (on a GPU node "
                   "if any) and the --fleet on a Ray cluster, restarting them when they die (README: Scale out).")
@click.option("--ray-address", default="auto", help="With --launcher ray: the cluster's address (auto: this node's).")
@click.option("--max-restarts", default=10, help="With --launcher ray: restarts Ray gives each process before failing.")
@click.option("--actor-cpus", default=1.0, help="With --launcher ray: CPUs each fleet actor reserves on its node.")
@click.option("--eval-actor", is_flag=True,
              help="With --local-actor: evaluate in a second actor beside the training one (which then only trains).")
@click.option("--stop-at-success", default=0.0,
              help="Stop once one policy version's evaluation success reaches this (0: never).")
@click.option("--stop-window", default=20,
              help="Evaluation episodes of that one version the stop rule needs (at most --eval-episodes).")
@click.option("--stop-confirm/--no-stop-confirm", default=True,
              help="Before stopping, evaluate that version again on a fresh block, which must reach the target too "
                   "(the first of many versions to reach it on one block is partly luck).")
@click.option("--final-eval", default=20, help="With --local-actor: deterministic episodes evaluated at the end.")
@click.option("--final-policy", type=click.Choice(["best", "latest"]), default="best",
              help="Which policy the final evaluation runs: the best-evaluated version (best_policy.npz) or the last.")
@click.option("--video-every", default=10,
              help="With --eval-actor: render the first episode of every Nth evaluation block to RUN_DIR/videos "
                   "(0: none); the final evaluation's are always rendered. Simulated robots only.")
@click.option("--layouts", type=click.Choice(["held-out", "shared"]), default="held-out",
              help="Simulated robots' episode layouts: held-out gives each training actor its own stream (from "
                   "--seed) and scores evaluations on layouts no training actor draws; shared gives every actor the "
                   "same stream (runs before 2026-12-08).")
@click.option("--keys", default="", metavar="DIR", help="CURVE keys from `learner keys DIR` (needed off loopback).")
@click.option("--insecure", is_flag=True, help="No encryption even with --keys (loopback addresses only).")
@click.option("--resume", default="", metavar="RUN_DIR", help="Continue RUN_DIR: replay, algorithm, optimizer, step.")
@click.option("--no-fsync", is_flag=True, help="Ack before fsync of durable replay (survives kill -9, not power loss).")
@click.option("--interventions-to-demo", type=click.Choice(["auto", "on", "off"]), default="auto",
              help="Also add operator-intervention transitions to the demo buffer (auto: if the algo samples demos).")
@click.option("--reward", type=click.Choice(REWARDS), default="shaped",
              help="Training reward of every algorithm: task (1 on success, else 0) or shaped (0 on success, -1 per "
                   "step, a failed termination -100 = -1/(1-0.99)) or aloe (the same, a failure costs the demos' mean "
                   "episode length, ALOE's Eq. 14); applied once where data is stored.")
@click.option("--parent-pid", default=0, hidden=True, help="Exit with this process (a Ray process host).")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
@click.pass_context
def train(ctx, algo, overrides, demo, bind, port, run_dir, device, threads, seed, utd, learning_starts, publish_every,
         checkpoint_every, max_updates, max_minutes, metrics_port, local_actor, actor_args, eval_actor, stop_at_success,
         stop_window, stop_confirm, final_eval, final_policy, video_every, layouts, keys, insecure, resume, no_fsync,
         interventions_to_demo, reward, fleet, launcher, ray_address, max_restarts, actor_cpus, parent_pid,
         verbose) -> None:  # fmt: skip
    """Receive transitions from actors, train ALGO, and publish policy weights to them.

    One-machine example:  learner --demo robots/sim/demos/limo_ball_to_goal.npz --local-actor limo_sim

    Keys for robots on the network:  learner keys DIR --actor go2-1  (then --bind 0.0.0.0 --keys DIR)
    """
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s learner %(levelname)s %(message)s")  # fmt: skip
    keep_freed_memory()  # batches expanded and sampled every step reuse their pages (common/allocator.py)
    if parent_pid:
        exit_with_parent(parent_pid)
    if launcher == "ray":
        from deploy.ray.run import RayRun, run_on_ray

        run = RayRun(list(fleet), list(actor_args), ray_address, resume or run_dir, port, bool(resume), max_restarts,
                     actor_cpus, seed, layouts)  # fmt: skip
        try:
            sys.exit(run_on_ray(ctx.obj["argv"], run, demo))
        except (UnknownNameError, ValueError) as exc:
            raise click.UsageError(str(exc)) from None
    torch.set_num_threads(threads)
    try:
        config = LearnerConfig(
            algo=algo, overrides=_parse_overrides(overrides), demo=demo, bind=bind, port=port, run_dir=run_dir,
            device=device, threads=threads, seed=seed, max_minutes=max_minutes, metrics_port=metrics_port,
            train=TrainConfig(utd, learning_starts, publish_every, checkpoint_every, max_updates),
            local=LocalRunConfig(local_actor, list(actor_args), list(fleet), eval_actor, stop_at_success, stop_window,
                                 stop_confirm, final_eval, final_policy, video_every, layouts),
            keys=keys, insecure=insecure, resume=bool(resume), replay_fsync=not no_fsync,
            interventions_to_demo=interventions_to_demo, reward=reward,
        )  # fmt: skip
        if resume:
            config.run_dir = resume
        _check_algorithm(config)
        learner = Learner(config)
    except (UnknownNameError, ValueError) as exc:
        raise click.UsageError(str(exc)) from None
    install_signal_handlers(learner)
    try:
        summary = learner.run()
    except StageError as exc:  # e.g. an offline stage without demonstrations
        raise click.ClickException(str(exc)) from None
    click.echo(format_summary(summary))
    sys.exit(0)


def _check_algorithm(config: LearnerConfig) -> None:
    """Fail before listening if the algorithm or its overrides are unknown, or (with a demo, which fixes the
    robot spec) if the algorithm refuses that robot (e.g. SigEnt-SAC's alpha * d * h_max bound)."""
    from common.episodes import demo_spec
    from learner.algorithms import config_from_overrides, make_algorithm

    config_from_overrides(config.algo, config.overrides)
    spec = demo_spec(config.demo) if config.demo else None
    if spec is not None:
        make_algorithm(config.algo, spec, config.overrides)


def format_summary(summary: dict) -> str:
    lines = ["", "=== Tandem run summary ==="]
    if "final_eval_episodes" in summary:
        lines.append(
            f"final evaluation: {summary['final_eval_successes']}/{summary['final_eval_episodes']} successes "
            f"({100 * summary['final_eval_success_rate']:.0f}%), mean {summary['final_eval_mean_steps']:.1f} steps"
            f" (policy: {summary.get('evaluated_policy', 'latest')})"
        )
    keys = ("best_policy_npz", "wall_time_s", "total_time_s", "env_steps", "updates", "policy_version", "curve_png",
            "episodes_csv", "latest_video")  # fmt: skip
    for key in keys:
        if key in summary:
            lines.append(f"{key}: {summary[key]}")
    lines.append(json.dumps(summary))
    return "\n".join(lines)


def main(args: list[str] | None = None) -> None:
    """`learner keys ...` creates CURVE keys; `learner export-lerobot RUN_DIR OUT` exports a run's episodes as a
    LeRobot dataset; `learner pretrain --algo A --demo D --out F` saves a policy after A's offline stages;
    anything else trains (see `learner --help`)."""
    argv = sys.argv[1:] if args is None else list(args)
    if argv[:1] == ["keys"]:
        from learner.keys import keys_main

        sys.exit(keys_main(argv[1:]))
    if argv[:1] == ["pretrain"]:
        from learner.pretrain import pretrain_command

        pretrain_command.main(args=argv[1:], prog_name="learner pretrain")
    if argv[:1] == ["export-lerobot"]:
        from learner.export_lerobot import export_command

        export_command.main(args=argv[1:], prog_name="learner export-lerobot")
    train.main(args=argv, prog_name="learner", obj={"argv": argv})


if __name__ == "__main__":
    main()
