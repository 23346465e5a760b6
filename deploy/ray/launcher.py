"""RayLauncher: a run's processes as Ray actors, placed, started, restarted and stopped by Ray.

The learner goes to one chosen node (a GPU node when the cluster has one, with `num_gpus=1`; otherwise the
driver's node) with hard node affinity, so a restart finds its run directory and durable replay again.
Fleet actors are spread over the alive nodes (SPREAD, soft): after a node is lost Ray restarts its actors
wherever there is room, each with a fresh spool on its new node's disk (what the lost node's spool held
and the learner had not acked is lost with it; acked data is in the learner's durable replay).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import ray
from ray.exceptions import ActorUnavailableError, GetTimeoutError, RayActorError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from deploy.ray.cluster import gpu_node, this_node_id
from deploy.ray.hosts import ActorHost, LearnerHost
from learner.launch import ActorProcess

log = logging.getLogger(__name__)
CALL_TIMEOUT_S = 60.0  # a host's answer to a small call (a restarting host answers once it is back)
INFO_RETRIES = 3  # info() calls lost to a host's restart that are sent again (each restart loses at most one)


@dataclass
class Placement:
    """Where the learner goes and what it reserves there."""

    node_id: str
    num_gpus: float

    @classmethod
    def choose(cls) -> Placement:
        """A GPU node if the cluster has one, else the node this driver runs on."""
        node = gpu_node()
        if node is not None:
            return cls(node["NodeID"], 1.0)
        return cls(this_node_id(), 0.0)


class RayActorHandle:
    """A fleet member on the cluster (the `ActorHandle` of learner/launch.py)."""

    def __init__(self, actor_id: str, host) -> None:
        self.actor_id, self.host = actor_id, host

    def info(self) -> dict | None:
        """Its host's info (node, pids, starts, work directory), None while Ray restarts it; raises
        ActorDiedError once Ray gave up on it."""
        return _info(self.host)

    def alive(self) -> bool:
        """Running or being restarted by Ray; False once it finished or Ray gave up on it."""
        try:
            info = self.info()
        except RayActorError:  # died for good
            return False
        return info is None or info["returncode"] is None

    def stop(self, grace_s: float = 20.0) -> int | None:
        """The safe shutdown (SIGINT: robot stopped, spool flushed), then the host goes for good."""
        try:
            code = ray.get(self.host.stop.remote(grace_s), timeout=grace_s + CALL_TIMEOUT_S)
            ray.get(self.host.clean_up.remote(), timeout=CALL_TIMEOUT_S)
        except (RayActorError, GetTimeoutError) as exc:
            log.warning("actor %s did not stop cleanly: %s", self.actor_id, exc)
            code = None
        ray.kill(self.host, no_restart=True)
        return code

    def tail(self, lines: int = 20) -> str:
        try:
            return ray.get(self.host.tail.remote(lines), timeout=CALL_TIMEOUT_S)
        except (RayActorError, GetTimeoutError) as exc:
            return f"(no log: {exc})"


class RayLauncher:
    """Starts a run's learner and actors on the cluster `deploy.ray.cluster.connect` joined."""

    def __init__(self, run_id: str, node_dir: str, max_restarts: int = 10, actor_cpus: float = 1.0) -> None:
        self.run_id = run_id  # names this run's Ray actors and its node-local directories
        self.node_dir = f"{node_dir.rstrip('/')}/{run_id}"
        self.max_restarts, self.actor_cpus = max_restarts, actor_cpus
        self.learner = None

    def start_learner(self, argv: list[str], run_dir: str, port: int, actor_ids: list[str],
                      placement: Placement, resume: bool = False) -> dict:  # fmt: skip
        """Place the learner host; returns its info (node, IP, pids) once the learner process started."""
        self.learner = ray.remote(LearnerHost).options(
            name=f"{self.run_id}/learner", num_cpus=1, num_gpus=placement.num_gpus, max_restarts=self.max_restarts,
            scheduling_strategy=NodeAffinitySchedulingStrategy(placement.node_id, soft=False),
        ).remote(argv, run_dir, port, actor_ids, resume)  # fmt: skip
        return ray.get(self.learner.info.remote(), timeout=CALL_TIMEOUT_S * 5)

    def start(self, process: ActorProcess, learner_address: str) -> RayActorHandle:
        """One fleet actor anywhere in the cluster, with its CURVE keys from the learner's node."""
        keys = ray.get(self.learner.actor_keys.remote(process.actor_id), timeout=CALL_TIMEOUT_S)
        host = ray.remote(ActorHost).options(
            name=f"{self.run_id}/{process.actor_id}", num_cpus=self.actor_cpus, max_restarts=self.max_restarts,
            scheduling_strategy="SPREAD",
        ).remote(process, learner_address, keys, self.node_dir)  # fmt: skip
        return RayActorHandle(process.actor_id, host)

    def learner_info(self) -> dict | None:
        """The learner host's info, or None while Ray restarts it; raises ActorDiedError once Ray gave up."""
        return _info(self.learner)

    def learner_file(self, relative: str) -> str | None:
        """A small text file of the learner's run directory (summary.json), read on its node."""
        return ray.get(self.learner.read.remote(relative), timeout=CALL_TIMEOUT_S)

    def stop_learner(self, grace_s: float = 60.0) -> int | None:
        """SIGINT (checkpoint, summary, exit), SIGKILL after `grace_s`; the host stays for `learner_file`."""
        try:
            return ray.get(self.learner.stop.remote(grace_s), timeout=grace_s + CALL_TIMEOUT_S)
        except (RayActorError, GetTimeoutError):
            return None

    def release_learner(self) -> None:
        """The learner's host goes for good (after `stop_learner`)."""
        ray.kill(self.learner, no_restart=True)


def _info(host) -> dict | None:
    """A host's info, None while it is being restarted (or too busy to answer in time)."""
    # info() is idempotent, so it may be retried across a restart: a call in flight when the host's process or
    # node died is then answered by the restarted host instead of failing with ActorDiedError (seen in CI when a
    # worker node stopped). A host Ray gave up on fails every call at once, retries or not.
    try:
        return ray.get(host.info.options(max_task_retries=INFO_RETRIES).remote(), timeout=CALL_TIMEOUT_S)
    except (ActorUnavailableError, GetTimeoutError):
        return None
