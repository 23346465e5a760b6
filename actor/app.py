"""Wires one actor together: robot, weight client, sender and the control loop."""

from __future__ import annotations

import inspect
import logging
import threading
import time
from dataclasses import dataclass, field, fields, replace
from typing import Callable

from actor.demo import record_demo
from actor.loop import ActorLoop, LoopConfig
from actor.operator import Operator, OperatorConfig
from actor.pacing import Pacer, check_pacing, counting_submit, default_slack, spaced_intake, stopping_wakes
from actor.sender import Sender, SenderConfig, link_security
from actor.spool import PauseWhenFull
from actor.status import Status
from actor.terminal import operator_terminal
from actor.weights import WeightClient
from common import metrics
from common.protocol import Hello
from common.transport import parse_address
from robots.base import ROBOTS, Robot, is_simulated

log = logging.getLogger("actor")
HANDSHAKE_WAIT_S = 3.0  # how long to wait for the learner's verdict before moving the robot anyway
EXIT_REFUSED = 3
EXIT_ROBOT = 4  # the robot did not answer or failed (a RobotError); the CLI prints its one-line message


@dataclass
class ActorOptions:
    """Everything `actor` needs."""

    robot: str  # registered robot name
    learner: str  # learner HOST:PORT
    actor_id: str  # stable name of this actor
    robot_options: dict[str, str] = field(default_factory=dict)  # robot factory options, as text
    loop: LoopConfig = field(default_factory=LoopConfig)
    sender: SenderConfig = field(default_factory=SenderConfig)
    metrics_port: int = 9401  # Prometheus /metrics (0: off)
    operator: OperatorConfig = field(default_factory=OperatorConfig)  # keyboard, teleop, demo recording
    keys: str = ""  # CURVE key directory (`learner keys DIR --actor NAME` makes it); needed off loopback
    insecure: bool = False  # plaintext even with keys (loopback only)
    pause_when_full: bool = True  # spool and queue full: stop the robot and wait (False: keep acting, drop data)
    policy_file: str = ""  # run this saved policy (e.g. a run's best_policy.npz) deterministically, no learner
    pace_utd: float = 0.0  # lockstep with the learner: wait while sent transitions x this > its updates + slack
    pace_slack: int = -1  # updates the actor may run ahead (-1: R x (200 + one episode + one batch), actor.pacing)
    eval_data: bool = True  # send evaluation episodes' transitions to replay (False: only their summaries)
    eval_every_updates: int = 0  # an open-ended evaluator starts a block at most once per this many learner updates
    render_videos: str = ""  # an evaluator of a twin renders evaluation episodes to MP4 files here (actor.videos)
    render_every: int = 1  # with render_videos: the first episode of every Nth evaluation block (0: none)
    record_video: str = ""  # the camera images of every episode the operator labels go to MP4 files here
    explore_before_weights: bool = False  # real robots: random actions before the first weights (default: hold still)
    correct_after: int = 0  # twins: a scripted corrector takes over after this many policy steps (0: none)
    correct_for: int = 20  # steps each correction lasts before the policy drives again (0: to the episode's end)
    layout_seed: int | None = None  # simulated robots: their episode layouts' seed (learner/launch.py); real: ignored


def make_robot(name: str, options: dict[str, str]) -> Robot:
    """Build a registered robot; option values are converted from text to int/float/bool when they look like one.

    An option the robot does not have is a ValueError naming the options it has."""
    import robots  # noqa: F401  (registers every robot)

    factory = ROBOTS.get(name)
    known = _option_names(factory)
    unknown = sorted(set(options) - known) if known is not None else []
    if unknown:
        raise ValueError(f"robot {name} has no option {', '.join(map(repr, unknown))}; its options: "
                         f"{', '.join(sorted(known))}")
    return factory(**{key: _literal(value) for key, value in options.items()})


def with_layout_seed(name: str, options: dict[str, str], layout_seed: int | None) -> dict[str, str]:
    """`options` with `seed` set to `layout_seed` when robot `name` is simulated (an explicit -o seed= wins);
    a real robot's world is what it is, so its options stay as they are."""
    import robots  # noqa: F401  (registers every robot)

    if layout_seed is None or "seed" in options or not is_simulated(name):
        return options
    return {**options, "seed": str(layout_seed)}


