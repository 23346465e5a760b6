"""The Ray launcher on a real two-node cluster: a learner and 8 simulated actors spread over both nodes,
restarted by Ray after kill -9, moved to the head when the worker node stops, and at the end every batch
each actor sealed exactly once in the learner's durable replay or, not acked yet, in the actor's spool.

The tests share one fleet (module fixture; starting 8 actors costs ~30 s on 2 cores) and run in file order:
the faults first, the exactly-once check of everything they did last.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from learner.launch import fleet_processes
from learner.replay.durable import read_journal, read_spec
from common.ports import free_port_pair
from tests.conftest import wait_until

pytestmark = pytest.mark.timeout(240)
FLEET = 8
LEARNER_ARGS = ["--algo", "sac", "--set", "hidden_dims=16,16", "--learning-starts", "1000000000",
                "--metrics-port", "0", "--threads", "1"]  # ingest only: no gradient step competes for the 2 cores
ACTOR_ARGS = ["--time-scale", "20", "--batch-size", "8"]


def tail(path: Path, lines: int) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else "(no file)"


def host_info(handle) -> dict:
    """The host's info, waiting out a restart in progress."""
    return wait_until(handle.info, timeout_s=120, what=f"{handle.actor_id}'s host to answer")


def acked(handle) -> int:
    """The highest batch the learner acked to this actor (its spool's record; -1 while it restarts)."""
    found = handle.info()
    path = Path(found["workdir"]) / "spool" / "acked" if found else None
    return -1 if path is None else int(path.read_text()) if path.exists() else 0


@pytest.fixture(scope="module")
def fleet(ray_cluster, tmp_path_factory):
    from deploy.ray.launcher import Placement, RayLauncher
    from deploy.ray.run import _stop_fleet

    if ray_cluster.processes[1] is None:  # an earlier module stopped the worker node
        ray_cluster.start_node(1)
    root = tmp_path_factory.mktemp("ray_fleet")
    launcher = RayLauncher("test-fleet", str(root / "nodes"), max_restarts=5, actor_cpus=0.25)
    processes = fleet_processes([f"fake={FLEET}"], ACTOR_ARGS)
    port = free_port_pair()
    learner = launcher.start_learner(LEARNER_ARGS, str(root / "run"), port, [p.actor_id for p in processes],
                                     Placement.choose())  # fmt: skip
    handles = [launcher.start(process, f"{learner['ip']}:{port}") for process in processes]
    state = {"launcher": launcher, "handles": handles, "run_dir": root / "run", "port": port, "stopped": False}
    yield state
    if not state["stopped"]:
        _stop_fleet(handles)
        launcher.stop_learner()
        launcher.release_learner()


def node_ids(cluster) -> tuple[str, str]:
    """(head, worker) node ids, told apart by their custom resources."""
    import ray

    from tests.ray.conftest import HEAD

    alive = [node for node in ray.nodes() if node["Alive"]]
    head = next(node["NodeID"] for node in alive if HEAD in node["Resources"])
    worker = next(node["NodeID"] for node in alive if HEAD not in node["Resources"])
    return head, worker


def test_the_fleet_spreads_over_both_nodes_and_delivers(fleet, two_nodes):
    head, worker = node_ids(two_nodes)
    nodes = {host_info(handle)["node_id"] for handle in fleet["handles"]}
    assert nodes == {head, worker}, "SPREAD placed the actors on one node"
    for handle in fleet["handles"]:
        wait_until(lambda h=handle: acked(h) >= 3, timeout_s=120, what=f"{handle.actor_id}'s first acked batches")


def test_an_actor_killed_on_the_worker_node_is_restarted_by_ray_and_continues(fleet, two_nodes):
    _, worker = node_ids(two_nodes)
    victim = next(h for h in fleet["handles"] if host_info(h)["node_id"] == worker)
    before = host_info(victim)
    seen = acked(victim)
    os.kill(before["pid"], signal.SIGKILL)  # the actor process itself, not its Ray host
    restarted = wait_until(lambda: (i := victim.info()) and i["starts"] == before["starts"] + 1 and i["pid"] and i,
                      timeout_s=120, what="Ray to restart the killed actor")  # fmt: skip
    assert restarted["pid"] != before["pid"] and restarted["host_pid"] != before["host_pid"]
    wait_until(lambda: acked(victim) >= seen + 5, timeout_s=120, what="the restarted actor's new batches acked")


