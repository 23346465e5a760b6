"""`learner --launcher ray --ray-address ADDR --fleet ROBOT=N ...`: one command to a learner and its fleet.

The driver (this process, on any machine that can reach the cluster) places the learner with the user's own
`learner` arguments, then the fleet, and waits. The learner's stop rules (`--max-updates`, `--max-minutes`,
`--stop-at-success`) end the run as on one machine; Ctrl-C stops it safely (the learner checkpoints, the
actors stop their robots and flush). Ray restarts whatever crashes: a learner comes back with `--resume`
on its node, an actor with its spool. Real robots join the same learner as plain `actor` processes with
keys made on the learner's node (`learner keys RUN_DIR/keys --actor NAME`).

Paths: `--run-dir` and `--demo` are paths on the learner's node (a relative one is made absolute here, so
every node should hold the repository and data at the same path, as the deploy image does).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import ray
from ray.exceptions import ActorDiedError, GetTimeoutError, RayActorError

from common.lifetime import accept_stop_signals
from deploy.ray.cluster import connect
from deploy.ray.launcher import Placement, RayActorHandle, RayLauncher
from learner.launch import check_layouts, fleet_processes, with_training_layouts

log = logging.getLogger(__name__)
NODE_DIR = os.environ.get("TANDEM_RAY_NODE_DIR", "/tmp/tandem-ray")  # actors' keys, spools and logs on each node
STATUS_EVERY_S = 30.0
# Options the launcher sets for the learner process itself, or that only the driver reads.
DRIVER_OPTIONS = ("--launcher", "--ray-address", "--fleet", "--actor-arg", "--max-restarts", "--actor-cpus",
                  "--run-dir", "--resume", "--port", "--bind", "--keys", "--parent-pid")  # fmt: skip
REFUSED = {"--local-actor": "the fleet replaces it: --fleet ROBOT=N", "--eval-actor": "evaluation runs in the "
           "fleet's actors (their --eval-every blocks)", "--insecure": "every link off one machine is encrypted"}


@dataclass
class RayRun:
    """What the driver needs beyond the learner's own arguments."""

    fleet: list[str]
    actor_args: list[str]
    address: str = "auto"
    run_dir: str = "runs/latest"
    port: int = 5555
    resume: bool = False
    max_restarts: int = 10
    actor_cpus: float = 1.0
    seed: int = 0  # the learner's --seed: the fleet's layout streams derive from it (learner/launch.py)
    layouts: str = "held-out"


def learner_argv(argv: list[str]) -> list[str]:
    """The user's `learner` arguments for the learner process: driver options dropped, --demo made absolute."""
    for option, why in REFUSED.items():
        if any(arg == option or arg.startswith(option + "=") for arg in argv):
            raise ValueError(f"{option} does not go with --launcher ray: {why}")
    kept, skip = [], False
    for index, arg in enumerate(argv):
        if skip:
            skip = False
            continue
        name, has_value, value = arg.partition("=")
        if name in DRIVER_OPTIONS:
            skip = not has_value
            continue
        if name == "--demo":
            value = value if has_value else argv[index + 1]
            kept += ["--demo", str(Path(value).absolute())]
            skip = not has_value
            continue
        kept.append(arg)
    return kept


def check_fleet_specs(robots: list[str], demo: str) -> None:
    """One learner trains one robot spec: every fleet robot (and the demo) must share it."""
    from common.episodes import demo_spec
    from robots import ROBOTS

    specs = {robot: ROBOTS.get(robot)().spec for robot in dict.fromkeys(robots)}
    spec = demo_spec(demo) if demo else None
    if spec is not None:  # a LeRobot dataset from elsewhere carries none; the learner checks it against the robot
        specs[f"the demo {demo}"] = spec
    first, spec = next(iter(specs.items()))
    for name, other in specs.items():
        if other.spec_hash != spec.spec_hash:
            raise ValueError(f"one learner trains one robot spec: {name} ({other.name}, {other.spec_hash}) differs "
                             f"from {first} ({spec.name}, {spec.spec_hash}); start a second run for it (its own "
                             f"--run-dir and --port) on the same cluster")  # fmt: skip


def run_on_ray(argv: list[str], run: RayRun, demo: str = "") -> int:
    """Place the learner and the fleet, wait for the learner to finish (or Ctrl-C), stop everything."""
    args = learner_argv(argv)
    check_layouts(run.layouts, run.actor_args)
    processes = fleet_processes(run.fleet, run.actor_args)
    if run.layouts == "held-out":
        processes = with_training_layouts(processes, run.seed)
    if not processes:
        raise ValueError("--launcher ray needs a fleet (--fleet ROBOT=N), or start the learner without it")
    check_fleet_specs([p.robot for p in processes], demo)
    run_dir = str(Path(run.run_dir).absolute())
    connect(run.address)
    launcher = RayLauncher(f"{Path(run_dir).name}-{uuid.uuid4().hex[:6]}", NODE_DIR, run.max_restarts, run.actor_cpus)
    placement = Placement.choose()
    learner = launcher.start_learner(args, run_dir, run.port, [p.actor_id for p in processes], placement,
                                     run.resume)
    address = f"{learner['ip']}:{run.port}"
    print(f"learner on node {learner['node_id'][:8]} ({address}, {placement.num_gpus:g} GPU), run dir {run_dir}; "
          f"starting {len(processes)} actors", flush=True)  # fmt: skip
    fleet = [launcher.start(process, address) for process in processes]
    accept_stop_signals()  # Ctrl-C must stop the run even if the shell or a parent handed down SIGINT ignored
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # `kill` (or a supervisor) stops it like Ctrl-C
    try:
        code = _wait_for_learner(launcher, fleet)
    except KeyboardInterrupt:
        # A second Ctrl-C must not cut the safe stop short (the fleet's flush, the learner's checkpoint).
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        print("stopping: the actors stop and flush, the learner checkpoints (further Ctrl-C ignored)", flush=True)
        code = 130
    finally:
        _stop_fleet(fleet)
        launcher.stop_learner()
        summary = _read_summary(launcher)
        launcher.release_learner()
    if summary is not None:
        from learner.__main__ import format_summary

        print(format_summary(summary), flush=True)
    return code


def _wait_for_learner(launcher: RayLauncher, fleet: list[RayActorHandle]) -> int:
    """Until the learner process exits 0 (its stop rule) or Ray gives up restarting it."""
    last_status = time.monotonic()
    while True:
        try:
            info = launcher.learner_info()
        except ActorDiedError as exc:
            print(f"the learner failed for good (restarts exhausted): {exc}", flush=True)
            return 1
        if info is not None and info["returncode"] == 0:
            return 0
        if time.monotonic() - last_status >= STATUS_EVERY_S:
            last_status = time.monotonic()
            running = sum(handle.alive() for handle in fleet)
            starts = "?" if info is None else info["starts"]
            print(f"learner start {starts} | fleet {running}/{len(fleet)} running", flush=True)
        time.sleep(1.0)  # a status poll of a remote process, not synchronisation


def _stop_fleet(fleet: list[RayActorHandle]) -> None:
    stops = [handle.host.stop.remote(20.0) for handle in fleet]  # all at once: each may take its grace
    ray.wait(stops, num_returns=len(stops), timeout=80.0)
    for handle in fleet:
        handle.stop(grace_s=1.0)  # already stopped: cleans up and lets the host go


def _read_summary(launcher: RayLauncher) -> dict | None:
    try:
        text = launcher.learner_file("summary.json")
    except (RayActorError, GetTimeoutError):  # the learner host is gone (e.g. with its node): nothing to print
        return None
    return json.loads(text) if text else None