def _option_names(factory) -> set[str] | None:
    """The keyword options of a robot factory (a dataclass config's fields for `**options` drivers), or None
    when they cannot be told."""
    parameters = inspect.signature(factory).parameters.values()
    names = {p.name for p in parameters if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        config = getattr(factory, "CONFIG", None)
        if config is None:
            return None
        names |= {f.name for f in fields(config)}
    return names


def _literal(text: str) -> object:
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def run_actor(options: ActorOptions, install_signals: Callable[[Callable[[], None]], None]) -> int:
    """Run until the episodes are done or a signal arrives; returns the process exit code.

    The robot is connected first, so one that does not answer raises its RobotError (what was tried, what to
    check) before anything else starts; the CLI prints it as one line and exits with EXIT_ROBOT."""
    robot = make_robot(options.robot, with_layout_seed(options.robot, options.robot_options, options.layout_seed))
    spec = robot.spec
    if options.loop.time_scale != 1.0 and spec.metadata.get("simulated") != "true":
        raise ValueError("--time-scale other than 1 is only for simulated robots")
    task = getattr(robot, "task", None)
    if task is None:
        raise ValueError(f"robot {options.robot} has no task to run")
    pacer = make_pacer(options, spec, task.max_steps)
    operator = Operator(spec, stopping_wakes(robot.stop, pacer), options.operator)
    videos = make_videos(options, robot)
    corrector = make_corrector(options, robot, operator)
    saved = None
    if options.policy_file and not options.operator.record_demo:
        from actor.policy import load_saved_policy  # torch-heavy

        # before connecting: a policy that does not fit this robot's spec never reaches a robot
        saved = load_saved_policy(options.policy_file, spec)
    with robot:  # connect (state readable, motion disabled); each path below enables, and disconnects when done
        if options.operator.record_demo:
            return record_demo(robot, task, operator, options.loop, options.actor_id, install_signals, videos)
        if saved is not None:
            return run_saved_policy(robot, task, operator, saved, options, install_signals, videos)
        loop_config = replace(options.loop, hold_until_start=holds_until_start(spec, options.explore_before_weights))
        return _run_with_learner(robot, task, operator, pacer, loop_config, options, install_signals, videos,
                                 corrector)  # fmt: skip


def holds_until_start(spec, explore_before_weights: bool) -> bool:
    """A real robot does not explore with random actions on its own: before the learner's first weights it
    holds still until the operator's start key, unless the operator asked for exploration. Twins explore."""
    return spec.metadata.get("simulated") != "true" and not explore_before_weights


def _run_with_learner(robot: Robot, task, operator: Operator, pacer: Pacer | None, loop_config: LoopConfig,
                      options: ActorOptions, install_signals, videos, corrector=None) -> int:
    """The training (or evaluation) run: weight client, sender and the control loop, until done."""
    spec = robot.spec
    host, port = parse_address(options.learner)
    metrics.serve(options.metrics_port)
    metrics.init_actor(options.actor_id, spec.name)
    security = link_security(host, options.keys, options.insecure)
    weights = WeightClient(host, port, spec, security=security).start()
    hello = Hello(options.actor_id, spec.name, spec.spec_hash, spec.to_json())
    sender = Sender(
        host, port, hello, options.sender, on_weights=weights.offer, have_version=lambda: weights.received_version,
        security=security, on_learner_updates=pacer.on_learner_updates if pacer else None,
    ).start()
    paused = PauseWhenFull(sender.submit, sender.room, robot.stop, lambda: loop._stop.is_set(), options.pause_when_full)
    submit = counting_submit(paused, pacer, options.eval_data)
    hold = sender.hold if options.eval_data else lambda t: None if t.evaluation else sender.hold(t)
    take_policy = spaced_intake(weights.take_newer, pacer, pacer.block_every) if pacer and pacer.block_every \
        else weights.take_newer  # fmt: skip
    try:
        with operator_terminal(operator, lambda status: _link_status(sender, status)) as on_status:
            loop = ActorLoop(robot, task, submit, take_policy, loop_config, options.actor_id, operator, on_status,
                             before_training_step=pacer.wait_turn if pacer else None, videos=videos,
                             hold=hold, before_step=corrector.before_step if corrector else None)  # fmt: skip
            install_signals(lambda: _stop_now(loop, robot, pacer))
            if _refused(sender):
                return EXIT_REFUSED
            threading.Thread(target=_stop_on_refusal, args=(sender, loop, pacer), daemon=True).start()
            with robot:
                robot.enable()
                summaries = loop.run()
        _report(summaries)
        if pacer is not None:
            log.info("paced: %d waits for the learner; %d transitions sent, learner at %d updates", pacer.waits,
                     pacer.sent, pacer.learner_updates)  # fmt: skip
    finally:
        flushed = sender.close()
        weights.close()
        log.info("sender closed: %s", "everything acked" if flushed else f"{sender.outstanding()} unacked")
    return EXIT_REFUSED if sender.refused_reason else 0


def make_pacer(options: ActorOptions, spec, max_episode_steps: int) -> Pacer | None:
    """The pacer of `--pace-utd` (training actors; refused for a real robot) or of `--eval-every-updates`
    (an open-ended evaluator: not a final evaluation of `--episodes N`, which must not wait); else None."""
    if options.loop.eval_only:
        every = 0 if options.loop.episodes else options.eval_every_updates
        if every < 0:
            raise ValueError(f"--eval-every-updates must be >= 0, got {every}")
        return Pacer(0.0, 0, block_every=every) if every else None
    if not options.pace_utd:
        return None
    slack = options.pace_slack
    if slack == -1:  # the default
        slack = default_slack(options.pace_utd, max_episode_steps, options.sender.batch_size)
    check_pacing(spec, options.pace_utd, slack)
    log.info("paced: at most %g learner updates per transition sent, %d updates of slack", options.pace_utd, slack)
    return Pacer(options.pace_utd, slack)


def make_corrector(options: ActorOptions, robot: Robot, operator: Operator):
    """The twins' scripted corrector `--correct-after` asks for (actor/corrector.py), or None."""
    if not options.correct_after:
        return None
    if options.operator.record_demo or options.policy_file:
        raise ValueError("--correct-after corrects a policy that trains with a learner, not --record-demo or --policy")
    from actor.corrector import CorrectorConfig, ScriptedCorrector

    return ScriptedCorrector(robot, operator, CorrectorConfig(options.correct_after, options.correct_for))


def make_videos(options: ActorOptions, robot: Robot):
    """The episode videos the options ask for, or None (PyAV is imported only then)."""
    if not (options.render_videos or options.record_video):
        return None
    from actor.videos import make_episode_videos

    return make_episode_videos(robot, options.actor_id, options.loop.eval_only, options.render_videos,
                               options.render_every, options.record_video)  # fmt: skip


def run_saved_policy(robot: Robot, task, operator: Operator, saved: tuple, options: ActorOptions, install_signals,
                     videos=None) -> int:  # fmt: skip
    """Deploy a saved policy (`load_saved_policy`'s (policy, record), checked against this robot's spec):
    deterministic episodes on `robot` with no learner; the operator's keys and the robot's safety limits
    work as in training."""
    policy, record = saved
    log.info("running %s (policy %s)", options.policy_file, record)
    loop_config = replace(options.loop, eval_only=True)
    with operator_terminal(operator, _no_learner) as on_status:
        loop = ActorLoop(robot, task, lambda _item: None, lambda version: policy if version < policy.version else None,
                         loop_config, options.actor_id, operator, on_status, videos=videos)  # fmt: skip
        install_signals(lambda: _stop_now(loop, robot))
        with robot:
            robot.enable()
            summaries = loop.run()
    _report(summaries)
    return 0


def _no_learner(status: Status) -> None:
    status.learner = "off (saved policy)"


def _stop_now(loop: ActorLoop, robot: Robot, pacer: Pacer | None = None) -> None:
    """Ctrl-C / SIGTERM: stop the robot at once (stop() is signal-safe), then let the loop wind down."""
    loop.request_stop()
    robot.stop()
    if pacer is not None:
        pacer.release()


def _link_status(sender: Sender, status: Status) -> None:
    """Fill the status line's learner-link fields from the sender."""
    status.learner = "refused" if sender.refused_reason else "up" if sender.connected.is_set() else "waiting"
    status.queued, status.acked = sender.outstanding(), sender.acked_transitions
    status.spooled = len(getattr(sender, "_spool", None) or ())  # batches on disk (0 without a spool)


def _refused(sender: Sender) -> bool:
    """Wait briefly for the handshake so a refused actor never moves its robot."""
    deadline = time.monotonic() + HANDSHAKE_WAIT_S
    while time.monotonic() < deadline and not (sender.connected.is_set() or sender.refused.is_set()):
        sender.refused.wait(timeout=0.05)
    if sender.refused_reason:
        log.error("the learner refused this actor: %s", sender.refused_reason)
        return True
    if not sender.connected.is_set():
        log.warning("learner not answering yet; sending when it appears")
    return False


def _stop_on_refusal(sender: Sender, loop: ActorLoop, pacer: Pacer | None) -> None:
    sender.refused.wait()
    loop.request_stop()
    if pacer is not None:
        pacer.release()


def _report(summaries: list) -> None:
    if not summaries:
        return
    successes = sum(s.success for s in summaries)
    log.info("%d episodes, %d successes (%.0f%%)", len(summaries), successes, 100.0 * successes / len(summaries))
