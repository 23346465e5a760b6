"""One real two-node Ray cluster per test session, started as a user starts one (`ray start`), and torn down
with a check that no Ray process is left behind."""

from __future__ import annotations

import os

import pytest

from tests.conftest import free_port_pair

HEAD, WORKER = "tandem_head", "tandem_worker"  # each node's own custom resource


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory):
    import ray

    from deploy.ray.cluster import connect
    from deploy.ray.local_cluster import LocalCluster, NodeSpec

    token = tmp_path_factory.mktemp("ray") / "auth_token"
    cluster = LocalCluster(free_port_pair(), [NodeSpec(4, {HEAD: 1}), NodeSpec(4, {WORKER: 1})], token)
    saved = {name: os.environ.get(name) for name in cluster.env()}
    os.environ.update(cluster.env())  # the driver (this process) and the processes it starts use the token
    try:
        cluster.start()
        connect(cluster.address)
        yield cluster
    finally:
        ray.shutdown()
        left = cluster.stop()
        for name, value in saved.items():
            os.environ.pop(name, None) if value is None else os.environ.__setitem__(name, value)
    assert left == [], f"Ray processes left behind: {left}"


@pytest.fixture
def two_nodes(ray_cluster):
    """The cluster with both nodes up (a test that stops the worker node leaves it to be restarted here)."""
    if ray_cluster.processes[1] is None:
        ray_cluster.start_node(1)
    return ray_cluster
