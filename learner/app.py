"""Wires the learner together: server, replay, algorithm, training loop, progress, optional local actors.

The robot spec comes from the demonstration file when one is given, otherwise from the first actor
that says Hello; replay and the algorithm are built from it then. Every later actor must match it.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
from tqdm import tqdm

from common import metrics
from common.episodes import demo_spec
from common.protocol import DEFAULT_EVAL_EPISODES, EpisodeSummary
from common.specs import RobotSpec
from learner.algorithms import config_from_overrides, config_to_dict, make_algorithm
from common.transport import SequenceTracker, load_learner_security, require_security
from learner.best_policy import BEST_POLICY_FILE, BestPolicy
from learner.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint, saved_run_config
from learner.launch import (
    EVAL_LAYOUT_SEED,
    FINAL_LAYOUT_SEED,
    ActorHandle,
    ActorProcess,
    Launcher,
    LocalLauncher,
    check_layouts,
    fleet_processes,
    parse_fleet,
    with_layout_seed,
    with_training_layouts,
)
from learner.progress import VIDEOS_DIR, EpisodeStats, latest_video, live_line, write_curve, write_train_metrics
from learner.reward_shaping import apply_reward, check_reward, mean_episode_length
from learner.replay.buffer import ReplayBuffer
from learner.replay.demos import load_demo_columns
from learner.replay.durable import SegmentJournal, read_spec, restore, set_aside, write_spec
from learner.server import LearnerServer
from learner.stages import StageRunner
from learner.stop_rule import StopRule
from learner.train_loop import TrainConfig, TrainLoop, select_device

log = logging.getLogger(__name__)


@dataclass
class LocalRunConfig:
    """Simulated actors this learner starts itself (the one-machine default)."""

    robot: str = ""  # robot name for `actor --robot` (empty: start none)
    actor_args: list[str] = field(default_factory=list)  # extra `actor` arguments (task, time scale, eval blocks)
    fleet: list[str] = field(default_factory=list)  # more training actors, ROBOT=N groups named ROBOT-I
    eval_actor: bool = False  # evaluate in a second local actor beside the training one (which then only trains)
    stop_at_success: float = 0.0  # end training once one policy version's evaluation success reaches this (0: never)
    stop_window: int = 20  # over at least this many evaluation episodes of that version
    stop_confirm: bool = True  # ... and again on a fresh block of that version before stopping (learner/stop_rule.py)
    final_eval_episodes: int = 20  # deterministic episodes run by a fresh actor after training
    final_policy: str = "best"  # the final evaluation runs the best-evaluated version ("best") or the last ("latest")
    video_every: int = 10  # the evaluator renders the first episode of every Nth evaluation block to video (0: none)
    layouts: str = "held-out"  # twins' episode layouts: each actor its own, evaluators held out (learner/launch.py)

    def __post_init__(self) -> None:
        if self.final_policy not in ("best", "latest"):
            raise ValueError(f"final_policy must be 'best' or 'latest', got {self.final_policy!r}")
        if self.video_every < 0:
            raise ValueError(f"--video-every must be >= 0, got {self.video_every}")
        parse_fleet(self.fleet)  # a malformed ROBOT=N group fails here, before anything starts
        check_layouts(self.layouts, self.actor_args)
        if self.eval_actor and not self.robot:
            raise ValueError("--eval-actor starts a second local actor: it needs --local-actor ROBOT")
        block = evaluation_block_size(self.actor_args)
        if self.robot and self.stop_at_success and block < self.stop_window:
            raise ValueError(f"the stop rule needs {self.stop_window} evaluation episodes of one policy version, "
                             f"but the local actor's blocks have {block}: pass --actor-arg=--eval-episodes="
                             f"{self.stop_window} or a smaller --stop-window")  # fmt: skip


def evaluation_block_size(actor_args: list[str]) -> int:
    """The `--eval-episodes` the local actors are given (the actor's default when absent)."""
    size = DEFAULT_EVAL_EPISODES
    for index, arg in enumerate(actor_args):
        if arg == "--eval-episodes" and index + 1 < len(actor_args):
            size = int(actor_args[index + 1])
        elif arg.startswith("--eval-episodes="):
            size = int(arg.partition("=")[2])
    return size


@dataclass
class LearnerConfig:
    """Everything `learner` needs; saved with every checkpoint."""

    algo: str = "sigent_sac"  # registered algorithm name
    overrides: dict = field(default_factory=dict)  # algorithm config fields to change (from --set)
    demo: str = ""  # demonstration file loaded into the demo buffer
    bind: str = "127.0.0.1"  # address to listen on (0.0.0.0 for robots on the network)
    port: int = 5555  # transitions port; weights are published on port + 1
    run_dir: str = "runs/latest"  # checkpoints, curves and logs go here
    device: str = "auto"  # auto, cpu or cuda[:N]
    threads: int = 2  # torch CPU threads
    seed: int = 0  # seeds torch, numpy sampling and the algorithm
    replay_capacity: int = 1_000_000  # online transitions kept
    max_minutes: float = 0.0  # stop training after this much wall time (0: no limit)
    metrics_port: int = 9400  # Prometheus /metrics port (0: off)
    interventions_to_demo: str = "auto"  # operator-intervention transitions also go to the demo buffer: auto/on/off
    keys: str = ""  # CURVE key directory from `learner keys DIR` (required for a non-loopback --bind)
    insecure: bool = False  # plaintext even with keys (loopback only)
    resume: bool = False  # continue run_dir: replay, sequence numbers, algorithm and optimizer state
    replay_fsync: bool = True  # fsync durable replay before acking (off: survives kill -9, not power loss)
    reward: str = "shaped"  # every algorithm's training reward: shaped (0/-1, failure -100), task or aloe (see shaping)
    train: TrainConfig = field(default_factory=TrainConfig)
    local: LocalRunConfig = field(default_factory=LocalRunConfig)


class Learner:
    """The learner process's state; built lazily once the robot spec is known."""

    def __init__(self, config: LearnerConfig, launcher: Launcher | None = None) -> None:
        if config.resume:  # the run's algorithm, data and seed come from the run directory
            config = replace(config, **saved_run_config(Path(config.run_dir)))
        self.config = config
        check_reward(config.reward)
        if config.reward == "aloe" and not config.demo:
            raise ValueError("--reward aloe needs --demo: its failure cost C_fail is the demos' mean episode length")
        self.failure_cost: float | None = None  # C_fail of the aloe reward, set from the demonstrations in build
        keys = load_learner_security(config.keys) if config.keys else None
        self.security = require_security(config.bind, keys, config.insecure, "learner")
        self.run_dir = Path(config.run_dir)
        self.device = select_device(config.device)
        self.stats = EpisodeStats()
        self.spec_ready = threading.Event()
        self.stop = threading.Event()
        self.interrupted = threading.Event()  # stopped by a signal: checkpoint and exit, skip the final evaluation
        self.replay: ReplayBuffer | None = None
        self.loop: TrainLoop | None = None
        self.stages: StageRunner | None = None
        self.server: LearnerServer | None = None
        self.best_policy = BestPolicy(self.run_dir / BEST_POLICY_FILE)
        local = config.local
        self.stop_rule = StopRule(self.best_policy, local.stop_at_success, local.stop_window, local.stop_confirm)
        self.launcher = launcher or LocalLauncher(self.run_dir / "logs")

    # ---- construction --------------------------------------------------------------------------
    def build(self, spec: RobotSpec) -> None:
        """Create replay, algorithm and training loop for `spec` (once)."""
        cfg = self.config
        torch.manual_seed(cfg.seed)
        algorithm = make_algorithm(cfg.algo, spec, cfg.overrides, self.device, cfg.seed)
        # Replay computes returns-to-go (SamplingSpec.returns_to_go) with the algorithm's gamma as episodes end.
        self.replay = ReplayBuffer(spec, cfg.replay_capacity, gamma=algorithm.sampling.gamma)
        policy_config = config_to_dict(config_from_overrides(cfg.algo, cfg.overrides))
        self.loop = TrainLoop(
            algorithm, cfg.algo, policy_config, self.replay, self._publish, cfg.train, self.checkpoint, cfg.seed
        )
        self.stages = StageRunner(self.loop, self.checkpoint, cfg.algo)
        if cfg.demo:
            self.failure_cost = load_demo(self.replay, cfg.demo, spec, cfg.reward)
        metrics.LEARNER_REPLAY_SIZE.labels("demo").set(self.replay.demo_size)
        write_spec(self.run_dir / "replay", spec)
        self.best_policy.spec = spec  # best_policy.npz names the spec it fits (actor --policy lists differences)
        self.spec_ready.set()

    def _publish(self, weights) -> None:
        self.best_policy.remember(weights)
        self.server.publish(weights)

    def store(self, actor_id: str, columns: dict) -> None:
        """Receive-thread callback: a validated batch goes into online replay (indexed by actor), with the
        training reward."""
        columns = apply_reward(self.config.reward, columns, self.failure_cost)
        self.replay.add_online(columns, actor_id)
        self.stages.rollouts.note(columns)
        self._interventions_to_demo(columns, actor_id)
        self.loop.note_received(len(columns["reward"]))
        self.stats.env_steps = self.loop.received
        metrics.LEARNER_REPLAY_SIZE.labels("online").set(self.replay.online_size)

    def _interventions_to_demo(self, columns: dict, actor_id: str) -> None:
        """HIL-SERL practice: the operator's corrections also go to the demo buffer (see `interventions_to_demo`)."""
        mode = self.config.interventions_to_demo
        wanted = mode == "on" or (mode == "auto" and self.loop.algorithm.sampling.demo_ratio > 0)
        mask = columns["intervention"]
        if wanted and mask.any():
            try:
                self.replay.add_demo({name: value[mask] for name, value in columns.items()}, actor_id)
            except ValueError as exc:  # demo buffer full: keep training on what it holds
                log.warning("intervention transitions not added to the demo buffer: %s", exc)
            metrics.LEARNER_REPLAY_SIZE.labels("demo").set(self.replay.demo_size)

    def on_episode(self, actor_id: str, summary: EpisodeSummary) -> None:
        if self.stats.add(actor_id, summary, robot=self.server.spec.name):  # every actor shares the spec
            self.best_policy.observe(summary)

    def start_server(self) -> None:
        cfg = self.config
        spec = None
        if cfg.demo:
            spec = demo_spec(cfg.demo)  # None for a LeRobot dataset from elsewhere: the first actor's spec
        if cfg.resume:
            spec = spec or read_spec(self.run_dir / "replay")
            self.best_policy.load_saved()
        else:
            set_aside(self.run_dir)  # a fresh run never mixes with an earlier run's replay or checkpoints
        if spec is not None:
            self.build(spec)
        sequences = self._resume() if cfg.resume else SequenceTracker()
        journal = SegmentJournal(self.run_dir / "replay", cfg.replay_capacity, fsync=cfg.replay_fsync,
                                 acked=sequences.snapshot())  # fmt: skip
        self.server = LearnerServer(cfg.bind, cfg.port, spec, self.store, self.on_episode, self.build,
                                    security=self.security, journal=journal, sequences=sequences,
                                    updates=self.updates_for_pacing).start()  # fmt: skip
        log.info("listening on %s:%d (weights on %d)", cfg.bind, self.server.port, self.server.weights_port)

    def updates_for_pacing(self) -> int:
        """Ack.learner_updates, which a paced actor (`--pace-utd`) waits on: the updates made, except in a
        rollouts stage, which waits for episodes without updating; there it is the updates the data received
        allows, so the actor is not held back from the very episodes the stage needs (a paced Q2RL run stood
        still at 2 of its 50 BC rollouts)."""
        if self.loop is None:
            return 0
        stage = self.stages.current
        if stage is not None and stage.kind == "rollouts":
            return max(self.loop.updates, self.loop.updates_allowed())
        return self.loop.updates

    def _resume(self) -> SequenceTracker:
        """Load the newest checkpoint and the durable replay; returns every actor's acked sequence number."""
        sequences = SequenceTracker()
        if self.loop is None:
            log.warning("--resume %s: no robot spec stored yet; starting empty", self.run_dir)
            return sequences
        path = latest_checkpoint(self.run_dir)
        if path is not None:
            state, _ = load_checkpoint(path)
            self.loop.algorithm.load_state_dict(state["algorithm"])
            self.loop.load_state_dict(state["train_loop"])
            self.stages.load_state_dict(state.get("stages"))  # before the replay restore recounts rollouts
        updates, received = self.loop.updates, self.loop.received
        self.loop.received = 0
        report = restore(self.run_dir / "replay", self.replay.spec, self.store)
        self.loop.received = max(received, self.loop.received)
        for actor_id, seq in report.acked.items():
            sequences.commit(actor_id, seq)
        log.info("resumed %s: checkpoint %s (%d updates), %d transitions in %d batches, acked %s, %d damaged; %s",
                 self.run_dir, path.name if path else "none", updates, report.transitions, report.records,
                 report.acked, len(report.damaged), self.stages.describe())  # fmt: skip
        return sequences

    def checkpoint(self, loop: TrainLoop | None = None) -> Path | None:
        if self.loop is None:
            return None
        state = {"algorithm": self.loop.algorithm.state_dict(), "train_loop": self.loop.state_dict(),
                 "sequences": self.server.sequences.snapshot(), "stages": self.stages.state_dict()}  # fmt: skip
        updates = self.loop.offline_updates + self.loop.updates  # names must grow through every stage
        return save_checkpoint(self.run_dir, updates, state, config_as_dict(self.config))

    # ---- running -------------------------------------------------------------------------------
    def run(self) -> dict:
        """Serve, train until a stop condition, evaluate locally if asked, write results. Returns the summary."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "config.json").write_text(json.dumps(config_as_dict(self.config), indent=2))
        self.stats.open_log(self.run_dir / "episodes.csv", resume=self.config.resume)
        metrics.serve(self.config.metrics_port)
        metrics.init_learner()
        self.start_server()
        local = self._start_local_actors()
        started = time.monotonic()
        try:
            self._train(started, local)
        finally:
            for actor in local:
                actor.stop()
        summary = self._finish(started)
        self.server.close()
        return summary

    def _start_local_actors(self) -> list[ActorHandle]:
        return [self._start_actor(process) for process in self.local_processes()]

    def local_processes(self) -> list[ActorProcess]:
        """The training actor, with `eval_actor` an evaluator that runs evaluation blocks beside it, and the
        fleet's training actors."""
        local = self.config.local
        processes = fleet_processes(local.fleet, local.actor_args)
        if local.robot:
            processes.insert(0, ActorProcess("train", local.robot, tuple(local.actor_args)))
        if local.layouts == "held-out":
            processes = with_training_layouts(processes, self.config.seed)
        if local.robot and local.eval_actor:
            args = (*local.actor_args, "--eval-only", *self._video_args(local.video_every))
            processes.insert(1, self._held_out(ActorProcess("eval", local.robot, args), EVAL_LAYOUT_SEED))
        return processes

    def final_evaluator(self, episodes: int) -> ActorProcess:
        """The fresh actor that evaluates the final policy for `episodes` episodes, on layouts of its own."""
        # Every block's first episode on video, always: what the run's final policy does, to watch.
        args = [*self.config.local.actor_args, "--eval-only", "--episodes", str(episodes), *self._video_args(1)]
        return self._held_out(ActorProcess("final-eval", self.config.local.robot, tuple(args)), FINAL_LAYOUT_SEED)

    def _held_out(self, evaluator: ActorProcess, seed: int) -> ActorProcess:
        """An evaluator on layouts no training actor draws (unless the run shares one stream)."""
        return with_layout_seed(evaluator, seed) if self.config.local.layouts == "held-out" else evaluator

    def _video_args(self, every: int) -> tuple[str, ...]:
        """An evaluator's arguments to render the first episode of every `every`th block into RUN_DIR/videos
        (a twin renders; another robot logs that it cannot)."""
        if not every:
            return ()
        return ("--render-videos", str((self.run_dir / VIDEOS_DIR).absolute()), "--render-every", str(every))

    def _start_actor(self, process: ActorProcess) -> ActorHandle:
        return self.launcher.start(process, f"127.0.0.1:{self.server.port}")

    def _train(self, started: float, local: list[ActorHandle]) -> None:
        budget_s = self.config.max_minutes * 60 or None
        # A log file (not a terminal) gets a progress line every 30 s instead of every second.
        refresh_every = 1.0 if sys.stderr.isatty() else 30.0
        with tqdm(total=budget_s, unit="s", bar_format=_BAR, mininterval=refresh_every) as bar:
            last_check = last_refresh = 0.0

            def on_progress() -> None:  # called between updates; checks the stop rules once a second
                nonlocal last_check, last_refresh
                now = time.monotonic()
                if now - last_check < 1.0:
                    return
                last_check = now
                if now - last_refresh >= refresh_every:
                    last_refresh = now
                    bar.n = min(now - started, budget_s or now - started)
                    bar.set_postfix_str(self.progress_line(), refresh=True)
                self._check_stop(started, local)

            while not self.stop.is_set() and not self.spec_ready.wait(timeout=0.5):
                on_progress()
            if self.loop is not None:
                self.stages.run(self.stop, on_progress)
            bar.set_postfix_str(self.progress_line(), refresh=True)

    def progress_line(self) -> str:
        if self.loop is None:
            return "waiting for the first actor"
        return live_line(self.stats, self.loop.updates, self.loop.policy_version, self.replay.online_size,
                         stage=self.stages.describe() if len(self.stages.stages) > 1 else "")  # fmt: skip

    def _check_stop(self, started: float, local: list[ActorHandle]) -> None:
        cfg = self.config
        if cfg.max_minutes and time.monotonic() - started >= cfg.max_minutes * 60:
            log.info("time budget of %.1f minutes reached", cfg.max_minutes)
            self.stop.set()
        # One version's own episodes, not the last N across versions: 20 straight successes spread over four
        # versions stopped a run whose chosen policy then scored 70 % (run G, session 3).
        target = cfg.local.stop_at_success
        # Only once online training runs: a version republished for confirmation in a rollouts stage would never
        # count as that stage's rollouts, and the stage would wait for them forever.
        reached = target and self.loop is not None and self.stages.online_started() and self.stop_rule.check(self.loop)
        if reached:
            log.info("policy %s reached %.0f%% evaluation success: stopping", reached.describe(), 100 * target)
            self.best_policy.settle(reached)
            self.stop.set()
        for actor in local:
            if not actor.alive():
                log.error("local actor %s exited:\n%s", actor.actor_id, actor.tail())
                self.stop.set()

    def _finish(self, started: float) -> dict:
        # "interrupted": stopped by a signal before its stop rule or budget (a sweep must train it again).
        summary = {"wall_time_s": round(time.monotonic() - started, 1), "interrupted": self.interrupted.is_set()}
        if self.loop is not None and self.stages.online_started():
            self.best_policy.settle()  # stopped by the budget: the best so far (a stop rule settled already)
            summary.update(self._publish_final_policy())
            summary.update(self._final_evaluation())
        if self.loop is not None:
            summary.update(
                env_steps=self.loop.received, updates=self.loop.updates, policy_version=self.loop.policy_version,
                offline_updates=self.loop.offline_updates, stage=self.stages.describe(),
            )
            self.checkpoint()
        summary["total_time_s"] = round(time.monotonic() - started, 1)
        csv_path, png_path = write_curve(
            self.stats, self.run_dir, f"{self.config.algo} on {self.config.local.robot or 'robots'}"
        )
        summary.update(curve_png=str(png_path), episodes_csv=str(csv_path))
        if self.loop is not None:
            summary["train_metrics_csv"] = str(write_train_metrics(self.loop.history, self.run_dir))
        video = latest_video(self.run_dir / VIDEOS_DIR)  # every actor has stopped: its videos are written
        if video is not None:
            summary["latest_video"] = str(video)
        (self.run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
        return summary

    def _publish_final_policy(self) -> dict:
        """Publish what the final evaluation runs (as a new version): the best-evaluated policy, or the last."""
        best = self.best_policy.best
        if self.config.local.final_policy == "best" and best is not None:
            self.loop.republish(self.best_policy.best_weights)
            chosen = {"evaluated_policy": f"best, {best.describe()}"}
        else:
            self.loop.publish()
            chosen = {"evaluated_policy": "latest"}
        if best is not None:
            chosen["best_policy_npz"] = str(self.best_policy.path)
        return chosen

    def _final_evaluation(self) -> dict:
        episodes = self.config.local.final_eval_episodes
        if not self.config.local.robot or episodes <= 0 or self.interrupted.is_set():
            return {}
        evaluator = self._start_actor(self.final_evaluator(episodes))
        self.stats.wait_for_episodes(episodes, "final-eval", timeout_s=60.0 + 30.0 * episodes)
        evaluator.stop()
        results = self.stats.episodes(actor_id="final-eval")[:episodes]
        successes = sum(p.success for p in results)
        mean_steps = sum(p.steps for p in results) / max(len(results), 1)
        return {"final_eval_episodes": len(results), "final_eval_successes": successes,
                "final_eval_success_rate": successes / max(len(results), 1),
                "final_eval_mean_steps": mean_steps}  # fmt: skip


_BAR = "{elapsed}<{remaining} {bar:20} {postfix}"


def load_demo(replay: ReplayBuffer, demo: str, spec: RobotSpec, reward: str) -> float | None:
    """Put the demonstrations into `replay`'s demo buffer with the training reward `reward` applied; returns
    C_fail of the aloe reward (the demos' mean episode length), None for the other rewards."""
    columns = load_demo_columns(demo, spec)
    failure_cost = None
    if reward == "aloe":
        failure_cost = mean_episode_length(columns)
        log.info("aloe reward: a failed termination costs C_fail = %.1f (mean demo episode length)", failure_cost)
    replay.add_demo(apply_reward(reward, columns, failure_cost))
    log.info("loaded %d demonstration transitions from %s", len(columns["reward"]), demo)
    return failure_cost


def config_as_dict(config: LearnerConfig) -> dict:
    return json.loads(json.dumps(asdict(config), default=str))


def install_signal_handlers(learner: Learner) -> None:
    """SIGINT/SIGTERM end training gracefully (a checkpoint is written on the way out)."""

    def handler(signum: int, _frame: object) -> None:
        log.info("received %s: checkpointing and exiting", signal.Signals(signum).name)
        learner.interrupted.set()
        learner.stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