def test_a_killed_learner_comes_back_resumed_and_the_actors_reconnect(fleet):
    launcher = fleet["launcher"]
    before = wait_until(launcher.learner_info, timeout_s=120, what="the learner's host to answer")
    # A learner killed before its first actor's spec was stored has nothing to resume (it starts afresh, rightly):
    # run alone, without the tests before it, this test could kill it that early.
    wait_until(lambda: read_spec(fleet["run_dir"] / "replay") is not None, timeout_s=120,
               what="the learner to store its first actor's spec")  # fmt: skip
    os.kill(before["pid"], signal.SIGKILL)
    info = wait_until(lambda: (i := launcher.learner_info()) and i["starts"] == before["starts"] + 1 and i,
                      timeout_s=120, what="Ray to restart the learner's host")  # fmt: skip
    assert info["node_id"] == before["node_id"], "the learner must come back on its run directory's node"
    # Read only now: an ack the killed learner sent just before it died may reach an actor after the kill;
    # the restarted host ended its predecessor first, so every ack from here on is the resumed learner's.
    seen = {handle.actor_id: acked(handle) for handle in fleet["handles"]}
    for handle in fleet["handles"]:
        try:
            wait_until(lambda h=handle: acked(h) > seen[h.actor_id], timeout_s=120,
                       what=f"{handle.actor_id} to reconnect and get acks from the resumed learner")  # fmt: skip
        except pytest.fail.Exception:  # the two logs that say why, in the report's captured output
            print(f"--- learner.log (last 60 lines)\n{tail(fleet['run_dir'] / 'learner.log', 60)}")
            print(f"--- {handle.actor_id}'s actor.log (last 60 lines)\n{handle.tail(60)}")
            raise
    log = (fleet["run_dir"] / "learner.log").read_text()
    assert "--resume" in log.split(f"--- start {info['starts']}:")[1].splitlines()[0]
    assert "resumed" in log


def test_stopping_the_worker_node_moves_its_actors_to_the_head(fleet, two_nodes):
    head, worker = node_ids(two_nodes)
    moving = [h for h in fleet["handles"] if host_info(h)["node_id"] == worker]
    assert moving, "no actor on the worker node to move"
    seen = {h.actor_id: acked(h) for h in moving}
    two_nodes.stop_node(1)
    for handle in moving:
        wait_until(lambda h=handle: (i := h.info()) and i["node_id"] == head, timeout_s=180,
                   what=f"{handle.actor_id} restarted on the head")  # fmt: skip
        wait_until(lambda h=handle: acked(h) > seen[h.actor_id], timeout_s=120,
                   what=f"{handle.actor_id} delivering from the head")  # fmt: skip


def test_a_plain_actor_joins_the_same_learner_beside_the_fleet(fleet):
    """A real robot is a plain `actor` process with keys made on the learner's node (its run dir's keys)."""
    keys = fleet["run_dir"] / "keys"
    made = subprocess.run([sys.executable, "-m", "learner", "keys", str(keys), "--actor", "plain-0"],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert made.returncode == 0, made.stderr
    learner = wait_until(fleet["launcher"].learner_info, timeout_s=120, what="the learner's host to answer")
    actor = subprocess.run([sys.executable, "-m", "actor", "--robot", "fake", "--learner",
                            f"{learner['ip']}:{fleet['port']}", "--keys", str(keys / "actors" / "plain-0"),
                            "--episodes", "2", "--no-console", "--metrics-port", "0", "--time-scale", "20"],
                           capture_output=True, text=True, timeout=180)  # fmt: skip
    assert actor.returncode == 0, actor.stderr[-2000:]
    assert "actor plain-0 (fake) connected" in (fleet["run_dir"] / "learner.log").read_text()
    fleet["plain"] = ["plain-0"]


def test_after_all_that_every_batch_is_in_the_durable_replay_exactly_once(fleet):
    from deploy.ray.run import _stop_fleet

    handles = fleet["handles"]
    spools = {h.actor_id: Path(host_info(h)["workdir"]) / "spool" for h in handles}
    _stop_fleet(handles)  # SIGINT: each actor flushes its spool to the learner before it exits
    fleet["launcher"].stop_learner()
    fleet["launcher"].release_learner()
    fleet["stopped"] = True
    seqs = defaultdict(list)
    for record in read_journal(fleet["run_dir"] / "replay"):
        if record.arrays is not None:
            seqs[record.actor_id].append(record.seq)
    assert sorted(seqs) == sorted([*(h.actor_id for h in handles), *fleet.get("plain", [])])
    for actor_id, numbers in seqs.items():
        assert len(numbers) == len(set(numbers)), f"{actor_id}: duplicated batches"
        assert sorted(numbers) == list(range(1, max(numbers) + 1)), f"{actor_id}: lost batches"
        # What the actor has no ack for is still in its spool (removed by the host once empty), contiguous and
        # reaching back at least to the journal's end: its next life resends it, and the learner drops the
        # part it already stored (stored, but the ack did not arrive before the stop).
        spool = spools.get(actor_id, Path("/nonexistent"))  # the plain actor flushed before it exited
        waiting = sorted(int(path.stem) for path in spool.glob("*.batch")) if spool.exists() else []
        if waiting:
            assert waiting == list(range(waiting[0], waiting[0] + len(waiting))), f"{actor_id}: gap in the spool"
            assert waiting[0] <= max(numbers) + 1, f"{actor_id}: batches between replay and spool lost"
